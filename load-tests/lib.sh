# Helpers the load-test scripts share: sourced (`. load-tests/lib.sh`), never run. They expect
# `$TMP` (the script's temporary directory) and, for `metric`, `$OPS_PORT`.

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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

# metric NAME: the sum of every series of a metric on the ops listener (0 when absent).
metric() {
    curl -s "http://127.0.0.1:$OPS_PORT/metrics" |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s + 0 }'
}

# server_config STORE_DIR IN_FLIGHT: an endpoint config on $SERVER_PORT/$OPS_PORT with the PKI
# in $CERTS, its store in STORE_DIR, the CAS simulator on $CAS_PORT.
server_config() {
    cat <<CONF
[server]
listen = "127.0.0.1:$SERVER_PORT"
ops_listen = "127.0.0.1:$OPS_PORT"
[tls]
cert = "$CERTS/server.pem"
key = "$CERTS/server.key"
client_ca = "$CERTS/ca.pem"
[store]
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
