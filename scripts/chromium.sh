#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver (if absent) for the browser tests:
# the report screenshot (tests/test_report_browser.py) and the web service's
# coordinator flow. Needs root (apt-get); used by .ci/run. Prints the binary's path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >&2
fi
command -v chromium
