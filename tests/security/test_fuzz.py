"""Every inbound endpoint under malformed input: never a 5xx, never a hang, WebSockets answer bad frames with
an error frame and are never closed abnormally, and ``/healthz`` is still 200 afterwards.

A bounded run of the generators in ``fuzzcases.py`` (hypothesis) against real gateway processes started as
an operator starts them, with every channel secret set (``conftest.harness``): per endpoint up to
``FUZZ_EXAMPLES`` cases (default 100) within ``FUZZ_SECONDS`` (default 20 s), one at a time, each judged by
``harness.Outcome``. The server's log is read too: an exception logged while an endpoint was fuzzed (a turn
that failed inside a WebSocket, a background task that died) fails that endpoint even when the client got a
polite answer. The long run is ``bench/fuzz.py``.
"""

from __future__ import annotations

import os

import pytest

from tests.security.fuzzcases import BY_NAME, ENDPOINTS
from tests.security.harness import Harness, run_endpoint

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
SECONDS = float(os.environ.get("FUZZ_SECONDS", "20"))
MAX_FAILURES = 25  # enough to name the classes; a broken endpoint must not eat the suite's time

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", [e.name for e in ENDPOINTS])
def test_malformed_input_gets_a_4xx_never_a_5xx_or_a_hang(harness: Harness, name: str) -> None:
    endpoint = BY_NAME[name]
    tally = run_endpoint(harness, endpoint, EXAMPLES, SECONDS, max_failures=MAX_FAILURES)
    health = harness.healthz()
    problems = []
    if tally.cases < min(EXAMPLES, 20):
        problems.append(f"only {tally.cases} cases ran{tally.stopped}")
    if tally.failures or tally.errors:
        problems.append(tally.describe())
    if set(health.values()) != {200}:
        problems.append(f"/healthz after fuzzing: {health}")
    if problems:
        pytest.fail(f"{endpoint.what}\n" + "\n".join(problems), pytrace=False)
