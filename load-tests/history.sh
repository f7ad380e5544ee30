#!/usr/bin/env bash
# Six years of history against the hot paths. In one run on one machine:
#
#   1. seeds a store with FINDS ended finds over six years, and a seventh year before them
#      (`finds seed-history`: about 1.6 audit records a find), and MONTH more in one month
#      (default 1,500,000 in last month), and times the seeding and the tallying of every hour;
#   2. the first start on the seeded store: its daily retention purge (six years) deletes the
#      seventh year while the load tool runs closed loop; the ACK's p99.9 during the purge, and
#      once it has finished, on the same endpoint;
#   3. the durable ACK, closed loop (64 in flight, no-match finds), on that store and on an empty
#      one with the same members, alternating (empty, seeded, empty, seeded): finds/s and p99.9
#      (the empty store first takes two runs of the same length, as the seeded one did in step
#      2, so that the two differ by their history alone);
#   4. on the seeded store: `audit export --request-id` of a find three years old (right after
#      the ACK rounds, and again once an idle endpoint has written their last records' IDs),
#      the console's service levels page for the dense month as an operator loads it (signed
#      in, second factor and all: load-tests/console-page.py) and `sla report --month` of that
#      month, each the median of five.
#
# SQLite stores; with STORE_BACKEND=postgres, the databases pdp_history_empty and
# pdp_history_seeded on the server PG_BASE names (the seeded one vacuumed and analysed once
# seeded, as autovacuum would have kept it over the years). Both databases share one server
# and one disk, whose checkpoints and autovacuums slow whichever round they fall in, of either
# store: before each round the server is checkpointed and the round waits until no vacuum is
# running, so that each starts from the same state (an autovacuum that begins during a round
# still falls in it). Results go to OUT/history.txt and OUT/seed.txt.
#
# usage: load-tests/history.sh [--finds N] [--month N] [--duration S] [--out DIR] [--keep DIR]
#        --keep DIR keeps the seeded store there and reuses it when present (without it, the
#        PostgreSQL databases are dropped at the end)
# env:   PDP_PROVIDER_BIN (default target/release/pdp-provider; build with cargo build --release)
#        STORE_BACKEND=postgres with PG_BASE (key-value connection string without dbname)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${PDP_PROVIDER_BIN:-target/release/pdp-provider}
FINDS=10000000
MONTH_FINDS=1500000
DURATION=20
IDS_SETTLE=15 # seconds the endpoint idles before the second look-up (see below)
OUT=""
KEEP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --finds) FINDS=$2; shift 2 ;;
        --month) MONTH_FINDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=$2; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "history.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
STORE_BACKEND=${STORE_BACKEND:-sqlite} # server_config reads it
case "$STORE_BACKEND" in
    sqlite) ;;
    postgres) [ -n "${PG_BASE:-}" ] || { echo "history.sh: postgres needs PG_BASE" >&2; exit 64; } ;;
    *) echo "history.sh: STORE_BACKEND is sqlite or postgres" >&2; exit 64 ;;
esac
SERVER_PORT=18484
OPS_PORT=18485
CAS_PORT=18486
CONSOLE_PORT=18487
. load-tests/lib.sh
HOST=$(host_name)
OUT=${OUT:-load-tests/results/$(date -u +%Y-%m-%d)-$HOST/history}
[ -x "$BIN" ] || { echo "history.sh: $BIN not found; run cargo build --release first" >&2; exit 2; }
require_free_ports history.sh $SERVER_PORT $OPS_PORT $CONSOLE_PORT

