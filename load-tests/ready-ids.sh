#!/usr/bin/env bash
# Time to ready with a busy day behind the endpoint (SQLite): the writer reads the last day's
# find IDs at start (`store/sqlite/recent.rs`), so a restart after a day of IDS no-match finds
# takes longer than one on an empty store. This writes IDS no-match ACK records (hyphenated
# lower-case UUIDs, as the endpoint's own, received over the last 23 hours) straight into a
# fresh store with sqlite3, then starts `serve` on it --rounds times and prints the seconds from
# each start to /health/ready answering 200. With PDP_PROVIDER_BIN_B it starts that build too,
# alternately, on the same store: A B A B ...
#
# usage: load-tests/ready-ids.sh [--ids N] [--rounds R]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider), PDP_PROVIDER_BIN_B (optional);
#        needs sqlite3 and curl
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
BIN_B=${PDP_PROVIDER_BIN_B:-}
IDS=1700000
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --ids) IDS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "ready-ids.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
for tool in sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "ready-ids.sh: $tool is needed" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "ready-ids.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
SERVER_PORT=18497
OPS_PORT=18498
CAS_PORT=18499
. load-tests/lib.sh
require_free_ports ready-ids.sh $SERVER_PORT $OPS_PORT

scratch ready-ids

CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
server_config "$TMP" 64 >"$TMP/server.toml"

# ready BIN: starts BIN's `serve` on the store, prints the seconds until it is ready, stops it.
ready() {
    local t0
    t0=$(now)
    RUST_LOG=warn "$1" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
    SERVER=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/health/ready")" = 200 ]; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 2; }
        sleep 0.01
    done
    since "$t0"
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    for _ in $(seq 100); do
        port_free $SERVER_PORT && port_free $OPS_PORT && break
        sleep 0.1
    done
}

# The schema, from a first start on the empty store.
echo "empty store: ready after $(ready "$BIN") s" >&2
NOW_US=$(($(date +%s) * 1000000))
sqlite3 "$TMP/pdp.sqlite" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $IDS - 1)
INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint, received_at,
                       responded_at, status, latency_us, outcome)
SELECT id, id, 'inbound', 'pfs', 'POST /find-requests', at, at + 2000, 202, 2000, 'no-match'
  FROM (SELECT lower(printf('%s-%s-4%s-8%s-%s', hex(randomblob(4)), hex(randomblob(2)),
                            substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2),
                            hex(randomblob(6)))) AS id,
               $NOW_US - 82800000000 + i * (82800000000 / $IDS) AS at
          FROM n);
SQL
echo "$IDS no-match ACK records written over the last 23 hours" >&2
for r in $(seq "$ROUNDS"); do
    echo "A, round $r: ready after $(ready "$BIN") s"
    if [ -n "$BIN_B" ]; then
        echo "B, round $r: ready after $(ready "$BIN_B") s"
    fi
done
