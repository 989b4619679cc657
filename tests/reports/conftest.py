"""Fixtures for the reports: a Redis client and the keys of this test's prefix, and the packaged configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway import redisconn
from gateway.rkeys import Keys, deployment_keys
from handoff.reports.config import ReportsConfig, configure


@pytest.fixture
def config() -> ReportsConfig:
    return configure(None)


@pytest.fixture
async def rc(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redisconn.client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return deployment_keys(key_prefix)
