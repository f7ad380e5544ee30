#!/usr/bin/env bash
# The server's CPU samples during a 16 s closed-loop run (64 in flight, no-match finds), perf
# sampling its middle 8 s: `sim bare` (the bare hyper + tokio-rustls stack) or `serve` on the ACK
# path only (as load-tests/profile-ack.sh starts it). Folded stacks to DIR/NAME.folded; the load
# tool's rate printed (cats.py divides by it).
#
# usage: profile.sh bare|serve BIN NAME DIR
#        (serve built with no-store.patch and PDP_SCRATCH_NO_STORE=1 in the environment: the
#        endpoint with no store at all, each find "appended" at once)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
KIND=$1 BIN=$2 NAME=$3 DIR=$4
SERVER_PORT=18494 OPS_PORT=18495
. load-tests/lib.sh
TMP=$(mktemp -d -t pdp-prof.XXXXXX)
CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
cat >"$TMP/server.toml" <<CONF
[server]
listen = "127.0.0.1:$SERVER_PORT"
ops_listen = "127.0.0.1:$OPS_PORT"
[tls]
cert = "$CERTS/server.pem"
key = "$CERTS/server.key"
client_ca = "$CERTS/ca.pem"
[store]
path = "$TMP/pdp.sqlite"
queue_max_pending = 100000000
[crypto]
data_key_file = "$CERTS/data.key"
[workers]
concurrency = 0
[cas]
client_cert = "$CERTS/provider-client.pem"
client_key = "$CERTS/provider-client.key"
ca = "$CERTS/ca.pem"
[view]
signing_key = "$CERTS/view-signing.key"
CONF
if [ "$KIND" = bare ]; then
  "$BIN" sim bare --listen "127.0.0.1:$SERVER_PORT" --certs "$CERTS" >"$TMP/server.log" 2>&1 &
else
  RUST_LOG=warn "$BIN" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
fi
SP=$!
wait_for $SERVER_PORT
"$BIN" load --closed-loop --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
    --duration 16 --concurrency 64 --name prof --out "$TMP/load" >/dev/null &
LP=$!
sleep 4
perf record -F 499 --call-graph dwarf,32768 -p "$SP" -o "$TMP/perf.data" -- sleep 8 2>"$TMP/perf.log"
wait $LP || true
perf script -i "$TMP/perf.data" 2>/dev/null | inferno-collapse-perf >"$DIR/$NAME.folded"
echo "$NAME rate: $(field "$TMP/load/result.json" achieved_rate)"
kill $SP; wait $SP 2>/dev/null || true
rm -rf "$TMP"
