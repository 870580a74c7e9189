#!/usr/bin/env bash
# Install DAViCal (Debian's `davical`, PHP, the PostgreSQL driver) for the CalDAV contract
# tests, and point its configuration at a database named in the environment.
# Idempotent: packages already present are not installed again; the config is written once.
#
# The tests (tests/contract/servers.py) create DAViCal's database on the test PostgreSQL and run
# DAViCal under PHP's built-in web server with CALBRIDGE_DAVICAL_PG set to that database's
# connection string; without this script (or without root to run it) they skip DAViCal.
set -euo pipefail
config=/etc/davical/config.php
marker="calbridge contract tests"
need=()
for package in davical php-cli php-pgsql; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-davical: not root, cannot install ${need[*]}; the DAViCal tests will skip" >&2
    exit 0
  fi
  echo "installing ${need[*]} from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! grep -q "$marker" "$config" 2>/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-davical: not root, cannot write $config; the DAViCal tests will skip" >&2
    exit 0
  fi
  [ -f "$config" ] && cp -n "$config" "$config.before-calbridge"
  cat >"$config" <<PHP
<?php
// Written by calbridge's scripts/setup-davical.sh ($marker): the database comes from the
// environment of the PHP process the tests start, one throwaway database per test session.
\$c->pg_connect[] = getenv('CALBRIDGE_DAVICAL_PG') ?: 'dbname=davical user=davical_app';
\$c->system_name = 'calbridge test DAViCal';
\$c->admin_email = 'admin@example.invalid';
\$c->restrict_setup_to_admin = true;
PHP
fi
echo "DAViCal ready: $(dpkg-query -W -f '${Version}' davical)" >&2
