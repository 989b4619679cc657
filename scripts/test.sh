#!/usr/bin/env bash
# Install what the tests need, then run them. Usage: scripts/test.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
if ! command -v chromium >/dev/null 2>&1; then
  # the browser tests drive Debian's Chromium (Playwright never downloads a browser here)
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
exec python3 -m pytest "$@"
