#!/usr/bin/env python3
"""Shares of a profile's samples, as BENCHMARKS.md's "A no-match find is one row" quotes them:
a stack counts once toward a share if any of its frames matches (the writer: the thread's name
first; the kernel switching threads: the leaf frame).
usage: shares.py FOLDED.gz   (e.g. docs/profiles/ack.folded.gz, written by profile-ack.sh)"""
import gzip
import sys

SHARES = {
    "the writer": lambda s: s.startswith("store-writer"),
    "Finds::insert": lambda s: "Finds::insert" in s,
    "insert_audits": lambda s: "insert_audits" in s,
    "walFrames (with its sync)": lambda s: "walFrames" in s,
    "sqlite3OsSync": lambda s: "sqlite3OsSync" in s,
    "the recent IDs' slices": lambda s: "write_recent" in s,
    "the WAL's catch-up": lambda s: "walCheckpoint" in s,
    "finish_task_switch (self)": lambda s: s.rsplit(";", 1)[-1].startswith("finish_task_switch"),
    "Tokio's scheduling": lambda s: "schedule" in s,
    "reading the find": lambda s: "wire::find::parse" in s,
    "matching": lambda s: "find_matches" in s,
    "dates": lambda s: "parse_from_str" in s or "parse_ymd" in s,
}

total, hits = 0, dict.fromkeys(SHARES, 0)
for line in gzip.open(sys.argv[1], "rt"):
    stack, n = line.rsplit(" ", 1)
    total += int(n)
    for name, matches in SHARES.items():
        if matches(stack):
            hits[name] += int(n)
for name, n in hits.items():
    print(f"{100 * n / total:5.2f}%  {name}")
