#!/usr/bin/env bash
# Start the PostgreSQL server the tests use, on loopback, installing it with apt if it is missing.
# The tests read its admin URL from ASSAY_TEST_POSTGRES (the Makefile sets it to the password set below) and create
# a fresh database per test. Safe to run again: an installed, running server is left as it is.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
if command -v pg_lsclusters >/dev/null; then
  # Debian's wrapper: start every cluster that is down (a fresh install has one, `main`, on port 5432).
  pg_lsclusters --no-header | while read -r version cluster port status _; do
    if [ "$status" != "online" ]; then pg_ctlcluster "$version" "$cluster" start; fi
  done
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
# Loopback only (Debian's default listen_addresses is localhost); password auth for the test user.
su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'assay'\"" >/dev/null
echo "PostgreSQL ready on 127.0.0.1:5432"
