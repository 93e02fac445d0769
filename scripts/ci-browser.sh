#!/usr/bin/env bash
# Install Debian's chromium for the Playwright browser tests when it is missing.
#
#   scripts/ci-browser.sh && .venv/bin/pytest -m browser tests/test_web_browser.py
#
# The tests launch /usr/bin/chromium through Playwright's `executable_path`; no browser is
# downloaded by Playwright itself.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || true)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
/usr/bin/chromium --version || true
