#!/usr/bin/env bash
# Stop the PostgreSQL that scripts/start-postgres.sh started and remove its data directory.
# Usage: scripts/stop-postgres.sh [DIR]   (default: $CALBRIDGE_PG_DIR). Does nothing when the
# server was not started by that call (CALBRIDGE_PG_STARTED=0) or the directory is gone.
set -uo pipefail
dir=${1:-${CALBRIDGE_PG_DIR:-}}
if [ -z "$dir" ] || [ ! -d "$dir" ] || [ "${CALBRIDGE_PG_STARTED:-1}" != 1 ]; then
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
  run "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
fi
rm -rf "$dir"
