#!/usr/bin/env bash
# The ceiling: how close this endpoint's durable find ACK comes to a static answer over the
# same mutual TLS. In one run and with the same client settings it measures, closed loop:
#
#   1. nginx on 127.0.0.1:18443 answering POST /find-requests with a static 202 (client
#      certificate required and verified against the same CA), worker_processes = nproc;
#   2. `pdp-provider sim bare` on 127.0.0.1:18446: the stack the endpoint is built on (hyper +
#      tokio-rustls, the same rustls configuration and certificates) answering 202 after reading
#      the body, and nothing else;
#   3. `pdp-provider serve` on 127.0.0.1:18444 with a temporary store and workers.concurrency = 0,
#      so only the ACK path (parse, match, seal, group commit with fsync, audit, 202) is measured;
#
# each once a round (--rounds, in that order), and prints the throughputs, the CPU time the
# bare stack and the endpoint spent a request, the load tool's CPU time a request and the share
# of the machine's time idle during each run (closed loop on the same CPUs, the rate goes as one
# over the client's and the server's CPU a request while nothing idles), and the durable ACK's
# share of each static answer (medians over the rounds). Everything it starts is stopped on
# exit.
#
# With --with-oha it also measures nginx with `oha` (same concurrency as connections, HTTP/1.1,
# same duration, same mTLS identity, a find-sized POST body), alternating with the load tool
# for --rounds rounds, and prints the load tool's rate as a share of oha's: how far the load
# tool itself is from being the bottleneck. --nginx-only skips the endpoint.
#
# usage: load-tests/ceiling.sh [--duration S] [--concurrency C] [--connections N] [--out DIR]
#                              [--with-oha] [--rounds R] [--nginx-only]
#        (--connections is passed on to the load tool; its closed loop opens a connection per
#        task, so it matters only to builds from before that)
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
#        OHA_BIN (default: oha on the PATH; cargo install oha --locked)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
DURATION=10
CONCURRENCY=64
CONNECTIONS=4
OUT=""
WITH_OHA=0
ROUNDS=1
NGINX_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --with-oha) WITH_OHA=1; shift ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --nginx-only) NGINX_ONLY=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "ceiling.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
case "$ROUNDS" in
    '' | *[!0-9]* | 0) echo "ceiling.sh: --rounds must be a whole number from 1" >&2; exit 64 ;;
esac
NGINX_PORT=18443
SERVER_PORT=18444
OPS_PORT=18445
BARE_PORT=18446
NPROC=$(nproc 2>/dev/null || echo 1)
. load-tests/lib.sh
HOST=$(host_name)
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
OHA=${OHA_BIN:-oha}
if [ "$WITH_OHA" = 1 ] && ! command -v "$OHA" >/dev/null 2>&1; then
    echo "ceiling.sh: --with-oha needs oha (cargo install oha --locked, or OHA_BIN)" >&2
    exit 2
fi

require_free_ports ceiling.sh $NGINX_PORT $SERVER_PORT $OPS_PORT $BARE_PORT

