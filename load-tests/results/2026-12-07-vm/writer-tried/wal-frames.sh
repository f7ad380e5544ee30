#!/usr/bin/env bash
# What one group commit writes to the WAL under load: starts `serve` (BIN, the ACK path only, a
# fresh store; certificates and server.toml as run.sh makes them in DIR), drives it closed loop
# with 64 in flight, traces the writer thread's pwrite64/fsync for 1 s with strace, and prints
# the frames a commit and their pages' b-tree page types (from each page's first byte).
# usage: wal-frames.sh BIN DIR     needs: strace, python3
set -euo pipefail
BIN=$1; DIR=$2
cd "$DIR"; rm -f pdp.sqlite*
RUST_LOG=warn "$BIN" serve --config server.toml >server.log 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s http://127.0.0.1:18495/health/live >/dev/null && break; sleep 0.2; done
"$BIN" load --closed-loop --quiet --target https://127.0.0.1:18494 --certs certs --duration 8 \
    --concurrency 64 --name frames --out load >/dev/null &
LP=$!
sleep 4
WT=$(grep -l '^store-writer$' /proc/$SP/task/*/comm | head -1 | cut -d/ -f5)
timeout 1 strace -qq -xx -s 8 -p "$WT" -e trace=pwrite64,fsync -o st.txt || true
wait $LP
python3 - <<'PY'
import re, collections
types = {0x0d: 'table leaf', 0x05: 'table interior', 0x0a: 'index leaf', 0x02: 'index interior'}
commits, cur, hdr = [], [], None
for l in open('st.txt').read().splitlines():
    m = re.match(r'pwrite64\(\d+, "((?:\\x[0-9a-f]{2})*)"(\.\.\.)?, (\d+), (\d+)\)', l)
    if not m:
        if l.startswith('fsync'):
            commits.append(cur); cur = []
        continue
    b = bytes(int(x, 16) for x in re.findall(r'\\x([0-9a-f]{2})', m.group(1)))
    if int(m.group(3)) == 24:
        hdr = int.from_bytes(b[0:4], 'big')
    elif hdr is not None:
        cur.append('page 1' if hdr == 1 else types.get(b[0], hex(b[0]))); hdr = None
commits = commits[1:]
n = len(commits)
print(f"commits traced: {n}; WAL frames a commit: {sum(map(len, commits)) / n:.2f}")
c = collections.Counter(t for cm in commits for t in cm)
for t, k in c.most_common():
    print(f"  {t}: {k / n:.2f}")
PY
