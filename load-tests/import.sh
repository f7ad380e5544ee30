#!/usr/bin/env bash
# Member data changing under load: the same open-loop find load twice on one machine, once alone
# and once while `members import` adds a large file to the running endpoint, and the ACK
# percentiles, completions and how long the import took to become live.
#
#   1. a store with BASE members (the load's finds are drawn from them: mix Y,P,N);
#   2. run A: the load alone for DURATION seconds;
#   3. run B: the same load, with an import of NEW further members started at its beginning; the
#      server applies them to its match index while serving (no restart);
#
# then prints ACK p99.9, completed/s, and the import's duration and time until live.
#
# usage: load-tests/import.sh [--base N] [--new N] [--rate R] [--duration S] [--mix Y,P,N] [--out DIR]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
BASE=100000
NEW=1000000
RATE=300
DURATION=60
MIX=1,1,8
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --base) BASE=$2; shift 2 ;;
        --new) NEW=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --mix) MIX=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "import.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
SERVER_PORT=18464
OPS_PORT=18465
CAS_PORT=18466
CONTROL_PORT=18467
. load-tests/lib.sh
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/import}
[ -x "$BIN" ] || { echo "import.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }

TMP=$(mktemp -d -t pdp-import.XXXXXX)
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
echo "generating $BASE base and $NEW new members ..." >&2
"$BIN" members generate --count "$BASE" --seed 42 --out "$TMP/base.jsonl" 2>/dev/null
# Other people, other member IDs: an import of additions, not of updates to the base.
"$BIN" members generate --count "$NEW" --seed 4242 2>/dev/null |
    sed 's/"memberId":"/"memberId":"NEW-/' >"$TMP/new.jsonl"

RUST_LOG=warn "$BIN" sim cas --listen "127.0.0.1:$CAS_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --certs "$CERTS" >"$TMP/cas.log" 2>&1 &
PIDS+=($!)
wait_for $CAS_PORT

run() { # name with-import?
    local dir=$TMP/$1
    mkdir -p "$dir"
    server_config "$dir" 256 >"$dir/server.toml"
    "$BIN" members import "$TMP/base.jsonl" --config "$dir/server.toml" >/dev/null
    RUST_LOG=warn "$BIN" serve --config "$dir/server.toml" >"$dir/server.log" 2>&1 &
    local server=$!
    PIDS+=($server)
    wait_for $SERVER_PORT
    local t0 import_pid="" import_s="-" live_s="-"
    t0=$(date +%s.%N)
    if [ "$2" = yes ]; then
        "$BIN" members import "$TMP/new.jsonl" --config "$dir/server.toml" >"$dir/import.log" 2>&1 &
        import_pid=$!
    fi
    "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
        --members "$TMP/base.jsonl" --rate "$RATE" --duration "$DURATION" --mix "$MIX" \
        --name "import-$1" --out "$OUT/$1" >/dev/null || true
    if [ -n "$import_pid" ]; then
        wait "$import_pid"
        import_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
        # Live when the index holds every member.
        local want=$((BASE + NEW))
        while [ "$(metric pdp_members_indexed)" -lt "$want" ]; do sleep 0.2; done
        live_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    fi
    while [ "$(metric pdp_find_queue_depth)" != 0 ]; do sleep 0.1; done
    local done_s
    done_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    local completed
    completed=$(metric pdp_finds_completed_total)
    printf '%-28s %10s %10s %10s %12s %10s %10s\n' "$1" \
        "$(field "$OUT/$1/result.json" p50_ms)" "$(field "$OUT/$1/result.json" p999_ms)" \
        "$completed" "$(awk -v n="$completed" -v s="$done_s" 'BEGIN { printf "%.0f", n / s }')" \
        "$import_s" "$live_s" | tee -a "$OUT/import.txt"
    kill "$server"; wait "$server" 2>/dev/null || true
    for _ in $(seq 100); do port_free $SERVER_PORT && port_free $OPS_PORT && break; sleep 0.1; done
}

: >"$OUT/import.txt"
echo "open loop $RATE/s for $DURATION s, mix $MIX; $BASE members, importing $NEW more; $(nproc) CPU(s), $HOST" | tee -a "$OUT/import.txt"
printf '%-28s %10s %10s %10s %12s %10s %10s\n' "" "ACK p50" "ACK p99.9" "completed" "completed/s" "import s" "live s" | tee -a "$OUT/import.txt"
run alone no
run during-import yes
echo "results in $OUT"
