"""Web chat frames exactly once and in order, with two gateways publishing to one visitor, on one Redis and on a
Redis Cluster: a page (doing what chat.js does: a frame is shown when its seq is above the last shown; a reconnect
asks for what came after it) gets every frame once, also while it reconnects during a burst."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from gateway.channels.webchat import WEBCHAT
from gateway.models import OutboundMessage
from tests.channels.conftest import eventually
from tests.channels.pubsub_kill import kill_pubsub
from tests.conftest import one_server_only

pytestmark = pytest.mark.slow
EACH_REDIS = pytest.mark.parametrize("pair", ["one", "cluster"], indirect=True)  # one server, and the cluster


class Page:
    """The widget page's side of /ws/chat (templates/static/chat.js): the hello first; a frame with a seq not above
    the last shown is dropped; a reconnect passes the last seq shown."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession()
        self.visitor = ""
        self.last = 0
        self.shown: list[str] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, base: str) -> None:
        query = f"last_seq={self.last}" + (f"&visitor_id={self.visitor}" if self.visitor else "")
        self.ws = await self.http.ws_connect(f"{base}/ws/chat?{query}")
        hello = json.loads((await self.ws.receive(timeout=10)).data)
        assert hello["type"] == "hello", hello  # nothing before the hello
        self.visitor = hello["visitor_id"]
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            frame = json.loads(msg.data)
            if isinstance(frame.get("seq"), int):
                if frame["seq"] <= self.last:
                    continue
                self.last = frame["seq"]
                self.shown.append(frame["text"])

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader

    async def close(self) -> None:
        await self.disconnect()
        await self.http.close()


@pytest.fixture
async def open_page() -> AsyncIterator[Callable[[str], Awaitable[Page]]]:
    """``await open_page(base)``: a page connected to that gateway, closed at the end of the test."""
    made: list[Page] = []

    async def open_(base: str) -> Page:
        made.append(Page())
        await made[-1].connect(base)
        return made[-1]

    yield open_
    for page in made:
        await page.close()


def _agent(visitor: str, text: str) -> OutboundMessage:
    return OutboundMessage("webchat", visitor, text, "c1", (), sender="agent", agent="王小明")


@EACH_REDIS
async def test_two_gateways_publishing_to_one_visitor_at_once_each_frame_is_shown_once(pair, open_page):
    """The agent's process and the customer's publish at the same moment, 30 times: the page shows all 60."""
    a, b = pair
    page = await open_page(a.base)
    sent: list[str] = []
    for n in range(30):
        pair_texts = [f"{n}-a", f"{n}-b"]
        sent += pair_texts
        await asyncio.gather(a.app[WEBCHAT].push(_agent(page.visitor, pair_texts[0])),
                             b.app[WEBCHAT].push(_agent(page.visitor, pair_texts[1])))  # fmt: skip
    with contextlib.suppress(TimeoutError):
        await eventually(lambda: len(page.shown) >= len(sent), timeout=5)
    assert sorted(page.shown) == sorted(sent)


@EACH_REDIS
async def test_a_page_reconnecting_during_a_burst_shows_every_frame_once(pair, open_page):
    """B sends 60 frames, one every 10 ms, while the page reconnects every ~100 ms, to A and to B in turn."""
    a, b = pair
    page = await open_page(a.base)
    texts = [f"第 {n} 条" for n in range(60)]

    async def burst() -> None:
        for text in texts:
            await b.app[WEBCHAT].push(_agent(page.visitor, text))
            await asyncio.sleep(0.01)

    sending = asyncio.create_task(burst())
    turn = 0
    while not sending.done():
        await asyncio.sleep(0.1)
        await page.disconnect()
        turn += 1
        await page.connect((a, b)[turn % 2].base)
    await sending
    with contextlib.suppress(TimeoutError):
        await eventually(lambda: len(page.shown) >= len(texts), timeout=5)
    await asyncio.sleep(0.3)
    assert page.shown == texts  # each once, in order


@one_server_only
async def test_frames_published_while_the_hub_listens_again_reach_the_open_page(gateways, redis_client, open_page):
    """The hub's pub/sub connection is lost (one Redis): what is published before it listens again reaches the page
    once it does, without the page reconnecting."""
    gw = await gateways()
    page = await open_page(gw.base)
    await gw.app[WEBCHAT].push(_agent(page.visitor, "之前"))
    await eventually(lambda: page.shown == ["之前"])
    await kill_pubsub(redis_client, gw.app[WEBCHAT].hub._pubsub)
    for n in range(3):
        await gw.app[WEBCHAT].push(_agent(page.visitor, f"断线时 {n}"))
    with contextlib.suppress(TimeoutError):
        await eventually(lambda: len(page.shown) >= 4, timeout=10)
    await asyncio.sleep(0.3)
    assert page.shown == ["之前", "断线时 0", "断线时 1", "断线时 2"]
