#!/usr/bin/env bash
# Find ACKs while an admitted client floods a path that has no route. Three phases, each on a
# fresh SQLite store, each an open-loop find load (no-match finds: the durable ACK, no CAS work)
# of --rate finds/s for --duration s as the PFS:
#
#   1. alone: the load alone;
#   2. flood: the load while load-tests/flood.py pipelines `GET /nope` as the dashboard over
#      --connections connections (default 1), with the default [limits] (past the rate: 429
#      held for its Retry-After, one aggregate record);
#   3. flood-unlimited: the same with [limits] at their largest (refused_per_s = 100000,
#      refused_burst = 1000000): every 404 answered and audited on its own row.
#
# It prints ACK p50, p99 and p99.9 of each phase, the flood's answers, and the audit records the
# phase left (`audit export`), and the p99.9 ratio of each flood phase to the load alone.
#
# usage: load-tests/refusal-flood.sh [--rate R] [--duration S] [--connections N] [--out DIR]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
RATE=300
DURATION=20
CONNECTIONS=1
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "refusal-flood.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
SERVER_PORT=18464
OPS_PORT=18465
CAS_PORT=18466
. load-tests/lib.sh
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/refusal-flood}
if [ ! -x "$BIN" ]; then
    echo "refusal-flood.sh: $BIN not found; run cargo build --release first" >&2
    exit 2
fi
require_free_ports refusal-flood.sh $SERVER_PORT $OPS_PORT

TMP=$(mktemp -d -t pdp-refusal-flood.XXXXXX)
SERVER_PID=""
FLOOD_PID=""
cleanup() {
    set +e
    for pid in $FLOOD_PID $SERVER_PID; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
echo "refusal-flood: $RATE finds/s for $DURATION s per phase, $(nproc) CPU(s), $HOST"
printf '%-16s %8s %8s %9s  %-44s %s\n' phase p50_ms p99_ms p99.9_ms flood audit_records

phase() { # name limits-toml flood?
    local name=$1 dir=$TMP/$1 flood="-"
    mkdir -p "$dir"
    { server_config "$dir" 0; printf '%s\n' "$2"; } >"$dir/server.toml"
    RUST_LOG=warn "$BIN" serve --config "$dir/server.toml" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    wait_for $SERVER_PORT
    if [ "$3" = flood ]; then
        python3 load-tests/flood.py --target "127.0.0.1:$SERVER_PORT" --ca "$CERTS/ca.pem" \
            --cert "$CERTS/dashboard.pem" --key "$CERTS/dashboard.key" \
            --duration "$((DURATION + 2))" --connections "$CONNECTIONS" >"$dir/flood.out" 2>&1 &
        FLOOD_PID=$!
        sleep 1
    fi
    "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
        --rate "$RATE" --duration "$DURATION" --mix 0,0,1 --name "refusal-flood-$name" \
        --out "$OUT/$name" >/dev/null || true
    if [ -n "$FLOOD_PID" ]; then
        wait "$FLOOD_PID" || true
        FLOOD_PID=""
        flood=$(cat "$dir/flood.out")
    fi
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    local records
    records=$("$BIN" audit export --config "$dir/server.toml" --from "$(date -u +%Y-%m-%d)" \
        --to "$(date -u -d tomorrow +%Y-%m-%d)" \
        2>/dev/null | wc -l)
    local r=$OUT/$name/result.json
    printf '%-16s %8s %8s %9s  %-44s %s\n' "$name" "$(field "$r" p50_ms)" \
        "$(field "$r" p99_ms)" "$(field "$r" p999_ms)" "$flood" "$records"
}

phase alone "" no
phase flood "" flood
phase flood-unlimited $'[limits]\nrefused_per_s = 100000\nrefused_burst = 1000000' flood

base=$(field "$OUT/alone/result.json" p999_ms)
for name in flood flood-unlimited; do
    awk -v a="$base" -v b="$(field "$OUT/$name/result.json" p999_ms)" -v n="$name" \
        'BEGIN { printf "ACK p99.9 %s / alone: %.2fx\n", n, b / a }'
done
