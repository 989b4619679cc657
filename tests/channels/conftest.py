"""Fixtures for the channel adapters: a gateway on a known loopback port (providers sign requests
with the public URL), the providers' fakes, agents over HTTP."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from handoff.config import load_handoff_config
from tests.channels.fake_sms import FakeHttpSms, FakeTwilio
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.sio_widget import Widget
from tests.channels.smsc_sim import SMSC
from tests.handoff.conftest import AgentClient

SMS_SECRET = "sms-webhook-secret"
TG_SECRET = "tg-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)


async def metric(gw: Any, name: str) -> float:
    """A value off the gateway's /metrics, e.g. ``outbox_dead_total{channel="sms"}`` (0 when absent)."""
    async with aiohttp.ClientSession() as session, session.get(f"{gw.base}/metrics") as resp:
        body = await resp.text()
    found = re.findall(rf"^{re.escape(name)} ([0-9.e+]+)$", body, re.M)
    return float(found[0]) if found else 0.0


async def _channel_state(base: str, name: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
        return (await resp.json()).get("channels", {}).get(name) == "ready"


@pytest.fixture
async def gateways(make_settings: Any, nlu_engine: Any) -> AsyncIterator[Callable[..., Any]]:
    """``await gateways(port=None, **sections)`` → a started TestServer with ``.base``; all closed at the end.
    The same port may be reused after ``await server.close()`` (a restart)."""
    servers: list[TestServer] = []

    async def make(port: int | None = None, handoff: Any = None, **sections: Any) -> TestServer:
        port = port or free_port()
        server_section = {"public_url": f"http://127.0.0.1:{port}", **sections.pop("server", {})}
        settings = make_settings(server=server_section, **sections)
        app = create_app(settings, nlu=nlu_engine, handoff_config=handoff or load_handoff_config())
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        server.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        servers.append(server)
        if settings.telegram.token:  # the channel is up once PTB has reached the Bot API (getMe)
            await eventually(lambda: _channel_state(server.base, "telegram"), timeout=5)
        return server

    yield make
    for server in servers:
        await server.close()


@pytest.fixture
async def http_sms() -> AsyncIterator[FakeHttpSms]:
    fake = FakeHttpSms(auth_header="Authorization: Bearer sms-key", webhook_secret=SMS_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def smsc() -> AsyncIterator[SMSC]:
    sim = SMSC(system_id="gateway", password="smpp-pw")
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


def http_sms_sections(fake: FakeHttpSms, **sms: Any) -> dict[str, Any]:
    return {"sms": {"provider": "http", "http_url": f"{fake.base_url}/send", "webhook_secret": SMS_SECRET,
                    "http_auth": "Authorization: Bearer sms-key", "per_number_interval": 0.05, "backoff_base": 0.2,
                    **sms}}  # fmt: skip


def telegram_sections(fake: FakeTelegram, **telegram: Any) -> dict[str, Any]:
    return {"telegram": {"token": fake.token, "webhook_secret": TG_SECRET, "api_base_url": fake.base_url,
                         "per_chat_interval": 0.05, "backoff_base": 0.2, **telegram}}  # fmt: skip


@pytest.fixture
async def agents() -> AsyncIterator[Callable[..., AgentClient]]:
    made: list[AgentClient] = []

    def make(base: str, name: str = "agent1", password: str = "demo-agent1") -> AgentClient:
        agent = AgentClient(base, name, password)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        await agent.close()


@pytest.fixture
async def pair(request: pytest.FixtureRequest, gateways: Any, redis_url: str,
               _test_keys_deleted_last: list[tuple[str, str]]) -> AsyncIterator[tuple[Any, Any]]:  # fmt: skip
    """Two gateway apps (their own hubs and pub/sub connections) sharing only Redis and a key prefix: the tests'
    cluster, or (``@pytest.mark.parametrize("pair", ["one"], indirect=True)``) the one server. Their keys are deleted
    after both have stopped (``tests/conftest.py``)."""
    url = request.getfixturevalue("cluster_url") if getattr(request, "param", "cluster") == "cluster" else redis_url
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    _test_keys_deleted_last.append((url, prefix))
    a = await gateways(redis={"url": url, "key_prefix": prefix})
    b = await gateways(redis={"url": url, "key_prefix": prefix})
    yield a, b


@pytest.fixture
async def widgets() -> AsyncIterator[Callable[[str], Widget]]:
    """Socket.IO widgets made by the test (``widgets(base)``), disconnected at its end."""
    made: list[Widget] = []

    def make(base: str) -> Widget:
        made.append(Widget(base))
        return made[-1]

    yield make
    for w in made:
        await w.close()
