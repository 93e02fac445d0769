#!/usr/bin/env bash
# Start a throwaway local PostgreSQL for the workflow tests and print the URL to export.
#
#   eval "$(scripts/ci-postgres.sh)"      # sets STOCKTAILOR_TEST_POSTGRES_URL
#   .venv/bin/pytest -m postgres tests/test_workflow.py tests/test_api.py
#
# Installs Debian's postgresql package with apt-get when no server binaries are found, runs the
# server as the unprivileged `postgres` user (or the current user when not root) on
# 127.0.0.1:${PGPORT:-54329} with its data under ${PGDATA_DIR:-/tmp/stocktailor-pg}, and creates
# the database `stocktailor_test`. Running it again reuses a server that is already up.
set -euo pipefail

PORT="${PGPORT:-54329}"
DATA="${PGDATA_DIR:-/tmp/stocktailor-pg}"
DB="stocktailor_test"

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

if ! BIN="$(find_bin)"; then
  echo "installing postgresql from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)"
fi

if [ "$(id -u)" = "0" ]; then
  RUN=(runuser -u postgres --)
  OWNER=postgres
else
  RUN=()
  OWNER="$(id -un)"
fi

if ! "${RUN[@]}" "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -s "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    chown "$OWNER" "$DATA"
    "${RUN[@]}" "$BIN/initdb" -D "$DATA" -U "$OWNER" --auth=trust -E UTF8 >&2
  fi
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-h 127.0.0.1 -p $PORT -k /tmp -c fsync=on" start >&2
fi

if ! "${RUN[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$OWNER" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  "${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$OWNER" "$DB"
fi

echo "export STOCKTAILOR_TEST_POSTGRES_URL=postgresql+psycopg://$OWNER@127.0.0.1:$PORT/$DB"
