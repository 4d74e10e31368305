#!/usr/bin/env bash
# Create .venv beside the project (if absent) and install rjtrial into it, editable,
# with the test tools. Idempotent; used by demo.sh, test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.rjtrial-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setting up .venv (first run: installs rjtrial and its dependencies; a minute or two)..." >&2
  log=.venv/install.log
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip \
         && .venv/bin/python -m pip install --quiet -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup failed; the pip output is above (and in $log)" >&2
    exit 1
  fi
  touch "$stamp"
  echo "set up." >&2
fi
