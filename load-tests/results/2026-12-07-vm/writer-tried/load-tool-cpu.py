#!/usr/bin/env python3
"""The load tool's CPU a request against the durable ACK and against the bare stack, from its
folded stacks (perf record -F 499 --call-graph dwarf -p <load tool> over 6 s of a 12 s closed
loop, 64 in flight; inferno-collapse-perf), by what the stacks pass through. Units: the load
tool's samples a request against the bare stack = 100.

usage: load-tool-cpu.py DURABLE.folded.gz DURABLE_RATE BARE.folded.gz BARE_RATE
"""
import gzip
import sys


def load(path):
    rows, total = [], 0
    for line in gzip.open(path, 'rt'):
        stack, n = line.rstrip().rsplit(' ', 1)
        rows.append((stack.split(';'), int(n)))
        total += int(n)
    return rows, total


durable, durable_total = load(sys.argv[1])
bare, bare_total = load(sys.argv[3])
durable_rate, bare_rate = float(sys.argv[2]), float(sys.argv[4])
unit = bare_total / bare_rate / 100
print(f"all: bare 100.0  durable {durable_total / durable_rate / unit:6.1f}")
for part in ['finish_task_switch', 'epoll_wait', 'writev', 'recvfrom', 'rustls', 'malloc',
             'driver::closed_task']:
    b = sum(n for f, n in bare if any(part in x for x in f)) / bare_rate / unit
    d = sum(n for f, n in durable if any(part in x for x in f)) / durable_rate / unit
    print(f"{part:22s} bare {b:6.1f}  durable {d:6.1f}  difference {d - b:+6.1f}")
