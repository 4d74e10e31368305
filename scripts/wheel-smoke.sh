#!/usr/bin/env bash
# Build the sdist and the wheel, install the wheel (not editable) into a clean venv outside the
# source tree, and use it as a new user would: import, --help, --version, the shipped scenarios,
# the demo on a small trial, and the service answering /api/health. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
PYTHON=${PYTHON:-python3}
.venv/bin/python -m pip install --quiet build >/dev/null
.venv/bin/python -m build --outdir "$work/dist" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/rjtrial-*.whl >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }
cd "$work"  # nothing of the source tree on the path from here
bin="$work/venv/bin"
"$bin/python" -c "import rjtrial, rjtrial.survival, rjtrial.meta, rjtrial.web; print('import: rjtrial', rjtrial.__version__)"
"$bin/rjtrial" --version
"$bin/rjtrial" --help >/dev/null
"$bin/rjtrial" scenarios | grep -q "jrc-multisite.toml"
"$bin/rjtrial" demo --participants 150 -o demo --quiet
test -s demo/report.html && test -s demo/data/followup.csv
"$bin/rjtrial" verify --db demo/registry/trial.db >/dev/null
"$bin/rjtrial" scenarios --copy shipped >/dev/null
"$bin/rjtrial" init shipped/protocols/jrc-london-burglary.toml --db trial.db --key trial.key >/dev/null
port=$("$bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$bin/rjtrial" serve --db trial.db --key trial.key --port "$port" >serve.log 2>&1 &
server=$!
for _ in $(seq 1 60); do
  if "$bin/python" -c "import json, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:$port/api/health', timeout=2); assert json.load(r)['status'] == 'ok'" 2>/dev/null; then
    echo "wheel smoke test: ok (installed wheel ran the demo, listed its scenarios, served /api/health)"
    exit 0
  fi
  sleep 1
done
cat serve.log
echo "wheel smoke test: the service did not answer /api/health" >&2
exit 1