TMP=$(mktemp -d -t pdp-history.XXXXXX)
WORK=${KEEP:-$TMP}
mkdir -p "$WORK" "$OUT"
SERVER=""
cleanup() {
    set +e
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    if [ "$STORE_BACKEND" = postgres ] && [ -z "$KEEP" ]; then
        psql -q "$PG_BASE" -c "DROP DATABASE IF EXISTS pdp_history_empty WITH (FORCE)" \
            -c "DROP DATABASE IF EXISTS pdp_history_seeded WITH (FORCE)" >/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

CERTS=$WORK/certs
[ -f "$CERTS/ca.pem" ] || "$BIN" certs init --dir "$CERTS" >/dev/null
MEMBERS=$WORK/members.jsonl
[ -s "$MEMBERS" ] || "$BIN" members generate --count 2000 --seed 42 --out "$MEMBERS" 2>/dev/null

# use_store NAME: on PostgreSQL, PDP_DATABASE_URL names NAME's database from here on.
use_store() {
    [ "$STORE_BACKEND" = sqlite ] || export PDP_DATABASE_URL="$PG_BASE dbname=pdp_history_$1"
}
# held NAME: true when NAME's store exists (on PostgreSQL: its database, and $WORK/NAME/held).
held() {
    if [ "$STORE_BACKEND" = sqlite ]; then
        [ -s "$WORK/$1/pdp.sqlite" ]
    else
        [ -f "$WORK/$1/held" ] && [ "$(psql -Atq "$PG_BASE" -c \
            "SELECT count(*) FROM pg_database WHERE datname = 'pdp_history_$1'")" = 1 ]
    fi
}
# drop NAME: NAME's store removed (on PostgreSQL: its database made anew, empty).
drop() {
    rm -f "$WORK/$1"/pdp.sqlite* "$WORK/$1/held"
    fresh_database "pdp_history_$1"
}
# store NAME: a store with the members; its config at $WORK/NAME/server.toml.
store() {
    mkdir -p "$WORK/$1"
    server_config "$WORK/$1" 64 >"$WORK/$1/server.toml"
    use_store "$1"
    held "$1" || {
        "$BIN" members import "$MEMBERS" --config "$WORK/$1/server.toml" >/dev/null
        touch "$WORK/$1/held"
    }
}

mkdir -p "$WORK/empty" "$WORK/seeded"
drop empty
store empty
SEED_LOG=$OUT/seed.txt
if ! held seeded; then
    drop seeded
    store seeded
    LAST_MONTH=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m)
    echo "seeding $FINDS finds over six years and $MONTH_FINDS in $LAST_MONTH ..." >&2
    {
        "$BIN" finds seed-history --config "$WORK/seeded/server.toml" --finds "$MONTH_FINDS" \
            --days "$(( ( $(date -u -d "$(date -u +%Y-%m-01)" +%s) - $(date -u -d "$LAST_MONTH-01" +%s) ) / 86400 ))" \
            --until "$(date -u +%Y-%m-01)" --seed 7
        # Seven years: the oldest is past retention (six years), for the purge below.
        "$BIN" finds seed-history --config "$WORK/seeded/server.toml" \
            --finds "$(( FINDS * 7 / 6 ))" --days 2555 --seed 42
    } | tee "$SEED_LOG" >&2
    echo "$LAST_MONTH" >"$WORK/seeded/month"
    if [ "$STORE_BACKEND" = postgres ]; then
        t0=$(now)
        psql -q "$PDP_DATABASE_URL" -c "VACUUM (ANALYZE)" -c CHECKPOINT
        echo "VACUUM (ANALYZE) and CHECKPOINT in $(since "$t0") s" | tee -a "$SEED_LOG" >&2
    fi
    sync # the seeding's dirty pages on disk before anything is measured
    touch "$WORK/seeded/unpurged"
fi
MONTH=$(cat "$WORK/seeded/month")
# The console on the seeded store (its service levels page is timed in step 4), and an operator
# who may read it, a service manager: on a new store the first primary business contact adds
# one through the console; on a kept store that one signs in again with a new password and a new
# second factor (each audited, as for a real operator).
{
    server_config "$WORK/seeded" 64
    printf '[console]\nenabled = true\nlisten = "127.0.0.1:%s"\n' "$CONSOLE_PORT"
} >"$WORK/seeded/server.toml"
use_store seeded
CONSOLE_PASSWORD=$(head -c 18 /dev/urandom | base64)
export CONSOLE_PASSWORD
if "$BIN" console create-pbc --config "$WORK/seeded/server.toml" --username history \
    --name "History Run" --email ops@example.invalid --password-env CONSOLE_PASSWORD \
    >/dev/null 2>&1; then
    CONSOLE_USER=(--user history --create service-manager --as history-sla)
else
    "$BIN" console reset-password history-sla --config "$WORK/seeded/server.toml" \
        --password-env CONSOLE_PASSWORD >/dev/null
    "$BIN" console reset-mfa history-sla --config "$WORK/seeded/server.toml" >/dev/null
    CONSOLE_USER=(--user history-sla)
fi
if [ "$STORE_BACKEND" = sqlite ]; then
    STORE_BYTES=$(du -cb "$WORK/seeded"/pdp.sqlite* | tail -n 1 | cut -f1)
else
    STORE_BYTES=$(psql -Atq "$PG_BASE dbname=pdp_history_seeded" \
        -c "SELECT pg_database_size(current_database())")
fi

