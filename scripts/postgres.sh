#!/usr/bin/env bash
# Install (if absent) and start a local PostgreSQL server for the tests, and create
# the role and database they use. Prints the URL to export as RJTRIAL_TEST_POSTGRES_URL.
# Needs root (apt-get, pg_ctlcluster); used by .ci/run.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
pg_ctlcluster "$version" "$cluster" start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
pg_isready -h 127.0.0.1 >&2
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='rjtrial'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE rjtrial LOGIN PASSWORD 'rjtrial' CREATEDB\"" >&2
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='rjtrial_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O rjtrial rjtrial_test" >&2
echo "postgresql+psycopg://rjtrial:rjtrial@127.0.0.1:5432/rjtrial_test"
