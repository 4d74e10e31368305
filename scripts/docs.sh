#!/usr/bin/env bash
# Build the documentation site into docs/_build/html: `bash scripts/docs.sh [sphinx-build args]`.
# Installs the pinned `docs` extras into .venv on first use. Warnings are errors (-W, nitpicky:
# every reference into rjtrial's own API must resolve); --keep-going lists them all before failing.
# The analysis/ scripts are executed for the example gallery (the slow recovery study is not).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
stamp=.venv/.rjtrial-docs-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing the documentation tools into .venv..." >&2
  if ! .venv/bin/python -m pip install --quiet -e '.[docs]' >.venv/docs-install.log 2>&1; then
    cat .venv/docs-install.log >&2
    echo "installing the documentation tools failed; the pip output is above" >&2
    exit 1
  fi
  touch "$stamp"
fi
export MPLBACKEND=Agg
exec .venv/bin/python -m sphinx -b html -W --keep-going -n -j 1 docs docs/_build/html "$@"
