#!/usr/bin/env bash
# Lint and type-check the package: ruff (configuration in pyproject.toml) and mypy at the
# strictness set in pyproject.toml. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check rjtrial tests benchmarks analysis scripts docs/conf.py docs/_ext
.venv/bin/ruff format --check rjtrial tests benchmarks analysis scripts docs/conf.py docs/_ext
.venv/bin/mypy rjtrial