serve() { # NAME
    use_store "$1"
    RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --config "$WORK/$1/server.toml" >"$WORK/$1/server.log" 2>&1 &
    SERVER=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/health/ready")" = 200 ]; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$1/server.log" >&2; exit 2; }
        sleep 0.1
    done
}
stop() {
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=""
    for _ in $(seq 100); do port_free $SERVER_PORT && port_free $OPS_PORT && break; sleep 0.1; done
}
# ack NAME LABEL: a closed-loop run of no-match finds; prints "finds/s p99.9_ms".
ack() {
    "$BIN" load --quiet --target "https://127.0.0.1:$SERVER_PORT" --certs "$CERTS" \
        --members "$MEMBERS" --duration "$DURATION" --closed-loop --concurrency 64 \
        --mix 0,0,1 --name "history-$2" --out "$OUT/$2" >/dev/null || true
    local r p
    r=$(field "$OUT/$2/result.json" achieved_rate)
    p=$(field "$OUT/$2/result.json" p999_ms)
    echo "$r $p"
}

# The first start on the seeded store: its daily purge deletes the seventh year under load.
PURGE_NOTE="(store already purged: run with a new --keep directory to measure the purge)"
WARM_NOTE="(store already purged: the seeded store keeps the last day of its earlier runs, the empty one starts empty)"
if [ -f "$WORK/seeded/unpurged" ]; then
    t0=$(now)
    RUST_LOG=warn,pdp_provider::upkeep=info serve seeded
    read -r during_rate during_p < <(ack seeded purge-during)
    until grep -q "past retention purged" "$WORK/seeded/server.log"; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/seeded/server.log" >&2; exit 2; }
        sleep 1
    done
    PURGE_S=$(since "$t0")
    # The log line's fields, its colours taken out: "... past retention purged purged=N".
    PURGED=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/seeded/server.log" |
        sed -n 's/.*past retention purged.*purged=\([0-9]*\).*/\1/p' | head -n 1)
    read -r after_rate after_p < <(ack seeded purge-after)
    stop
    rm -f "$WORK/seeded/unpurged"
    PURGE_NOTE="the daily purge deleted ${PURGED:-?} audit records (and their finds) in ${PURGE_S} s from the start; ACK during it ${during_rate}/s p99.9 ${during_p} ms, after it ${after_rate}/s p99.9 ${after_p} ms"
    echo "$PURGE_NOTE" >&2
    # The seeded store has just taken two runs of ACKs; the empty one takes the same before the
    # rounds, so that both enter them with the same last day of finds (the hot table and its
    # key, and what autovacuum has left to do of them on PostgreSQL) and the rounds compare
    # the history alone. Its results are kept, not compared.
    serve empty
    ack empty warm-1 >/dev/null
    ack empty warm-2 >/dev/null
    stop
    WARM_NOTE="both stores took two runs of ACKs before the rounds (the seeded one during and after its purge)"
fi

# settle_server: on PostgreSQL, a checkpoint, then no vacuum running on the server (up to two
# minutes; the wait is printed); nothing on SQLite.
settle_server() {
    [ "$STORE_BACKEND" = postgres ] || return 0
    local t0 n
    t0=$(now)
    psql -q "$PG_BASE" -c CHECKPOINT
    for _ in $(seq 1200); do
        n=$(psql -Atq "$PG_BASE" -c "SELECT count(*) FROM pg_stat_progress_vacuum")
        [ "$n" = 0 ] && break
        sleep 0.1
    done
    echo "server settled in $(since "$t0") s (vacuums running: $n)" >&2
}

declare -A RATE P999
for round in 1 2; do
    for name in empty seeded; do
        # The last runs' audit IDs written for look-ups first (as a running endpoint keeps up
        # with them), so that no round starts behind with another's.
        use_store $name
        "$BIN" audit write-ids --config "$WORK/$name/server.toml" >/dev/null
        settle_server
        serve $name
        read -r r p < <(ack $name "$name-$round")
        stop
        RATE[$name-$round]=$r
        P999[$name-$round]=$p
        echo "ack $name round $round: $r finds/s, p99.9 $p ms" >&2
    done
done

# Forensics and reports on the seeded store (the hour of the ACK rounds is in the recent
# look-up, written by row as the endpoint ran, but for its last seconds, read by row).
DAY=$(date -u -d "3 years ago" +%Y-%m-%d)
"$BIN" audit export --config "$WORK/seeded/server.toml" --from "$DAY" \
    --to "$(date -u -d "$DAY + 1 day" +%Y-%m-%d)" --out "$WORK/day.jsonl"