TMP=$(mktemp -d -t pdp-ceiling.XXXXXX)
NGINX_PID=""
SERVER_PID=""
BARE_PID=""
LOAD_PID=""
cleanup() {
    set +e
    for pid in $LOAD_PID $NGINX_PID $SERVER_PID $BARE_PID; do
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
if [ "$NGINX_ONLY" = 0 ]; then
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
"$BIN" sim bare --listen "127.0.0.1:$BARE_PORT" --certs "$CERTS" >"$TMP/bare.log" 2>&1 &
BARE_PID=$!
fi

wait_for $NGINX_PORT
[ "$NGINX_ONLY" = 1 ] || { wait_for $SERVER_PORT; wait_for $BARE_PORT; }

cpu_ticks() { # pid: its user + system time so far, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
idle_ticks() { # the machine's idle and I/O wait time so far, and all its time, in clock ticks
    # (user to steal: the guest fields after them are counted in user and nice already)
    awk 'NR == 1 { t = 0; for (i = 2; i <= 9 && i <= NF; i++) t += $i; print $5 + $6, t }' /proc/stat
}
children_ticks() { # the CPU time of this script's children it has waited for, in clock ticks
    awk '{ print $16 + $17 }' "/proc/$$/stat"
}
measure() { # name port [server pid: its CPU time over the run goes to OUT/name/cpu_ticks]
    [ -z "${3:-}" ] || before=$(cpu_ticks "$3")
    read -r idle_before all_before < <(idle_ticks)
    mkdir -p "$OUT/$1"
    # In the background and waited for, so a signal to this script is handled at once. Its CPU
    # time: this script's waited-for children's before and after (the few reads of `/proc` in
    # between are counted too: milliseconds against seconds).
    children_before=$(children_ticks)
    "$BIN" load --closed-loop --quiet \
        --target "https://127.0.0.1:$2" --certs "$CERTS" \
        --duration "$DURATION" --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" \
        --name "ceiling-$1" --out "$OUT/$1" >/dev/null &
    LOAD_PID=$!
    wait "$LOAD_PID" || true
    LOAD_PID=""
    echo $(($(children_ticks) - children_before)) >"$OUT/$1/load_cpu_ticks"
    if [ ! -f "$OUT/$1/result.json" ]; then
        echo "ceiling.sh: the $1 run wrote no result" >&2
        exit 2
    fi
    read -r idle_after all_after < <(idle_ticks)
    awk -v i=$((idle_after - idle_before)) -v a=$((all_after - all_before)) \
        'BEGIN { if (a > 0) printf "%.1f\n", 100 * i / a }' >"$OUT/$1/idle_percent"
    [ -z "${3:-}" ] || echo $(($(cpu_ticks "$3") - before)) >"$OUT/$1/cpu_ticks"
}

# oha gets what the load tool sends: a POST of a find-sized JSON body (a JWT-shaped UAT and
# the find data) with Content-Type and X-Request-ID, one request at a time per connection.
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
printf '{"uat":"%s.%s.%s","findData":{"names":[{"givenName":"ELIZABETH","familyName":"NOBODY-LIKETHIS","verified":true}],"dateOfBirth":{"value":"1961-07-14","verified":true},"nino":{"value":"AB123456C","verified":false},"addresses":[{"addressLine1":"221 Long Meadow Road","postcode":"AB12 3CD","countryCode":"GB","verified":true}]}}' \
    "$(b64url '{"alg":"RS256","typ":"JWT"}')" \
    "$(b64url '{"aud":"cas","exp":1790000000,"iss":"http://pensionsdashboard.org/pfsissuer","sub":"7a0c2d3e-8a4f-4e55-9c1b-2f6d0e9a1b3c"}')" \
    "$(b64url 'simulated-signature')" >"$TMP/find.json"
measure_oha() { # name port
    mkdir -p "$OUT/$1"
    "$OHA" --no-tui --output-format json -o "$OUT/$1/oha.json" \
        -z "${DURATION}s" -c "$CONCURRENCY" --http-version 1.1 \
        --cacert "$CERTS/ca.pem" --cert "$CERTS/pfs.pem" --key "$CERTS/pfs.key" \
        -m POST -H "Content-Type: application/json" \
        -H "X-Request-ID: 4b5e7c1a-2f3d-4e6a-9b8c-0d1e2f3a4b5c" -D "$TMP/find.json" \
        "https://127.0.0.1:$2/find-requests" >/dev/null 2>"$OUT/$1/oha.err" &
    LOAD_PID=$!
    wait "$LOAD_PID" || true
    LOAD_PID=""
    if [ ! -s "$OUT/$1/oha.json" ]; then
        echo "ceiling.sh: the $1 run wrote no result" >&2
        cat "$OUT/$1/oha.err" >&2
        exit 2
    fi
}
oha_field() { # file: prints "rate p50_ms p99_ms errors" (202s per second over the run)
    # Requests cut off at the deadline ("aborted due to deadline") are not errors, as the load
    # tool does not count what it never sent.
    tr -d ' \n' <"$1" | awk '
        function block(name,   s) { # the {...} after "name": (no nested braces)
            if (!match($0, "\"" name "\":\\{[^}]*\\}")) return ""
            s = substr($0, RSTART, RLENGTH); sub(/^[^{]*\{/, "", s); sub(/\}$/, "", s)
            return s
        }
        function get(b, key,   n, kv, i, p) {
            n = split(b, kv, ",")
            for (i = 1; i <= n; i++) { split(kv[i], p, "\":"); if (p[1] == "\"" key) return p[2] + 0 }
            return 0
        }
        function sum(b, skip,   n, kv, i, p, t) {
            n = split(b, kv, ","); t = 0
            for (i = 1; i <= n; i++) { split(kv[i], p, "\":"); if (p[1] != "\"" skip) t += p[2] }
            return t
        }
        {
            total = get(block("summary"), "total")
            codes = block("statusCodeDistribution"); acked = get(codes, "202")
            errs = sum(codes, "202") + sum(block("errorDistribution"), "abortedduetodeadline")
            lat = block("latency_ms")
            printf "%.1f %.3f %.3f %d\n", (total > 0 ? acked / total : 0), get(lat, "p50"), get(lat, "p99"), errs
        }'
}

label_of() { # name: what was measured with what, and the round when there are several
    round=${1#*-}
    [ "$round" != "$1" ] || round=1
    case "$1" in
        nginx*) printf 'nginx static 202, pdp-provider load' ;;
        oha*) printf 'nginx static 202, oha' ;;
        bare*) printf 'bare hyper + tokio-rustls 202' ;;
        endpoint*) printf 'pdp-provider durable ACK' ;;
    esac
    if [ "$ROUNDS" -gt 1 ]; then printf ' #%s' "$round"; fi
    echo
}
row() { # name: "rate p50 p99 errors"
    if [ "${1#oha}" != "$1" ]; then
        oha_field "$OUT/$1/oha.json"
    else
        f=$OUT/$1/result.json
        echo "$(field "$f" achieved_rate) $(field "$f" p50_ms) $(field "$f" p99_ms) $(field "$f" errors)"
    fi
}

