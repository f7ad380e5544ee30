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
# Then, unless --history 0, six years of history (load-tests/history.sh with --history finds,
# 10,000,000 by default): the ACK on a seeded store against an empty one, the purge of a year
# under load, `audit export --request-id` and `sla report --month`.
#
# Results go to OUT/scale.txt (a table) and OUT/scale.json, and OUT/history/history.txt.
#
# usage: load-tests/scale.sh [--members N] [--history FINDS] [--out DIR] [--keep DIR]
#        --keep DIR keeps the generated file and the stores there (and reuses them)
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
#        STORE_BACKEND=postgres with PG_BASE (key-value connection string without dbname) runs
#        it on PostgreSQL
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
MEMBERS=1000000
HISTORY=10000000
OUT=""
KEEP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --members) MEMBERS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=$2; shift 2 ;;
        --history) HISTORY=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "scale.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
case "$MEMBERS" in
    '' | *[!0-9]* | 0) echo "scale.sh: --members must be a whole number from 1" >&2; exit 64 ;;
esac
SERVER_PORT=18474
OPS_PORT=18475
CAS_PORT=18476
. load-tests/lib.sh
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/scale}
[ -x "$BIN" ] || { echo "scale.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
require_free_ports scale.sh $SERVER_PORT $OPS_PORT

TMP=$(mktemp -d -t pdp-scale.XXXXXX)
WORK=${KEEP:-$TMP}
mkdir -p "$WORK" "$OUT"
SERVER=""
cleanup() {
    set +e
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
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

# serve DIR: starts the endpoint on DIR's config; sets SERVER, and READY to the seconds it took
# to be ready.
serve() {
    local t0
    t0=$(now)
    RUST_LOG=warn "$BIN" serve --config "$1/server.toml" >"$1/server.log" 2>&1 &
    SERVER=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/health/ready")" = 200 ]; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$1/server.log" >&2; exit 2; }
        sleep 0.05
    done
    READY=$(since "$t0")
}

stop() {
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=""
    for _ in $(seq 100); do port_free $SERVER_PORT && port_free $OPS_PORT && break; sleep 0.1; done
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

version() { curl -s "http://127.0.0.1:$OPS_PORT/data-version" | tr -dc '0-9'; }
before=$(version)
t0=$(now)
"$BIN" members import "$DELTA" --config "$DIR/server.toml" >"$DIR/delta.log"
DELTA_S=$(since "$t0")
updated=$(sed -n 's/.* \([0-9]*\) updated.*/\1/p' "$DIR/delta.log")
want=$((before + ${updated:-0}))
until [ "$(version)" -ge "$want" ]; do sleep 0.05; done
LIVE_S=$(since "$t0")
stop

awk -v n="$MEMBERS" -v imp="$IMPORT_S" -v bytes="$BYTES" -v ready="$READY_S" -v rss="$RSS" \
    -v empty="$EMPTY_RSS" -v delta="$DELTA_S" -v live="$LIVE_S" -v host="$HOST" \
    -v cpus="$(nproc)" -v backend="${STORE_BACKEND:-sqlite}" -v changed="${updated:-0}" 'BEGIN {
    printf "%d members, %s, %d CPU(s), %s\n", n, backend, cpus, host
    printf "%-40s %14s\n", "import (members/s)", sprintf("%.0f", n / imp)
    printf "%-40s %14s\n", "import (s)", imp
    printf "%-40s %14s\n", "store (bytes per member)", sprintf("%.0f", bytes / n)
    printf "%-40s %14s\n", "ready after start (s)", ready
    printf "%-40s %14s\n", "ready after start (s per million)", sprintf("%.2f", ready * 1e6 / n)
    printf "%-40s %14s\n", "resident memory (MiB)", sprintf("%.0f", rss / 1024)
    printf "%-40s %14s\n", "resident memory, empty store (MiB)", sprintf("%.0f", empty / 1024)
    printf "%-40s %14s\n", "index (bytes per member)", sprintf("%.0f", (rss - empty) * 1024 / n)
    printf "%-40s %14s\n", "delta: members changed", changed
    printf "%-40s %14s\n", "delta import of 1% (s)", delta
    printf "%-40s %14s\n", "delta live in the index (s)", live
    }' | tee "$OUT/scale.txt"
cat >"$OUT/scale.json" <<JSON
{"members": $MEMBERS, "backend": "${STORE_BACKEND:-sqlite}", "import_s": $IMPORT_S, "store_bytes": $BYTES,
 "ready_s": $READY_S, "rss_kib": $RSS, "empty_rss_kib": $EMPTY_RSS, "delta_changed": ${updated:-0},
 "delta_s": $DELTA_S, "delta_live_s": $LIVE_S}
JSON
# (history.sh seeds SQLite stores; on PostgreSQL the history is not measured here.)
if [ "$HISTORY" != 0 ] && [ "${STORE_BACKEND:-sqlite}" = sqlite ]; then
    load-tests/history.sh --finds "$HISTORY" --out "$OUT/history" ${KEEP:+--keep "$KEEP/history"}
fi
echo "results in $OUT" >&2