# A find's ID: the day's first find ACK (a view's records may carry none).
ID=$(grep -m 1 '"endpoint":"POST /find-requests"' "$WORK/day.jsonl" |
    sed -n 's/.*"request_id":"\([^"]*\)".*/\1/p')
EXPORT_MS=$(for _ in 1 2 3 4 5; do
    t0=$(now)
    n=$("$BIN" audit export --config "$WORK/seeded/server.toml" --request-id "$ID" \
        --from 2000-01-01 --to "$(date -u -d tomorrow +%Y-%m-%d)" | wc -l)
    echo "$(since "$t0") $n" >&2
    since "$t0"
done 2>"$WORK/export.log" | median)
EXPORT_ROWS=$(tail -n 1 "$WORK/export.log" | cut -d' ' -f2)
# Again once the endpoint, idle, has written the rounds' last records as a shorter slice (once the
# recent frontier is 10 s old; every 2 s).
serve seeded
sleep "$IDS_SETTLE"
EXPORT_SETTLED_MS=$(for _ in 1 2 3 4 5; do
    t0=$(now)
    "$BIN" audit export --config "$WORK/seeded/server.toml" --request-id "$ID" \
        --from 2000-01-01 --to "$(date -u -d tomorrow +%Y-%m-%d)" >/dev/null
    since "$t0"
done | median)
# The console's service levels page for the month, on the same idle endpoint.
SLA_PAGE_S=$(python3 load-tests/console-page.py --base "https://127.0.0.1:$CONSOLE_PORT" \
    --ca "$CERTS/ca.pem" "${CONSOLE_USER[@]}" --password-env CONSOLE_PASSWORD \
    --save "$WORK/sla-page.html" "/sla?month=$MONTH" 2>"$WORK/sla-page.log") ||
    { cat "$WORK/sla-page.log" >&2; SLA_PAGE_S="(not timed)"; }
PAGE_ACKS=$(grep -o 'ACK (CoCo2.1.1)</td><td>[0-9]*' "$WORK/sla-page.html" 2>/dev/null |
    grep -o '[0-9]*$' || true)
stop
SLA_MS=$(for _ in 1 2 3 4 5; do
    t0=$(now)
    "$BIN" sla report --config "$WORK/seeded/server.toml" --month "$MONTH" >"$WORK/sla.txt" || true
    since "$t0"
done | median)
MONTH_ACKS=$(awk '/CoCo2.1.1 ACK/ { print $3 }' "$WORK/sla.txt")

{
    printf '%s, %s CPU(s); %s finds over six years, %s in %s; seeded store %s bytes\n' \
        "$HOST" "$(nproc)" "$FINDS" "$MONTH_FINDS" "$MONTH" "$STORE_BYTES"
    [ -s "$SEED_LOG" ] && sed 's/^/seed: /' "$SEED_LOG"
    for round in 1 2; do
        printf 'ACK round %s: empty %s/s p99.9 %s ms; seeded %s/s p99.9 %s ms\n' "$round" \
            "${RATE[empty-$round]}" "${P999[empty-$round]}" "${RATE[seeded-$round]}" "${P999[seeded-$round]}"
    done
    awk -v e1="${RATE[empty-1]}" -v e2="${RATE[empty-2]}" -v s1="${RATE[seeded-1]}" \
        -v s2="${RATE[seeded-2]}" -v pe1="${P999[empty-1]}" -v pe2="${P999[empty-2]}" \
        -v ps1="${P999[seeded-1]}" -v ps2="${P999[seeded-2]}" 'BEGIN {
        printf "ACK seeded/empty: rate %.2fx, p99.9 %.2fx\n", (s1 + s2) / (e1 + e2), (ps1 + ps2) / (pe1 + pe2) }'
    printf 'audit export --request-id (a find 3 years old, %s records): %s s (median of 5)\n' \
        "$EXPORT_ROWS" "$EXPORT_MS"
    printf 'the same, %s s after the rounds, the endpoint idle: %s s (median of 5)\n' \
        "$IDS_SETTLE" "$EXPORT_SETTLED_MS"
    printf 'sla report --month %s (%s ACKs): %s s (median of 5)\n' "$MONTH" "$MONTH_ACKS" "$SLA_MS"
    printf 'the console service levels page, %s (%s ACKs shown): %s s (median of 5)\n' "$MONTH" \
        "${PAGE_ACKS:-?}" "$SLA_PAGE_S"
    printf 'purge of the seventh year: %s\n' "$PURGE_NOTE"
    printf 'before the rounds: %s\n' "$WARM_NOTE"
} | tee "$OUT/history.txt"
echo "results in $OUT" >&2
