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
# test files run in parallel (pytest-xdist; a file's tests stay together in one worker): most tests wait on
# loopback servers, browsers and clocks, not on the CPU. PYTEST_WORKERS=0 runs them in this one process.
exec python3 -m pytest -p no:benchmark -n "${PYTEST_WORKERS:-3}" --dist loadfile "$@"
