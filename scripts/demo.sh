#!/usr/bin/env bash
# Set up (first run only) and run the demonstration trial: `bash scripts/demo.sh [-o DIR]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/rjtrial demo "$@"
