#!/usr/bin/env bash
# What the durable ACK writes to PostgreSQL's WAL, A/B: for each round, a fresh database with
# the same 2,000 generated members, the endpoint served by build A or B in turn (A B A B), the
# server checkpointed, then the load tool closed loop (64 in flight, no-match finds) for
# --duration seconds. Prints each run's ACKs/s, p99.9, slowest ACK, the WAL written during it
# (from pg_current_wal_lsn) and that per ACK. The endpoint's own upkeep (the recent look-up's
# slices, every two seconds) runs during the load as it would in production.
#
# usage: load-tests/pg-wal.sh [--duration S] [--rounds R]
# env:   PG_BASE (key-value connection string without dbname, as scripts/pg prints it),
#        PDP_PROVIDER_BIN (default target/release/pdp-provider: build A, the load tool and the
#        set-up), PDP_PROVIDER_BIN_B (default the same: build B)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
BIN_B=${PDP_PROVIDER_BIN_B:-$BIN}
DURATION=15
ROUNDS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "pg-wal.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
[ -n "${PG_BASE:-}" ] || { echo "pg-wal.sh: needs PG_BASE" >&2; exit 64; }
[ -x "$BIN" ] && [ -x "$BIN_B" ] || { echo "pg-wal.sh: $BIN or $BIN_B not found" >&2; exit 2; }
export STORE_BACKEND=postgres
SERVER_PORT=18501
OPS_PORT=18502
CAS_PORT=18503
. load-tests/lib.sh
require_free_ports pg-wal.sh $SERVER_PORT $OPS_PORT

scratch pg-wal
trap 'set +e; [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null;
      psql -q "$PG_BASE" -c "DROP DATABASE IF EXISTS pdp_wal WITH (FORCE)" >/dev/null; rm -rf "$TMP"' EXIT

CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
"$BIN" members generate --count 2000 --seed 42 --out "$TMP/members.jsonl" 2>/dev/null
lsn() { psql -Atq "$PG_BASE" -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }

run() { # BUILD LABEL
    fresh_database pdp_wal
    server_config "$TMP" 64 >"$TMP/server.toml"
    "$1" members import "$TMP/members.jsonl" --config "$TMP/server.toml" >/dev/null
    RUST_LOG=warn "$1" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
    SERVER=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/health/ready")" = 200 ]; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 2; }
        sleep 0.1
    done
    psql -q "$PG_BASE" -c CHECKPOINT
    local before after
    before=$(lsn)
    "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
        --members "$TMP/members.jsonl" --duration "$DURATION" --closed-loop --concurrency 64 \
        --mix 0,0,1 --name "pg-wal-$2" --out "$TMP/$2" >/dev/null || true
    after=$(lsn)
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=""
    for _ in $(seq 100); do port_free $SERVER_PORT && port_free $OPS_PORT && break; sleep 0.1; done
    local acked rate p max
    acked=$(field "$TMP/$2/result.json" acked)
    rate=$(field "$TMP/$2/result.json" achieved_rate)
    p=$(field "$TMP/$2/result.json" p999_ms)
    max=$(field "$TMP/$2/result.json" max_ms)
    awk -v l="$2" -v r="$rate" -v p="$p" -v m="$max" -v w="$((after - before))" -v n="$acked" \
        'BEGIN { printf "%s: %.0f ACKs/s, p99.9 %s ms, slowest %s ms, WAL %.1f MB, %.0f bytes an ACK\n", l, r, p, m, w / 1e6, w / n }'
}

for i in $(seq "$ROUNDS"); do
    run "$BIN" "a$i"
    run "$BIN_B" "b$i"
done
