#!/usr/bin/env bash
# `sla report --month` with two builds, each on a store it seeded itself with the same month
# (1,500,000 finds in the last month, seed 7, as history.sh seeds its dense month), timed
# alternately, five times each.
# usage: A=/path/to/pdp-provider B=/path/to/pdp-provider sla-report.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
SERVER_PORT=18494 OPS_PORT=18495 CAS_PORT=18496 STORE_BACKEND=sqlite
. load-tests/lib.sh
TMP=$(mktemp -d -t pdp-sla.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
CERTS=$TMP/certs
"$A" certs init --dir "$CERTS" >/dev/null
MONTH_START=$(date -u +%Y-%m-01)
LAST_MONTH=$(date -u -d "$MONTH_START -1 month" +%Y-%m)
DAYS=$(( ( $(date -u -d "$MONTH_START" +%s) - $(date -u -d "$LAST_MONTH-01" +%s) ) / 86400 ))
for build in A B; do
    mkdir -p "$TMP/$build"
    server_config "$TMP/$build" 64 >"$TMP/$build/server.toml"
    "${!build}" finds seed-history --config "$TMP/$build/server.toml" --finds 1500000 \
        --days "$DAYS" --until "$MONTH_START" --seed 7 >/dev/null 2>&1
done
for round in 1 2 3 4 5; do
    for build in A B; do
        t=$(now)
        "${!build}" sla report --config "$TMP/$build/server.toml" --month "$LAST_MONTH" >/dev/null 2>&1 || true  # exits 1 when a standard was missed
        echo "round $round, build $build: $(since "$t") s"
    done
done
