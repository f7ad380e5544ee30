# Where the PostgreSQL ACK's WAL goes: a fresh database, 2,000 members, the build of 22d2400
# (/tmp/pdp-unlogged), a 5 s warm run, CHECKPOINT, a 10 s closed-loop run (64 in flight, no-match
# finds), then pg_walinspect over the WAL between the two LSNs, by record type and by relation
# (bytes an ACK). Run against the scripts/pg server (PostgreSQL 15): bash walinspect.sh
set -euo pipefail
cd /work/main
BIN=/tmp/pdp-unlogged
PG_BASE="$(sed 's/ dbname=postgres//' /tmp/pgurl)"
export STORE_BACKEND=postgres
SERVER_PORT=18511; OPS_PORT=18512; CAS_PORT=18513
. load-tests/lib.sh
TMP=/tmp/walp/t; rm -rf $TMP; mkdir -p $TMP
CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
"$BIN" members generate --count 2000 --seed 42 --out "$TMP/members.jsonl" 2>/dev/null
fresh_database pdp_walp
server_config "$TMP" 64 >"$TMP/server.toml"
"$BIN" members import "$TMP/members.jsonl" --config "$TMP/server.toml" >/dev/null
RUST_LOG=warn "$BIN" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
SERVER=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/health/ready")" = 200 ]; do sleep 0.1; done
# warm: a first run so that the tables have pages, then checkpoint, then the measured run
"$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" --members "$TMP/members.jsonl" --duration 5 --closed-loop --concurrency 64 --mix 0,0,1 --name w --out "$TMP/w" >/dev/null || true
psql -q "$PG_BASE" -c CHECKPOINT
START=$(psql -Atq "$PG_BASE" -c "SELECT pg_current_wal_lsn()")
"$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" --members "$TMP/members.jsonl" --duration 10 --closed-loop --concurrency 64 --mix 0,0,1 --name m --out "$TMP/m" >/dev/null || true
END=$(psql -Atq "$PG_BASE" -c "SELECT pg_current_wal_lsn()")
kill $SERVER; wait $SERVER 2>/dev/null || true
ACKED=$(field "$TMP/m/result.json" acked)
echo "start $START end $END acked $ACKED"
psql -q "$PG_BASE dbname=pdp_walp" -c "CREATE EXTENSION IF NOT EXISTS pg_walinspect"
psql "$PG_BASE dbname=pdp_walp" -c "SELECT \"resource_manager/record_type\" AS kind, count, round(record_size::numeric/$ACKED,1) AS rec_per_ack, round(fpi_size::numeric/$ACKED,1) AS fpi_per_ack, round(combined_size::numeric/$ACKED,1) AS per_ack FROM pg_get_wal_stats('$START', '$END', true) WHERE count > 0 ORDER BY combined_size DESC LIMIT 14"
psql "$PG_BASE dbname=pdp_walp" -c "WITH r AS (SELECT (regexp_match(block_ref, 'rel \d+/\d+/(\d+)'))[1]::oid AS node, record_length, fpi_length FROM pg_get_wal_records_info('$START', '$END')) SELECT coalesce((SELECT relname FROM pg_class WHERE relfilenode = r.node), r.node::text, '(none)') AS rel, count(*), round(sum(record_length)::numeric/$ACKED,1) AS bytes_per_ack, round(sum(fpi_length)::numeric/$ACKED,1) AS fpi_per_ack FROM r GROUP BY 1 ORDER BY 3 DESC LIMIT 12"
psql -q "$PG_BASE" -c "DROP DATABASE pdp_walp WITH (FORCE)"
