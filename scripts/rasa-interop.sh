#!/usr/bin/env bash
# The gateway against a real Rasa Open Source 3.6.21 (README "Use with Rasa"): installs Rasa into
# $RASA_HOME (default ~/.cache/rasa-3.6; ~1.5 GB, a few minutes) when it is missing, then runs the Rasa tests —
# the real server's (tests/bots/test_rasa_real.py: the fixture assistant of tests/data/rasa-bot trained once per
# change of its data, ~100 s on a loaded 2-core machine, then cached) and the fast ones with a fake Rasa.
# Usage: scripts/rasa-interop.sh [pytest args…]      e.g. scripts/rasa-interop.sh -k handoff
# Rasa 3.6.21 declares Python <3.11; scripts/rasa-3.6-on-py311/install.sh is the recipe that installs it on 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_HOME=${RASA_HOME:-$HOME/.cache/rasa-3.6}
if [ ! -x "$RASA_HOME/venv/bin/rasa" ]; then
  echo "Rasa 3.6.21 is not in $RASA_HOME/venv: installing it (scripts/rasa-3.6-on-py311/install.sh)" >&2
  bash scripts/rasa-3.6-on-py311/install.sh "$RASA_HOME"
fi
RASA_TELEMETRY_ENABLED=false "$RASA_HOME/venv/bin/rasa" --version 2>/dev/null | grep -i '^rasa version'
export GW_RASA_INTEROP=1  # the real-Rasa tests are skipped in the main suite (a Rasa server's start exceeds 60 s)
exec python3 -m pytest -p no:cacheprovider -p no:benchmark -v \
  tests/bots/test_rasa_real.py tests/bots/test_rasa_bot.py tests/bots/test_rasa_nlu.py "$@"
