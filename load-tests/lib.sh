# Helpers the load-test scripts share: sourced (`. load-tests/lib.sh`), never run. They expect
# `$TMP` (the script's temporary directory) and, for `metric`, `$OPS_PORT`.

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# host_name: this machine's name, safe in a path (results/<date>-<host>/).
host_name() { hostname 2>/dev/null | tr -c 'A-Za-z0-9.\n-' '_' || echo unknown-host; }

# require_free_ports SCRIPT PORT...: exits 2, naming SCRIPT and the port, when something
# already listens on one of the ports.
require_free_ports() {
    local script=$1 p
    shift
    for p in "$@"; do
        if ! port_free "$p"; then
            echo "$script: 127.0.0.1:$p is in use" >&2
            exit 2
        fi
    done
}

# wait_for PORT: returns once something listens on 127.0.0.1:PORT (30 s at most); otherwise
# prints the logs under $TMP and exits 2.
wait_for() {
    for _ in $(seq 300); do
        if ! port_free "$1"; then return 0; fi
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listening on 127.0.0.1:$1" >&2
    cat "$TMP"/*.log "$TMP"/*/*.log >&2 2>/dev/null || true
    exit 2
}

# field FILE KEY: the first numeric value of KEY in a result.json (phase main, ACK series).
field() { sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1" | head -n 1; }

# metric NAME [OPS_PORT [LABEL]]: the sum of every series of a metric on an ops listener
# ($OPS_PORT by default; 0 when absent); with LABEL (e.g. 'le="15"'), of the series that carry it.
metric() {
    curl -s "http://127.0.0.1:${2:-$OPS_PORT}/metrics" |
        awk -v m="$1" -v l="${3:-}" '($1 == m || index($1, m "{") == 1) && index($1, l) { s += $2 }
            END { printf "%.0f", s + 0 }'
}

# server_config STORE_DIR IN_FLIGHT [LISTEN_PORT OPS_PORT]: an endpoint config on $SERVER_PORT
# and $OPS_PORT (or the ports given) with the PKI in $CERTS, its store in STORE_DIR (SQLite) or,
# with STORE_BACKEND=postgres, the database PDP_DATABASE_URL names; the CAS simulator on
# $CAS_PORT.
server_config() {
    cat <<CONF
[server]
listen = "127.0.0.1:${3:-$SERVER_PORT}"
ops_listen = "127.0.0.1:${4:-$OPS_PORT}"
[tls]
cert = "$CERTS/server.pem"
key = "$CERTS/server.key"
client_ca = "$CERTS/ca.pem"
[store]
backend = "${STORE_BACKEND:-sqlite}"
path = "$1/pdp.sqlite"
queue_max_pending = 100000000
[crypto]
data_key_file = "$CERTS/data.key"
[workers]
max_in_flight = $2
[cas]
base_url = "https://127.0.0.1:$CAS_PORT"
client_cert = "$CERTS/provider-client.pem"
client_key = "$CERTS/provider-client.key"
ca = "$CERTS/ca.pem"
[view]
signing_key = "$CERTS/view-signing.key"
CONF
}

# fresh_database NAME: with STORE_BACKEND=postgres, a new database NAME on the server $PG_BASE
# names (key-value form), exported as PDP_DATABASE_URL; nothing otherwise.
fresh_database() {
    [ "${STORE_BACKEND:-sqlite}" = postgres ] || return 0
    psql -q "$PG_BASE" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    export PDP_DATABASE_URL="$PG_BASE dbname=$1"
}

# now: seconds since the epoch; since T: the seconds from T to now (three decimals).
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }

# scratch NAME: sets TMP to a new temporary directory, removed on exit once the process whose PID
# SERVER holds (when set) is stopped; an interrupt exits 130.
scratch() {
    TMP=$(mktemp -d -t "pdp-$1.XXXXXX")
    SERVER=""
    trap 'set +e; [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
    trap 'exit 130' INT TERM
}
