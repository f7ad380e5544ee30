#!/usr/bin/env bash
# The first ACKs after a restart (first-batch.txt): each build started in turn on WORK's seeded
# store (a `history.sh --keep WORK` store after its runs, whose last day holds the runs' ACKs),
# ready polled, a 3 s closed-loop run of no-match finds, stopped; two rounds. Prints the time to
# ready and the load tool's first second (ACKs, slowest) and the next second's p99.
# usage: first-batch.sh WORK BIN_A BIN_B
set -euo pipefail
WORK=$1; shift
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for r in 1 2; do
    for bin in "$@"; do
        t0=$(date +%s.%N)
        RUST_LOG=warn "$bin" serve --config "$WORK/seeded/server.toml" >"$OUT/server.log" 2>&1 &
        server=$!
        until [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18485/health/ready)" = 200 ]; do
            sleep 0.05
        done
        t1=$(date +%s.%N)
        rm -rf "$OUT/run"
        "$bin" load --quiet --target https://127.0.0.1:18484 --certs "$WORK/certs" \
            --members "$WORK/members.jsonl" --duration 3 --closed-loop --concurrency 64 \
            --mix 0,0,1 --name fb --out "$OUT/run" >/dev/null 2>&1 || true
        kill "$server"; wait "$server" 2>/dev/null || true
        python3 -c "
import json; t=json.load(open('$OUT/run/result.json'))['phases'][0]['timeline']
print('$r $(basename "$bin") ready after %.2f s;' % ($t1-$t0), 'first second', t[0]['sent'],
      'sent, max', t[0]['max_ms'], 'ms; next p99', t[1]['p99_ms'])"
        sleep 2
    done
done
