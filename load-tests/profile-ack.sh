#!/usr/bin/env bash
# Where a durable find ACK's CPU goes: starts `pdp-provider serve` on the ACK path only (no
# workers, a fresh SQLite store, as load-tests/ceiling.sh does), drives it closed loop with the
# load tool (no-match finds), samples the server with `perf record --call-graph dwarf` for the
# middle of the run, and draws a flame graph with inferno. With --bare it samples `pdp-provider
# sim bare` (the hyper + tokio-rustls stack the endpoint is built on, as load-tests/ceiling.sh
# measures it) under the same load instead: the two folded stacks compare a request's cost.
#
# usage: load-tests/profile-ack.sh [--duration S] [--concurrency C] [--out FILE.svg] [--bare]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; its debug line tables, from the
#        release profile's debug = 1, name the frames)
# needs: perf (Debian's linux-perf), inferno-collapse-perf and inferno-flamegraph
#        (cargo install inferno --locked)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
DURATION=20
CONCURRENCY=64
OUT=docs/profiles/ack.svg
BARE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --bare) BARE=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "profile-ack.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "profile-ack.sh: $tool is needed" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "profile-ack.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
SERVER_PORT=18494
OPS_PORT=18495
. load-tests/lib.sh
require_free_ports profile-ack.sh $SERVER_PORT $OPS_PORT

TMP=$(mktemp -d -t pdp-profile.XXXXXX)
SERVER_PID=""
LOAD_PID=""
cleanup() {
    set +e
    for pid in $LOAD_PID $SERVER_PID; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
if [ "$BARE" = 1 ]; then
    "$BIN" sim bare --listen "127.0.0.1:$SERVER_PORT" --certs "$CERTS" >"$TMP/server.log" 2>&1 &
else
    RUST_LOG=warn "$BIN" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
fi
SERVER_PID=$!
wait_for $SERVER_PORT

"$BIN" load --closed-loop --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
    --duration "$DURATION" --concurrency "$CONCURRENCY" --name profile-ack \
    --out "$TMP/load" >/dev/null &
LOAD_PID=$!
# The middle of the run: past the warm-up, before the end.
sleep $((DURATION / 4))
perf record -F 499 --call-graph dwarf,32768 -p "$SERVER_PID" -o "$TMP/perf.data" \
    -- sleep $((DURATION / 2)) 2>"$TMP/perf.log"
wait "$LOAD_PID" || true
LOAD_PID=""
mkdir -p "$(dirname "$OUT")"
perf script -i "$TMP/perf.data" 2>/dev/null | inferno-collapse-perf >"$TMP/folded"
WHAT="durable find ACK"
[ "$BARE" = 1 ] && WHAT="the bare hyper + tokio-rustls stack's 202"
inferno-flamegraph --title "pdp-provider: $WHAT, closed loop, $CONCURRENCY in flight" \
    <"$TMP/folded" >"$OUT"
gzip -c "$TMP/folded" >"${OUT%.svg}.folded.gz"
echo "ACKs/s: $(field "$TMP/load/result.json" achieved_rate)" >&2
# Each thread's share of the samples (the first frame of a folded stack is its thread's name).
awk '{ n = $NF; split($1, f, ";"); t[f[1]] += n; all += n }
     END { for (k in t) printf "%6.1f%%  %s\n", 100 * t[k] / all, k }' "$TMP/folded" |
    sort -rn >&2
echo "flame graph: $OUT (stacks: ${OUT%.svg}.folded.gz)" >&2
