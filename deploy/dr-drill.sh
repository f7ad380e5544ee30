#!/usr/bin/env bash
# A restore drill anyone can run: the embedded store is lost, and service comes back from its
# latest backup. Prints each step's time and the total against the code of connection's 2 hours
# (CoCo2.1.4: service restored within 2 hours of an outage).
#
#   1. set-up (not timed): a dev PKI, MEMBERS generated members imported into a store, the
#      endpoint serving it, and finds ACKed;
#   2. an online backup taken while it serves (`pdp-provider backup --to`), as the server's
#      `[backup]` schedule takes them;
#   3. the disaster: the server killed (SIGKILL) and its store directory deleted;
#   4. timed from here: `pdp-provider restore --from` the backup into a fresh store directory
#      (copied, then checked: integrity, schema version, the data key on a sample of sealed
#      values), and `serve` started on it until `/health/ready` answers ready (the match index
#      of MEMBERS members built);
#   5. a find ACKed by the restored endpoint, and every find ACKed before the backup found in it.
#
# usage: deploy/dr-drill.sh [MEMBERS] [WORKDIR]     (MEMBERS default 1000000)
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release),
#        PDP_DRILL_PORT (default 18474: the endpoint; the next port its ops listener)
# needs: curl, sqlite3 (Debian's packages)
#
# Needs about 3 KB of disk per member in WORKDIR (default a new temporary directory, removed at
# the end): the member file, the store and its backup.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${1:-1000000}
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
[ -x "$BIN" ] || { echo "dr-drill.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SERVER_PORT=${PDP_DRILL_PORT:-18474}
OPS_PORT=$((SERVER_PORT + 1))
CAS_PORT=$((SERVER_PORT + 2))
. load-tests/lib.sh
require_free_ports dr-drill.sh "$SERVER_PORT" "$OPS_PORT"
if [ -n "${2:-}" ]; then
    TMP=$2
    mkdir -p "$TMP"
    KEEP=1
else
    TMP=$(mktemp -d -t pdp-dr-drill.XXXXXX)
    KEEP=0
fi
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    [ "$KEEP" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
ready() { curl -sf "http://127.0.0.1:$OPS_PORT/health/ready" >/dev/null; }
wait_ready() {
    for _ in $(seq 36000); do ready && return 0; sleep 0.1; done
    echo "dr-drill.sh: the endpoint did not become ready" >&2
    cat "$TMP"/*.log >&2
    exit 1
}
# find ID BODY: POSTs a find as the PFS; prints the status.
find() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$CERTS/ca.pem" \
        --cert "$CERTS/pfs.pem" --key "$CERTS/pfs.key" \
        -H "X-Request-ID: $1" -H 'Content-Type: application/json' --data "$2" \
        "https://127.0.0.1:$SERVER_PORT/find-requests"
}
BODY='{"uat":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI3ZjNlOTJjNC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEifQ.c2lnbmF0dXJl","findData":{"names":[{"givenName":"JANE","familyName":"DRILL","verified":true}],"dateOfBirth":{"value":"1970-04-21","verified":true},"addresses":[{"addressLine1":"1 HIGH STREET","postcode":"LS1 1AA","verified":true}]}}'

# 1. Set-up.
CERTS=$TMP/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
server_config "$TMP/live" 0 >"$TMP/live.toml"
server_config "$TMP/restored" 0 >"$TMP/restored.toml"
echo "set-up: generating and importing $MEMBERS members ..." >&2
t=$(now)
"$BIN" members generate --count "$MEMBERS" --seed 28 --out "$TMP/members.jsonl" 2>/dev/null
"$BIN" members import "$TMP/members.jsonl" --config "$TMP/live.toml" >/dev/null
rm -f "$TMP/members.jsonl"
echo "set-up: $MEMBERS members imported in $(since "$t") s" >&2
RUST_LOG=warn "$BIN" serve --config "$TMP/live.toml" >"$TMP/live.log" 2>&1 &
PIDS+=($!)
LIVE=$!
wait_ready
ACKED=()
for _ in $(seq 20); do
    id=$(cat /proc/sys/kernel/random/uuid)
    [ "$(find "$id" "$BODY")" = 202 ] || { echo "dr-drill.sh: a find was not ACKed" >&2; exit 1; }
    ACKED+=("$id")
done

# 2. The backup, while it serves.
t=$(now)
"$BIN" backup --to "$TMP/backup.sqlite" --config "$TMP/live.toml" >/dev/null
BACKUP_S=$(since "$t")
BYTES=$(stat -c %s "$TMP/backup.sqlite")

# 3. The disaster.
kill -9 "$LIVE"
wait "$LIVE" 2>/dev/null || true
rm -rf "$TMP/live"

# 4. The recovery, timed.
T0=$(now)
t=$(now)
"$BIN" restore --from "$TMP/backup.sqlite" --config "$TMP/restored.toml" >"$TMP/restore.out"
RESTORE_S=$(since "$t")
t=$(now)
RUST_LOG=warn "$BIN" serve --config "$TMP/restored.toml" >"$TMP/restored.log" 2>&1 &
PIDS+=($!)
wait_ready
SERVE_S=$(since "$t")
TOTAL_S=$(since "$T0")

# 5. It serves, with what was ACKed before the backup.
id=$(cat /proc/sys/kernel/random/uuid)
[ "$(find "$id" "$BODY")" = 202 ] || { echo "dr-drill.sh: the restored endpoint did not ACK" >&2; exit 1; }
# Read from the restored file beside the server (a second reader of its WAL).
# A no-match find is its ACK's audit record alone; one with a match has a row of its own.
IDS=$(printf "'%s'," "${ACKED[@]}" | sed 's/,$//')
FOUND=$(sqlite3 "file:$TMP/restored/pdp.sqlite?mode=ro" \
    "SELECT count(DISTINCT request_id) FROM (
         SELECT request_id FROM find_requests WHERE request_id IN ($IDS)
         UNION ALL
         SELECT request_id FROM audit_log WHERE request_id IN ($IDS)
            AND endpoint = 'POST /find-requests' AND outcome = 'no-match')")

cat <<EOF
DR drill, $MEMBERS members, $(nproc) CPU(s), $(host_name), $(date -u +%Y-%m-%dT%H:%MZ)
  backup while serving            $BACKUP_S s ($BYTES bytes)
  restore (copy and checks)       $RESTORE_S s
  serve until ready               $SERVE_S s
  outage to service restored      $TOTAL_S s of CoCo2.1.4's 7200 s
  finds ACKed before the backup   ${#ACKED[@]}, found in the restored store: $FOUND
$(sed 's/^/  restore: /' "$TMP/restore.out")
EOF
if [ "$FOUND" != "${#ACKED[@]}" ]; then
    echo "dr-drill.sh: finds ACKed before the backup are missing" >&2
    exit 1
fi
awk -v s="$TOTAL_S" 'BEGIN { exit !(s < 7200) }' || { echo "dr-drill.sh: over 2 hours" >&2; exit 1; }
