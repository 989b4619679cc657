"""Fixtures for the security suite: real gateway processes with every channel secret set, shared by a module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.harness import Harness, nlu_cached


@pytest.fixture(scope="module")
def harness(redis_url: str, request: Any, tmp_path_factory: Any) -> Iterator[Harness]:
    """Two gateways (``main``: WeChat in safe mode; ``plain``: WeChat in plaintext mode), the providers' fakes,
    agent sessions and a queued chat; Redis keys of the run deleted afterwards."""
    if not nlu_cached():
        request.getfixturevalue("nlu_engine")  # trains the tests' model once; the gateways copy it
    h = Harness(redis_url=redis_url, folder=tmp_path_factory.mktemp("fuzz"))  # the gateways' logs stay there
    try:
        h.start()
        yield h
    finally:
        h.stop()
