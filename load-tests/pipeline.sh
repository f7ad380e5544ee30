#!/usr/bin/env bash
# The pipeline: how fast this endpoint takes finds to their END, not how fast it ACKs them.
# In one run on one machine it measures, each on a fresh store:
#
#   1. ack-alone: the durable ACK with no members and no CAS work (`workers.max_in_flight = 0`),
#      closed loop: the rate the store makes finds durable;
#   2. no-match: the full pipeline with members imported and every find a no-match, closed
#      loop; completed/s is read from `pdp_finds_completed_total` until the queue is empty;
#   3. mixed: yes/possible/no finds (mix Y,P,N) at an open-loop rate, the CAS simulator adding
#      `--cas-latency-ms` to every call; completed/s until the queue is empty, and the share of
#      matching finds that completed within 15 s (`pdp_find_completion_seconds`).
#
# and prints the figures and the no-match/ack-alone ratio. Everything it starts is stopped.
#
# --store postgres runs every phase on PostgreSQL (a fresh database per phase on the server
# PDP_TEST_DATABASE_URL names, or scripts/pg's throw-away one); --instances 2 runs two endpoints
# on that one database, the load split evenly between them (two load processes), and counts
# what both completed.
#
# usage: load-tests/pipeline.sh [--duration S] [--concurrency C] [--rate R] [--mix Y,P,N]
#                               [--members N] [--cas-latency-ms MS] [--in-flight N] [--out DIR]
#                               [--store sqlite|postgres] [--instances 1|2]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
DURATION=15
CONCURRENCY=64
RATE=1000
MIX=1,1,1
MEMBERS=20000
CAS_LATENCY_MS=100
IN_FLIGHT=512
OUT=""
STORE_BACKEND=sqlite
INSTANCES=1
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --mix) MIX=$2; shift 2 ;;
        --members) MEMBERS=$2; shift 2 ;;
        --cas-latency-ms) CAS_LATENCY_MS=$2; shift 2 ;;
        --in-flight) IN_FLIGHT=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --store) STORE_BACKEND=$2; shift 2 ;;
        --instances) INSTANCES=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "pipeline.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
SERVER_PORT=18454
OPS_PORT=18455
CAS_PORT=18456
CONTROL_PORT=18457
SERVER_PORT2=18458
OPS_PORT2=18459
case "$STORE_BACKEND:$INSTANCES" in
    sqlite:1|postgres:1|postgres:2) ;;
    *) echo "pipeline.sh: --store sqlite runs one instance; --store postgres one or two" >&2; exit 64 ;;
esac
export STORE_BACKEND
if [ "$STORE_BACKEND" = postgres ]; then
    PG_BASE=${PDP_TEST_DATABASE_URL:-$(scripts/pg)}
fi
. load-tests/lib.sh
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/pipeline}

if [ ! -x "$BIN" ]; then
    echo "pipeline.sh: $BIN not found; run cargo build --release first" >&2
    exit 2
fi
require_free_ports pipeline.sh $SERVER_PORT $OPS_PORT $CAS_PORT $CONTROL_PORT $SERVER_PORT2 $OPS_PORT2

TMP=$(mktemp -d -t pdp-pipeline.XXXXXX)
SERVER_PID=""
SERVER2_PID=""
CAS_PID=""
LOAD_PID=""
LOAD2_PID=""
cleanup() {
    set +e
    for pid in $LOAD_PID $LOAD2_PID $SERVER_PID $SERVER2_PID $CAS_PID; do
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
"$BIN" members generate --count "$MEMBERS" --seed 42 --out "$TMP/members.jsonl" 2>/dev/null

# The CAS simulator, shared by every phase.
RUST_LOG=warn "$BIN" sim cas --listen "127.0.0.1:$CAS_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --certs "$CERTS" >"$TMP/cas.log" 2>&1 &
CAS_PID=$!
wait_for $CAS_PORT


start_server() { # name in_flight import?
    mkdir -p "$TMP/$1"
    fresh_database "pipeline_${1//-/_}"
    server_config "$TMP/$1" "$2" >"$TMP/$1/server.toml"
    if [ "$3" = import ]; then
        "$BIN" members import "$TMP/members.jsonl" --config "$TMP/$1/server.toml" >/dev/null
    fi
    RUST_LOG=warn "$BIN" serve --config "$TMP/$1/server.toml" >"$TMP/$1/server.log" 2>&1 &
    SERVER_PID=$!
    wait_for $SERVER_PORT
    if [ "$INSTANCES" = 2 ]; then
        server_config "$TMP/$1" "$2" $SERVER_PORT2 $OPS_PORT2 >"$TMP/$1/server2.toml"
        RUST_LOG=warn "$BIN" serve --config "$TMP/$1/server2.toml" >"$TMP/$1/server2.log" 2>&1 &
        SERVER2_PID=$!
        wait_for $SERVER_PORT2
    fi
}

stop_server() {
    kill $SERVER_PID $SERVER2_PID 2>/dev/null || true
    wait $SERVER_PID $SERVER2_PID 2>/dev/null || true
    SERVER_PID=""
    SERVER2_PID=""
    for _ in $(seq 100); do
        port_free $SERVER_PORT && port_free $OPS_PORT && port_free $SERVER_PORT2 && return 0
        sleep 0.1
    done
}

# load NAME ARGS...: the load tool against the endpoint, or split evenly across both (each load
# process gets half of --concurrency and --rate).
load() {
    local name=$1
    shift
    local args=("$@") i
    if [ "$INSTANCES" = 2 ]; then
        for i in "${!args[@]}"; do
            case "${args[$i]}" in
                --concurrency|--rate) args[i+1]=$(( ${args[i+1]} / 2 )) ;;
            esac
        done
        "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT2" --certs "$CERTS" \
            --members "$TMP/members.jsonl" --duration "$DURATION" --name "pipeline-$name-2" \
            --out "$OUT/$name-2" "${args[@]}" >/dev/null &
        LOAD2_PID=$!
    fi
    "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
        --members "$TMP/members.jsonl" --duration "$DURATION" --name "pipeline-$name" \
        --out "$OUT/$name" "${args[@]}" >/dev/null &
    LOAD_PID=$!
    wait "$LOAD_PID" || true
    LOAD_PID=""
    if [ -n "$LOAD2_PID" ]; then
        wait "$LOAD2_PID" || true
        LOAD2_PID=""
    fi
}

