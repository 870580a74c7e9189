#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print its URL on stdout.
# Usage: eval "$(scripts/start-postgres.sh)"  -> exports CALBRIDGE_TEST_POSTGRES_URL
# Installs Debian's postgresql when no server binaries are present (needs root + apt).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "installing PostgreSQL from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
dir=${CALBRIDGE_PG_DIR:-/tmp/calbridge-pg}
port=${CALBRIDGE_PG_PORT:-54329}
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -f "$dir/data/postmaster.pid" ] && run "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  :
else
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  run "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  run "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
fi
echo "export CALBRIDGE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
