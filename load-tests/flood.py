#!/usr/bin/env python3
"""Floods an endpoint with one refused request, pipelined over mTLS HTTP/1.1 connections.

As an admitted client misbehaving would: `GET /nope` (no such route) in batches of --batch
requests written back to back, answers read as they come, for --duration seconds, on each of
--connections connections (a thread each). Prints one line: requests answered, per second, and
the count of each status.

usage: load-tests/flood.py --target 127.0.0.1:8443 --cert C --key K --ca CA [--duration S]
                           [--batch N] [--connections N] [--path P]
"""

import argparse
import collections
import socket
import ssl
import threading
import time


def one(a, ctx, host, port, deadline, out):
    """Floods over one connection until `deadline`; adds its status counts to `out`."""
    sock = ctx.wrap_socket(
        socket.create_connection((host, int(port))), server_hostname="localhost"
    )
    sock.settimeout(0.5)
    request = f"GET {a.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() * a.batch
    marker = b"HTTP/1.1 "
    statuses = collections.Counter()
    sent = answered = 0
    buf = b""
    while True:
        now = time.monotonic()
        if now >= deadline + 2 or (now >= deadline and answered >= sent):
            break
        if now < deadline and sent - answered <= a.batch:
            sock.sendall(request)
            sent += a.batch
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        end = 0
        i = buf.find(marker)
        while i >= 0 and i + len(marker) + 3 <= len(buf):
            statuses[buf[i + len(marker): i + len(marker) + 3].decode()] += 1
            answered += 1
            end = i + len(marker) + 3
            i = buf.find(marker, end)
        buf = buf[end:]
    sock.close()
    with LOCK:
        out.update(statuses)


LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:8443")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--path", default="/nope")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])
    statuses = collections.Counter()
    start = time.monotonic()
    deadline = start + a.duration
    threads = [
        threading.Thread(target=one, args=(a, ctx, host, port, deadline, statuses))
        for _ in range(a.connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    answered = sum(statuses.values())
    detail = " ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
    print(f"{answered} answered in {elapsed:.1f} s ({answered / elapsed:.0f}/s) {detail}")


if __name__ == "__main__":
    main()
