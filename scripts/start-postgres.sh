#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print shell lines to eval.
# Usage: eval "$(scripts/start-postgres.sh)"  -> exports CALBRIDGE_TEST_POSTGRES_URL,
#        CALBRIDGE_PG_DIR and CALBRIDGE_PG_STARTED (1 when this call started the server).
# Stop it with: scripts/stop-postgres.sh  (reads CALBRIDGE_PG_DIR).
# Each call gets its own data directory and a free port, so two checkouts (or two CI runs on
# one machine) never share or stop each other's server; set CALBRIDGE_PG_DIR / CALBRIDGE_PG_PORT
# to choose them (a server already running in CALBRIDGE_PG_DIR is reused, not restarted).
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
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
dir=${CALBRIDGE_PG_DIR:-}
if [ -n "$dir" ] && [ -f "$dir/data/postmaster.pid" ] && run "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  port=$(sed -n 4p "$dir/data/postmaster.pid")
  started=0
else
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/calbridge-pg.XXXXXX")
  else
    rm -rf "$dir"; mkdir -p "$dir"
  fi
  port=${CALBRIDGE_PG_PORT:-$(free_port)}
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  run "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  run "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
  started=1
fi
echo "export CALBRIDGE_PG_DIR=$dir"
echo "export CALBRIDGE_PG_STARTED=$started"
echo "export CALBRIDGE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
