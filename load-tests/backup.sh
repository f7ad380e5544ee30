#!/usr/bin/env bash
# ACK latency while the embedded store is backed up: the same open-loop find load twice on one
# serving endpoint, once alone and once while `pdp-provider backup --to` copies its store again
# and again for the whole run, and the ACK percentiles of both with the backups' sizes and times.
#
#   1. a store with MEMBERS members (the load's finds are drawn from the first 100,000: mix
#      Y,P,N), and the endpoint serving it with the CAS simulator;
#   2. run A: the load alone for DURATION seconds;
#   3. run B: the same load, backups taken back to back from its start to its end.
#
# usage: load-tests/backup.sh [--members N] [--rate R] [--duration S] [--mix Y,P,N] [--out DIR]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
MEMBERS=1000000
RATE=300
DURATION=60
MIX=1,1,8
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --members) MEMBERS=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --mix) MIX=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "backup.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
SERVER_PORT=18484
OPS_PORT=18485
CAS_PORT=18486
CONTROL_PORT=18487
. load-tests/lib.sh
require_free_ports backup.sh $SERVER_PORT $OPS_PORT $CAS_PORT $CONTROL_PORT
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/backup}
[ -x "$BIN" ] || { echo "backup.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }

TMP=$(mktemp -d -t pdp-backup.XXXXXX)
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
echo "generating and importing $MEMBERS members ..." >&2
"$BIN" members generate --count "$MEMBERS" --seed 42 --out "$TMP/members.jsonl" 2>/dev/null
head -n 100000 "$TMP/members.jsonl" >"$TMP/load-members.jsonl"
mkdir -p "$TMP/store"
server_config "$TMP/store" 256 >"$TMP/server.toml"
"$BIN" members import "$TMP/members.jsonl" --config "$TMP/server.toml" >/dev/null
rm -f "$TMP/members.jsonl"

RUST_LOG=warn "$BIN" sim cas --listen "127.0.0.1:$CAS_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --certs "$CERTS" >"$TMP/cas.log" 2>&1 &
PIDS+=($!)
wait_for $CAS_PORT
RUST_LOG=warn "$BIN" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
PIDS+=($!)
wait_for $SERVER_PORT
until curl -sf "http://127.0.0.1:$OPS_PORT/health/ready" >/dev/null; do sleep 0.2; done
STORE_BYTES=$(stat -c %s "$TMP/store/pdp.sqlite")

run() { # name with-backups?
    local backups="" loop_pid=""
    if [ "$2" = yes ]; then
        mkdir -p "$TMP/backups"
        (
            n=0
            while [ ! -f "$TMP/stop" ]; do
                n=$((n + 1))
                t=$(date +%s.%N)
                "$BIN" backup --to "$TMP/backups/b$n.sqlite" --config "$TMP/server.toml" >/dev/null
                awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' >>"$TMP/backup-times"
                rm -f "$TMP/backups/b$n.sqlite"
            done
        ) &
        loop_pid=$!
    fi
    "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
        --members "$TMP/load-members.jsonl" --rate "$RATE" --duration "$DURATION" --mix "$MIX" \
        --name "backup-$1" --out "$OUT/$1" >/dev/null || true
    if [ -n "$loop_pid" ]; then
        touch "$TMP/stop"
        wait "$loop_pid"
        backups="$(wc -l <"$TMP/backup-times") backups, $(paste -sd/ "$TMP/backup-times") s each"
    fi
    printf '%-16s %10s %10s %10s   %s\n' "$1" \
        "$(field "$OUT/$1/result.json" p50_ms)" "$(field "$OUT/$1/result.json" p99_ms)" \
        "$(field "$OUT/$1/result.json" p999_ms)" "$backups" | tee -a "$OUT/backup.txt"
}

: >"$OUT/backup.txt"
echo "open loop $RATE/s for $DURATION s, mix $MIX; $MEMBERS members, store $STORE_BYTES bytes; $(nproc) CPU(s), $HOST" | tee -a "$OUT/backup.txt"
printf '%-16s %10s %10s %10s   %s\n' "" "ACK p50" "ACK p99" "ACK p99.9" "" | tee -a "$OUT/backup.txt"
run alone no
run during-backup yes
echo "results in $OUT"
