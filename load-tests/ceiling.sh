#!/usr/bin/env bash
# The ceiling: how close this endpoint's durable find ACK comes to a static answer over the
# same mutual TLS. In one run and with the same client settings it measures, closed loop:
#
#   1. nginx on 127.0.0.1:18443 answering POST /find-requests with a static 202 (client
#      certificate required and verified against the same CA), worker_processes = nproc;
#   2. `pdp-provider serve` on 127.0.0.1:18444 with a temporary store and workers.concurrency = 0,
#      so only the ACK path (parse, seal, group commit with fsync, 202) is measured;
#
# and prints both throughputs and their ratio. Everything it starts is stopped on exit.
#
# usage: load-tests/ceiling.sh [--duration S] [--concurrency C] [--connections N] [--out DIR]
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
DURATION=10
CONCURRENCY=64
CONNECTIONS=4
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "ceiling.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
NGINX_PORT=18443
SERVER_PORT=18444
OPS_PORT=18445
NPROC=$(nproc 2>/dev/null || echo 1)
HOST=$(hostname 2>/dev/null | tr -c 'A-Za-z0-9.\n-' '_' || echo unknown-host)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/ceiling}

if [ ! -x "$BIN" ]; then
    echo "ceiling.sh: $BIN not found; run cargo build --release first" >&2
    exit 2
fi
if ! command -v nginx >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing nginx ..." >&2
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
    else
        echo "ceiling.sh: nginx is needed (apt-get install nginx-light)" >&2
        exit 2
    fi
fi
NGINX=$(command -v nginx)

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $NGINX_PORT $SERVER_PORT $OPS_PORT; do
    if ! port_free "$p"; then
        echo "ceiling.sh: 127.0.0.1:$p is in use" >&2
        exit 2
    fi
done

TMP=$(mktemp -d -t pdp-ceiling.XXXXXX)
NGINX_PID=""
SERVER_PID=""
LOAD_PID=""
cleanup() {
    set +e
    for pid in $LOAD_PID $NGINX_PID $SERVER_PID; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh dev PKI for both servers and the client.
CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null

# 1. nginx: a static 202 over mTLS, one worker per CPU, with a temp prefix. Its master stays a
#    child of this script (daemon off, in the background) so it is stopped and reaped by pid.
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<CONF
daemon off;
user $(id -un) $(id -gn);
worker_processes $NPROC;
pid $TMP/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $CERTS/server.pem;
        ssl_certificate_key $CERTS/server.key;
        ssl_client_certificate $CERTS/ca.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /find-requests {
            limit_except POST { deny all; }
            default_type application/json;
            return 202 '{"message":"ACCEPTED"}';
        }
        location / { return 404; }
    }
}
CONF
"$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx.conf" &
NGINX_PID=$!

# 2. this endpoint: ACK path only.
{
    cat <<CONF
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
CONF
    if [ -f "$CERTS/view-signing.key" ]; then
        printf '\n[view]\nsigning_key = "%s"\n' "$CERTS/view-signing.key"
    fi
} >"$TMP/server.toml"
RUST_LOG=warn "$BIN" serve --config "$TMP/server.toml" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

wait_for() {
    for _ in $(seq 100); do
        if ! port_free "$1"; then return 0; fi
        sleep 0.1
    done
    echo "ceiling.sh: nothing listening on 127.0.0.1:$1" >&2
    cat "$TMP/server.log" "$TMP/nginx/error.log" >&2 2>/dev/null || true
    exit 2
}
wait_for $NGINX_PORT
wait_for $SERVER_PORT

measure() { # name port
    # In the background and waited for, so a signal to this script is handled at once.
    "$BIN" load --closed-loop --quiet \
        --target "https://127.0.0.1:$2" --certs "$CERTS" \
        --duration "$DURATION" --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" \
        --name "ceiling-$1" --out "$OUT/$1" >/dev/null &
    LOAD_PID=$!
    wait "$LOAD_PID" || true
    LOAD_PID=""
    if [ ! -f "$OUT/$1/result.json" ]; then
        echo "ceiling.sh: the $1 run wrote no result" >&2
        exit 2
    fi
}
field() { # file key: the first occurrence (phase main, ACK series)
    sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1" | head -n 1
}

echo "closed loop, $CONCURRENCY at once over $CONNECTIONS client(s), ${DURATION} s each, $NPROC CPU(s), $HOST"
measure nginx $NGINX_PORT
measure endpoint $SERVER_PORT

NGINX_RATE=$(field "$OUT/nginx/result.json" achieved_rate)
SERVER_RATE=$(field "$OUT/endpoint/result.json" achieved_rate)
{
    printf '%-34s %12s %10s %10s %8s\n' "" "finds/s" "p50 ms" "p99 ms" "errors"
    for n in nginx endpoint; do
        f=$OUT/$n/result.json
        label="nginx static 202 (mTLS)"
        [ $n = endpoint ] && label="pdp-provider durable ACK (mTLS)"
        printf '%-34s %12.0f %10.2f %10.2f %8s\n' "$label" \
            "$(field "$f" achieved_rate)" "$(field "$f" p50_ms)" "$(field "$f" p99_ms)" \
            "$(field "$f" errors)"
    done
    awk -v s="$SERVER_RATE" -v n="$NGINX_RATE" \
        'BEGIN { if (n > 0) printf "ratio: the durable ACK reaches %.1f%% of the static ceiling\n", 100 * s / n }'
} | tee "$OUT/ceiling.txt"
echo "results in $OUT"