echo "closed loop, $CONCURRENCY at once (a connection each), ${DURATION} s each, $NPROC CPU(s), $HOST"
RUNS=""
for r in $(seq "$ROUNDS"); do
    suffix=""
    [ "$r" = 1 ] || suffix="-$r"
    measure "nginx$suffix" $NGINX_PORT
    RUNS="$RUNS nginx$suffix"
    if [ "$WITH_OHA" = 1 ]; then
        measure_oha "oha$suffix" $NGINX_PORT
        RUNS="$RUNS oha$suffix"
    fi
    if [ "$NGINX_ONLY" = 0 ]; then
        measure "bare$suffix" $BARE_PORT "$BARE_PID"
        measure "endpoint$suffix" $SERVER_PORT "$SERVER_PID"
        RUNS="$RUNS bare$suffix endpoint$suffix"
    fi
done

{
    # The server's CPU a request (user + system time over the load tool's run, over its
    # requests): the bare stack and the endpoint, which run as one process each.
    TCK=$(getconf CLK_TCK)
    printf '%-44s %12s %10s %10s %8s %12s %12s %7s\n' "(mTLS, HTTP/1.1)" "finds/s" "p50 ms" \
        "p99 ms" "errors" "CPU us/req" "load us/req" "idle %"
    per_request() { # file of ticks, rate: CPU microseconds a request over the run, or -
        if [ -s "$1" ]; then
            awk -v t="$(cat "$1")" -v k="$TCK" -v r="$2" -v d="$DURATION" \
                'BEGIN { if (r > 0) printf "%.1f", t / k * 1e6 / (r * d); else print "-" }'
        else
            echo -
        fi
    }
    for n in $RUNS; do
        set -- $(row "$n")
        cpu=$(per_request "$OUT/$n/cpu_ticks" "$1")
        load_cpu=$(per_request "$OUT/$n/load_cpu_ticks" "$1")
        idle=$(cat "$OUT/$n/idle_percent" 2>/dev/null || echo -)
        printf '%-44s %12.0f %10.2f %10.2f %8s %12s %12s %7s\n' "$(label_of "$n")" "$1" "$2" "$3" \
            "$4" "$cpu" "$load_cpu" "${idle:--}"
    done
    NGINX_RATES=""
    OHA_RATES=""
    BARE_RATES=""
    SERVER_RATES=""
    for n in $RUNS; do
        case "$n" in
            nginx*) NGINX_RATES="$NGINX_RATES $(row "$n" | cut -d' ' -f1)" ;;
            oha*) OHA_RATES="$OHA_RATES $(row "$n" | cut -d' ' -f1)" ;;
            bare*) BARE_RATES="$BARE_RATES $(row "$n" | cut -d' ' -f1)" ;;
            endpoint*) SERVER_RATES="$SERVER_RATES $(row "$n" | cut -d' ' -f1)" ;;
        esac
    done
    median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
    NGINX_RATE=$(median "$NGINX_RATES")
    if [ "$WITH_OHA" = 1 ]; then
        OHA_RATE=$(median "$OHA_RATES")
        awk -v l="$NGINX_RATE" -v o="$OHA_RATE" -v r="$ROUNDS" \
            'BEGIN { if (o > 0) printf "load tool vs oha (median of %d): %.0f/s vs %.0f/s = %.2fx\n", r, l, o, l / o }'
    fi
    if [ "$NGINX_ONLY" = 0 ]; then
        SERVER_RATE=$(median "$SERVER_RATES")
        BARE_RATE=$(median "$BARE_RATES")
        awk -v s="$SERVER_RATE" -v n="$NGINX_RATE" -v b="$BARE_RATE" -v r="$ROUNDS" 'BEGIN {
            if (n > 0) printf "ratio (medians of %d): the durable ACK reaches %.1f%% of nginx'"'"'s static 202\n", r, 100 * s / n
            if (b > 0) printf "ratio (medians of %d): the durable ACK is %.2fx the bare hyper + tokio-rustls stack\n", r, s / b }'
    fi
} | tee "$OUT/ceiling.txt"
echo "results in $OUT"
