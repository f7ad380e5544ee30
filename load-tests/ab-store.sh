#!/usr/bin/env bash
# What a change to the store's schema, or to the build, costs the durable ACK: two fresh SQLite
# stores with the same 2,000 generated members, SQL applied by hand to the second (an index
# dropped, for instance; "" for none), the second served by PDP_PROVIDER_BIN_B when set (another
# build of the endpoint), then the load tool closed loop (64 in flight, no-match finds) on each in
# turn, A B A B, for --rounds rounds of --duration seconds. Prints each run's ACKs/s and p99.9.
#
# usage: load-tests/ab-store.sh [--duration S] [--rounds R] "SQL FOR STORE B"
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider: store a's server, the load tool
#        and the set-up), PDP_PROVIDER_BIN_B (default the same: store b's server); needs sqlite3
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
BIN_B=${PDP_PROVIDER_BIN_B:-$BIN}
DURATION=15
ROUNDS=2
while [ $# -gt 1 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "ab-store.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
[ $# = 1 ] || { sed -n '2,8p' "$0" >&2; exit 64; }
SQL_B=$1
SERVER_PORT=18494
OPS_PORT=18495
CAS_PORT=18496
. load-tests/lib.sh
[ -x "$BIN" ] || { echo "ab-store.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
[ -x "$BIN_B" ] || { echo "ab-store.sh: $BIN_B not found" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "ab-store.sh: needs sqlite3" >&2; exit 2; }
require_free_ports ab-store.sh $SERVER_PORT $OPS_PORT

scratch ab

CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
"$BIN" members generate --count 2000 --seed 42 --out "$TMP/members.jsonl" 2>/dev/null
for n in a b; do
    mkdir -p "$TMP/$n"
    server_config "$TMP/$n" 0 >"$TMP/$n/server.toml"
    "$BIN" members import "$TMP/members.jsonl" --config "$TMP/$n/server.toml" >/dev/null
done
[ -z "$SQL_B" ] || sqlite3 "$TMP/b/pdp.sqlite" "$SQL_B"

for r in $(seq "$ROUNDS"); do
    for n in a b; do
        server_bin=$BIN
        [ "$n" = a ] || server_bin=$BIN_B
        RUST_LOG=warn "$server_bin" serve --config "$TMP/$n/server.toml" >"$TMP/$n/log" 2>&1 &
        SERVER=$!
        until curl -sf "http://127.0.0.1:$OPS_PORT/health/ready" >/dev/null; do
            kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/$n/log" >&2; exit 2; }
            sleep 0.1
        done
        "$BIN" load --quiet --closed-loop --concurrency 64 --mix 0,0,1 \
            --members "$TMP/members.jsonl" --target "https://127.0.0.1:$SERVER_PORT" \
            --certs "$CERTS" --duration "$DURATION" --name "ab-$n-$r" --out "$TMP/out-$n-$r" \
            >/dev/null || true
        kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
        SERVER=""
        printf 'store %s, round %s: %s ACKs/s, p99.9 %s ms\n' "$n" "$r" \
            "$(field "$TMP/out-$n-$r/result.json" achieved_rate)" \
            "$(field "$TMP/out-$n-$r/result.json" p999_ms)"
        for _ in $(seq 100); do port_free $SERVER_PORT && port_free $OPS_PORT && break; sleep 0.1; done
    done
done
