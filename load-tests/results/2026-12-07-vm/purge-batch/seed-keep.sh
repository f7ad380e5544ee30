#!/usr/bin/env bash
# history.sh's seeding step alone, into a directory `history.sh --keep` then uses, so that its
# purge can be measured with two builds on copies of one store (full-1000, full-250):
#   seed-keep.sh BIN_A /work/hk && cp -a /work/hk /work/hk2
#   PDP_PROVIDER_BIN=BIN_A load-tests/history.sh --keep /work/hk --out .../full-1000
#   PDP_PROVIDER_BIN=BIN_B load-tests/history.sh --keep /work/hk2 --out .../full-250
# usage: seed-keep.sh BIN WORK
set -euo pipefail
cd "$(dirname "$0")/../../../.."
BIN=$1 WORK=$2
SERVER_PORT=18484 OPS_PORT=18485 CAS_PORT=18486
. load-tests/lib.sh
CERTS=$WORK/certs
"$BIN" certs init --dir "$CERTS" >/dev/null
MEMBERS=$WORK/members.jsonl
"$BIN" members generate --count 2000 --seed 42 --out "$MEMBERS" 2>/dev/null
mkdir -p "$WORK/seeded"
server_config "$WORK/seeded" 64 >"$WORK/seeded/server.toml"
"$BIN" members import "$MEMBERS" --config "$WORK/seeded/server.toml" >/dev/null
touch "$WORK/seeded/held"
LAST_MONTH=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m)
"$BIN" finds seed-history --config "$WORK/seeded/server.toml" --finds 1500000 \
    --days "$(( ( $(date -u -d "$(date -u +%Y-%m-01)" +%s) - $(date -u -d "$LAST_MONTH-01" +%s) ) / 86400 ))" \
    --until "$(date -u +%Y-%m-01)" --seed 7
"$BIN" finds seed-history --config "$WORK/seeded/server.toml" --finds 11666666 --days 2555 --seed 42
echo "$LAST_MONTH" >"$WORK/seeded/month"
sync
touch "$WORK/seeded/unpurged"
