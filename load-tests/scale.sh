#!/usr/bin/env bash
# At the scale of the largest providers: generates MEMBERS members, imports them, starts the
# endpoint on them, and measures, in one run on one machine:
#
#   - import: members/s of `members import` into a fresh store, and the store's bytes per member
#     (the SQLite file and its WAL, or PostgreSQL's database size, after the import);
#   - start-up: seconds from `serve` starting to /health/ready answering 200;
#   - memory: the endpoint's resident memory once ready, minus that of the same endpoint on an
#     empty store (started the same way), per member;
#   - a delta import (1% of the members changed) into the serving endpoint: seconds until the
#     import ends, and until the endpoint's index has applied it (/data-version), no restart.
#
# With --instances 2 (PostgreSQL only), a second endpoint on the same store (its own ports) starts
# once the first is ready: its start-up, and both endpoints' resident memory, each minus the
# empty endpoint's, per member, with both running; the delta is timed until both have applied it.
#
# Then, unless --history 0, six years of history (load-tests/history.sh with --history finds,
# 10,000,000 by default): the ACK on a seeded store against an empty one, the purge of a year
# under load, `audit export --request-id` and `sla report --month`.
#
# Results go to OUT/scale.txt (a table) and OUT/scale.json, and OUT/history/history.txt.
#
# usage: load-tests/scale.sh [--members N] [--history FINDS] [--instances 1|2] [--out DIR]
#                            [--keep DIR]
#        --keep DIR keeps the generated file and the stores there (and reuses them); without
#        it, the PostgreSQL databases made here are dropped at the end
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
#        STORE_BACKEND=postgres with PG_BASE (key-value connection string without dbname) runs
#        it on PostgreSQL (history.sh too)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
MEMBERS=1000000
HISTORY=10000000
OUT=""
KEEP=""
INSTANCES=1
while [ $# -gt 0 ]; do
    case "$1" in
        --members) MEMBERS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=$2; shift 2 ;;
        --history) HISTORY=$2; shift 2 ;;
        --instances) INSTANCES=$2; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "scale.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
case "$MEMBERS" in
    '' | *[!0-9]* | 0) echo "scale.sh: --members must be a whole number from 1" >&2; exit 64 ;;
esac
case "${STORE_BACKEND:-sqlite}:$INSTANCES" in
    sqlite:1 | postgres:1 | postgres:2) ;;
    *) echo "scale.sh: --instances 2 needs STORE_BACKEND=postgres; 1 or 2 only" >&2; exit 64 ;;
esac
if [ "${STORE_BACKEND:-sqlite}" = postgres ] && [ -z "${PG_BASE:-}" ]; then
    echo "scale.sh: STORE_BACKEND=postgres needs PG_BASE (e.g. \"host=/tmp/pdp-provider-pg" \
        "port=55432 user=postgres\")" >&2
    exit 64
