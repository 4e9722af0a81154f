#!/usr/bin/env bash
# Debian's Chromium for the Playwright tests (never `playwright install`: no browser downloads).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "Chromium is missing: run 'sudo apt-get install chromium' (browser tests need it)." >&2
  exit 1
fi
