#!/usr/bin/env bash
# What a seeded history costs on disk with each of two builds: a fresh SQLite store each, the
# same `finds seed-history` (1,000,000 finds over a year, seed 42), the WAL checkpointed away,
# then the file's size and each table's and index's pages (sqlite3's dbstat).
# usage: A=/path/to/pdp-provider B=/path/to/pdp-provider store-size.sh [FINDS]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
FINDS=${1:-1000000}
SERVER_PORT=18494 OPS_PORT=18495 CAS_PORT=18496 STORE_BACKEND=sqlite
. load-tests/lib.sh
TMP=$(mktemp -d -t pdp-size.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
CERTS=$TMP/certs
"$A" certs init --dir "$CERTS" >/dev/null
for build in A B; do
    BIN=${!build}
    dir=$TMP/$build
    mkdir -p "$dir"
    server_config "$dir" 64 >"$dir/server.toml"
    "$BIN" finds seed-history --config "$dir/server.toml" --finds "$FINDS" --days 365 \
        --seed 42 >/dev/null 2>&1
    sqlite3 "$dir/pdp.sqlite" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    bytes=$(stat -c %s "$dir/pdp.sqlite")
    echo "build $build: $bytes bytes, $(awk -v b="$bytes" -v n="$FINDS" 'BEGIN { printf "%.0f", b / n }') a find"
    sqlite3 "$dir/pdp.sqlite" "SELECT '  ' || name || ': ' || sum(pgsize) FROM dbstat
        GROUP BY name HAVING sum(pgsize) > 1000000 ORDER BY sum(pgsize) DESC;"
done