fi
SERVER_PORT=18474
OPS_PORT=18475
CAS_PORT=18476
SERVER_PORT2=18477
OPS_PORT2=18478
. load-tests/lib.sh
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/scale}
[ -x "$BIN" ] || { echo "scale.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
require_free_ports scale.sh $SERVER_PORT $OPS_PORT $SERVER_PORT2 $OPS_PORT2

TMP=$(mktemp -d -t pdp-scale.XXXXXX)
WORK=${KEEP:-$TMP}
mkdir -p "$WORK" "$OUT"
SERVER=""
SERVER2=""
cleanup() {
    set +e
    for pid in $SERVER $SERVER2; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    if [ "${STORE_BACKEND:-sqlite}" = postgres ] && [ -z "$KEEP" ]; then
        psql -q "$PG_BASE" -c "DROP DATABASE IF EXISTS pdp_scale_empty WITH (FORCE)" \
            -c "DROP DATABASE IF EXISTS pdp_scale WITH (FORCE)" >/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

CERTS=$WORK/certs
[ -f "$CERTS/ca.pem" ] || "$BIN" certs init --dir "$CERTS" >/dev/null
FILE=$WORK/members-$MEMBERS.jsonl
if [ ! -s "$FILE" ]; then
    echo "generating $MEMBERS members ..." >&2
    "$BIN" members generate --count "$MEMBERS" --seed 42 --out "$FILE.part" 2>/dev/null
    mv "$FILE.part" "$FILE"
fi
# The delta: 1% of the members, each with new values (every estimated pot changed).
DELTA=$WORK/delta-$MEMBERS.jsonl
head -n $((MEMBERS / 100 + 1)) "$FILE" |
    sed 's/"estimatedPot":\([0-9]*\)/"estimatedPot":\11/g' >"$DELTA"

store_bytes() { # dir
    if [ "${STORE_BACKEND:-sqlite}" = postgres ]; then
        psql -Atq "$PDP_DATABASE_URL" -c "SELECT pg_database_size(current_database())"
    else
        du -cb "$1"/pdp.sqlite* | tail -n 1 | cut -f1
    fi
}

# serve DIR [2]: starts the endpoint on DIR's config (with 2, the second endpoint, on
# DIR/server2.toml); sets SERVER (SERVER2), and READY to the seconds it took to be ready.
serve() {
    local t0 pid ops=$OPS_PORT
    [ -n "${2:-}" ] && ops=$OPS_PORT2
    t0=$(now)
    RUST_LOG=warn "$BIN" serve --config "$1/server${2:-}.toml" >"$1/server${2:-}.log" 2>&1 &
    pid=$!
    if [ -n "${2:-}" ]; then SERVER2=$pid; else SERVER=$pid; fi
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops/health/ready")" = 200 ]; do
        kill -0 "$pid" 2>/dev/null || { cat "$1/server${2:-}.log" >&2; exit 2; }
        sleep 0.05
    done
    READY=$(since "$t0")
}

stop() {
    for pid in $SERVER $SERVER2; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    SERVER=""
    SERVER2=""
    for _ in $(seq 100); do
        port_free $SERVER_PORT && port_free $OPS_PORT && port_free $SERVER_PORT2 &&
            port_free $OPS_PORT2 && break
        sleep 0.1
    done
}

# The empty endpoint first: its resident memory is the baseline.
EMPTY=$TMP/empty
mkdir -p "$EMPTY"
fresh_database pdp_scale_empty
server_config "$EMPTY" 64 >"$EMPTY/server.toml"
serve "$EMPTY"
sleep 1
EMPTY_RSS=$(rss_kib "$SERVER")
stop

DIR=$WORK/store
rm -rf "$DIR"
mkdir -p "$DIR"
fresh_database pdp_scale
server_config "$DIR" 64 >"$DIR/server.toml"
echo "importing $MEMBERS members ..." >&2
t0=$(now)
"$BIN" members import "$FILE" --config "$DIR/server.toml" >"$DIR/import.log"
IMPORT_S=$(since "$t0")
BYTES=$(store_bytes "$DIR")

serve "$DIR"
READY_S=$READY
sleep 1
RSS=$(rss_kib "$SERVER")
# The second endpoint on the same store; both measured once both run.
READY2_S=0 RSS_A=0 RSS_B=0
if [ "$INSTANCES" = 2 ]; then
    server_config "$DIR" 64 $SERVER_PORT2 $OPS_PORT2 >"$DIR/server2.toml"
    serve "$DIR" 2
    READY2_S=$READY
    sleep 1
    RSS_A=$(rss_kib "$SERVER")
    RSS_B=$(rss_kib "$SERVER2")
fi

version() { curl -s "http://127.0.0.1:${1:-$OPS_PORT}/data-version" | tr -dc '0-9'; }
before=$(version)
t0=$(now)
"$BIN" members import "$DELTA" --config "$DIR/server.toml" >"$DIR/delta.log"
DELTA_S=$(since "$t0")
updated=$(sed -n 's/.* \([0-9]*\) updated.*/\1/p' "$DIR/delta.log")
want=$((before + ${updated:-0}))
until [ "$(version)" -ge "$want" ]; do sleep 0.05; done
if [ "$INSTANCES" = 2 ]; then
    until [ "$(version $OPS_PORT2)" -ge "$want" ]; do sleep 0.05; done
fi
LIVE_S=$(since "$t0")
stop

awk -v n="$MEMBERS" -v imp="$IMPORT_S" -v bytes="$BYTES" -v ready="$READY_S" -v rss="$RSS" \
    -v empty="$EMPTY_RSS" -v delta="$DELTA_S" -v live="$LIVE_S" -v host="$HOST" \
    -v cpus="$(nproc)" -v backend="${STORE_BACKEND:-sqlite}" -v changed="${updated:-0}" \
    -v two="$INSTANCES" -v ready2="$READY2_S" -v rssa="$RSS_A" -v rssb="$RSS_B" 'BEGIN {
    printf "%d members, %s, %d CPU(s), %s\n", n, backend, cpus, host
    printf "%-40s %14s\n", "import (members/s)", sprintf("%.0f", n / imp)
    printf "%-40s %14s\n", "import (s)", imp
    printf "%-40s %14s\n", "store (bytes per member)", sprintf("%.0f", bytes / n)
    printf "%-40s %14s\n", "ready after start (s)", ready
    printf "%-40s %14s\n", "ready after start (s per million)", sprintf("%.2f", ready * 1e6 / n)
    printf "%-40s %14s\n", "resident memory (MiB)", sprintf("%.0f", rss / 1024)
    printf "%-40s %14s\n", "resident memory, empty store (MiB)", sprintf("%.0f", empty / 1024)
    printf "%-40s %14s\n", "index (bytes per member)", sprintf("%.0f", (rss - empty) * 1024 / n)
    if (two == 2) {
        printf "%-40s %14s\n", "second instance: ready after start (s)", ready2
        printf "%-40s %14s\n", "two running: instance 1 memory (MiB)", sprintf("%.0f", rssa / 1024)
        printf "%-40s %14s\n", "two running: instance 2 memory (MiB)", sprintf("%.0f", rssb / 1024)
        printf "%-40s %14s\n", "two running: instance 1 index (B/member)",
            sprintf("%.0f", (rssa - empty) * 1024 / n)
        printf "%-40s %14s\n", "two running: instance 2 index (B/member)",
            sprintf("%.0f", (rssb - empty) * 1024 / n)
    }
    printf "%-40s %14s\n", "delta: members changed", changed
    printf "%-40s %14s\n", "delta import of 1% (s)", delta
    live_in = two == 2 ? "delta live in both indexes (s)" : "delta live in the index (s)"
    printf "%-40s %14s\n", live_in, live
    }' | tee "$OUT/scale.txt"
cat >"$OUT/scale.json" <<JSON
{"members": $MEMBERS, "backend": "${STORE_BACKEND:-sqlite}", "import_s": $IMPORT_S, "store_bytes": $BYTES,
 "ready_s": $READY_S, "rss_kib": $RSS, "empty_rss_kib": $EMPTY_RSS, "delta_changed": ${updated:-0},
 "delta_s": $DELTA_S, "delta_live_s": $LIVE_S, "instances": $INSTANCES, "ready2_s": $READY2_S,
 "both_rss_kib": [$RSS_A, $RSS_B]}
JSON
if [ "$HISTORY" != 0 ]; then
    load-tests/history.sh --finds "$HISTORY" --out "$OUT/history" ${KEEP:+--keep "$KEEP/history"}
fi
echo "results in $OUT" >&2
