#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver (if absent) for the browser tests:
# the report screenshot (tests/test_report_browser.py) and the web service's
# coordinator flow; and npm, with which the accessibility check installs axe-core once.
# Needs root (apt-get); used by .ci/run. Prints the browser binary's path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >&2
fi
if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq npm >&2
fi
command -v chromium
