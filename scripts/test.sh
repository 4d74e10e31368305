#!/usr/bin/env bash
# Set up (first run only) and run the test suite with pytest: `bash scripts/test.sh [pytest args]`.
# PostgreSQL tests run when RJTRIAL_TEST_POSTGRES_URL is set (scripts/postgres.sh starts a server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