# both NAME [LABEL]: a metric summed over every running instance (and its series with LABEL).
both() {
    local n
    n=$(metric "$1" "$OPS_PORT" "${2:-}")
    if [ "$INSTANCES" = 2 ]; then n=$(( n + $(metric "$1" $OPS_PORT2 "${2:-}") )); fi
    echo "$n"
}

# Runs a load, then waits for the queue to empty; prints "acked completed seconds".
drain_run() { # name load-args...
    local name=$1
    shift
    local t0 t1 acked completed
    t0=$(now)
    load "$name" "$@"
    while [ "$(both pdp_find_queue_depth)" != 0 ]; do sleep 0.05; done
    t1=$(now)
    acked=$(both 'pdp_find_requests_total{outcome="ack"}')
    completed=$(both pdp_finds_completed_total)
    echo "$acked $completed $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
}

echo "pipeline: $DURATION s per phase, $(nproc) CPU(s), $HOST; $MEMBERS members;" \
    "store $STORE_BACKEND, $INSTANCES instance(s)"

# 1. The durable ACK alone.
start_server ack-alone 0 no-import
load ack-alone --closed-loop --concurrency "$CONCURRENCY" --mix 0,0,1
ACK_RATE=$(field "$OUT/ack-alone/result.json" achieved_rate)
if [ "$INSTANCES" = 2 ]; then
    ACK_RATE=$(awk -v a="$ACK_RATE" -v b="$(field "$OUT/ack-alone-2/result.json" achieved_rate)" \
        'BEGIN { print a + b }')
fi
stop_server

# 2. The full pipeline, every find a no-match.
start_server no-match 256 import
read -r NM_ACKED NM_DONE NM_SECS < <(drain_run no-match --closed-loop --concurrency "$CONCURRENCY" --mix 0,0,1)
stop_server

# 3. Mixed finds, the CAS slowed by CAS_LATENCY_MS on every call, open loop at RATE.
curl -s -X POST "http://127.0.0.1:$CONTROL_PORT/__sim/faults" \
    -d "{\"latency_ms\": $CAS_LATENCY_MS}" >/dev/null
start_server mixed "$IN_FLIGHT" import
read -r MX_ACKED MX_DONE MX_SECS < <(drain_run mixed --rate "$RATE" --mix "$MIX")
MX_WITHIN=$(both pdp_find_completion_seconds_bucket 'le="15"')
MX_MATCHED=$(both pdp_find_completion_seconds_count)
MX_FAILED=$(both 'pdp_finds_completed_total{outcome="failed"}')
stop_server

{
    printf '%-44s %12s %12s %10s\n' "" "ACKed" "completed" "per s"
    printf '%-44s %12s %12s %10.0f\n' "1. durable ACK alone (closed loop)" "-" "-" "$ACK_RATE"
    printf '%-44s %12s %12s %10.0f\n' "2. pipeline, no-match (closed loop)" "$NM_ACKED" "$NM_DONE" \
        "$(awk -v n="$NM_DONE" -v s="$NM_SECS" 'BEGIN { print n / s }')"
    printf '%-44s %12s %12s %10.0f\n' "3. mixed $MIX at $RATE/s, CAS +${CAS_LATENCY_MS} ms" \
        "$MX_ACKED" "$MX_DONE" "$(awk -v n="$MX_DONE" -v s="$MX_SECS" 'BEGIN { print n / s }')"
    awk -v a="$ACK_RATE" -v n="$NM_DONE" -v s="$NM_SECS" \
        'BEGIN { printf "no-match completion / ACK alone: %.2f\n", (n / s) / a }'
    echo "mixed: $MX_WITHIN of $MX_MATCHED matching finds completed within 15 s; $MX_FAILED failed;" \
        "drained ${MX_SECS} s after a ${DURATION} s run"
} | tee "$OUT/pipeline.txt"
echo "results in $OUT"
