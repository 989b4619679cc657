"""Socket.IO deliveries exactly once across two gateways, on a Redis Cluster and on one Redis.

The widget (python-socketio's real client) is on gateway A; replies come from A's turns and from gateway B (an
agent's messages reach the customer through ``SocketIOChannel.push`` of the process that handles them). On a cluster
``PUBLISH`` reaches every node's subscribers but counts only those of the node that ran it, so a delivery must not
depend on that count: the session chosen here has its outbox on another master than the one A's pub/sub connection
listens on (the case where the count is 0 although A delivers the message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.channels.socketio import SOCKETIO
from gateway.keys import RKEYS
from gateway.models import OutboundMessage
from tests.channels.conftest import eventually
from tests.channels.pubsub_kill import kill_pubsub
from tests.channels.sio_widget import Widget
from tests.conftest import one_server_only

pytestmark = pytest.mark.slow


async def _open_on_a_remote_slot(gw: Any, widgets: Callable[[str], Widget]) -> tuple[Widget, str]:
    """A widget on ``gw`` whose session's outbox is on another cluster master than the node ``gw``'s Socket.IO
    pub/sub connection listens on (on one Redis: the first one)."""
    hub = gw.app[SOCKETIO].hub
    node = getattr(hub._pubsub, "node", None)
    client = gw.app[SOCKETIO].host.redis
    for _ in range(40):
        w = widgets(gw.base)
        session = await w.open()
        sender = session.split(".")[0]
        if node is None or client.get_node_from_key(gw.app[RKEYS].visitor_outbox(f"sio:{sender}")).name != node.name:
            return w, session
        await w.close()
    raise AssertionError("no session landed on another master in 40 tries")


async def _quiet(w: Widget, seconds: float) -> list[Any]:
    """What the widget receives within ``seconds`` (nothing is expected)."""
    await asyncio.sleep(seconds)
    return [e for e in w.pending() if e[0] == "bot_uttered"]


def _agent(sender: str, text: str) -> OutboundMessage:
    return OutboundMessage("socketio", sender, text, "c1", (), sender="agent", agent="王小明")


async def _gone(gw: Any, sender: str) -> None:
    await eventually(lambda: sender not in gw.app[SOCKETIO].hub.local, timeout=10)


async def test_replies_from_either_gateway_arrive_once_and_are_not_replayed_after_a_reconnect(pair, widgets):
    """A's turn and B's messages reach the widget on A once; after a reconnect (to B) nothing delivered comes back;
    what was sent while no socket was open arrives once on the next connection (to A)."""
    a, b = pair
    w, session = await _open_on_a_remote_slot(a, widgets)
    sender = session.split(".")[0]
    await w.say("你好")
    assert "quick_replies" in await w.bot()  # A's turn
    for n in range(3):
        await b.app[SOCKETIO].push(_agent(sender, f"客服消息 {n}"))  # the agent's process
    assert [(await w.bot())["text"] for _ in range(3)] == [f"客服消息 {n}" for n in range(3)]
    assert await _quiet(w, 1.0) == []  # each once
    await w.close()
    await _gone(a, sender)
    back = widgets(b.base)
    assert await back.open(session) == session
    assert await _quiet(back, 1.5) == []  # everything was delivered: nothing replayed
    await back.say("你好")
    assert "quick_replies" in await back.bot()  # B's turn, to the widget on B
    assert await _quiet(back, 1.0) == []
    await back.close()
    await _gone(b, sender)
    await a.app[SOCKETIO].push(_agent(sender, "您离开时的消息"))  # nobody listening: kept
    again = widgets(a.base)
    await again.open(session)
    assert (await again.bot())["text"] == "您离开时的消息"
    assert await _quiet(again, 1.0) == []
    await again.close()
    await _gone(a, sender)
    last = widgets(b.base)
    await last.open(session)
    assert await _quiet(last, 1.0) == []  # delivered once, not kept


@pytest.mark.parametrize("pair", ["cluster", "one"], indirect=True)
async def test_a_socket_dropped_during_a_burst_gets_the_rest_on_its_next_connection_each_once(pair, widgets):
    """B sends 30 messages, one every 30 ms; A drops the widget's socket after the 10th arrived (the messages then in
    flight reach A with no socket to take them); the widget comes back on B: every message arrives once over the
    two connections, each connection's in the order sent."""
    a, b = pair
    w, session = await _open_on_a_remote_slot(a, widgets)
    sender = session.split(".")[0]
    texts = [f"第 {n} 条" for n in range(30)]

    async def burst() -> None:
        for text in texts:
            await b.app[SOCKETIO].push(_agent(sender, text))
            await asyncio.sleep(0.03)

    sending = asyncio.create_task(burst())
    first = [(await w.bot())["text"] for _ in range(10)]
    await a.app[SOCKETIO].sio.disconnect(w.client.get_sid())  # the server lets the socket go
    await sending
    await eventually(lambda: not w.client.connected, timeout=5)
    first += [d["text"] for name, d in w.pending() if name == "bot_uttered"]
    await _gone(a, sender)
    back = widgets(b.base)
    await back.open(session)
    second: list[str] = []
    try:
        while len(first) + len(second) < len(texts):
            second.append((await back.bot())["text"])
    except TimeoutError:
        pass
    second += [d["text"] for name, d in await _quiet(back, 1.0)]
    assert sorted(first + second, key=texts.index) == texts, (first, second)  # none lost, none twice
    assert first == sorted(first, key=texts.index) and second == sorted(second, key=texts.index)


@one_server_only
async def test_messages_published_while_the_hub_listens_again_reach_the_open_widget(gateways, widgets, redis_client):
    """The hub's pub/sub connection is lost (one Redis): what is published before it listens again stays in the
    session's outbox and reaches the widget once the hub subscribes again, each once."""
    gw = await gateways()
    w = widgets(gw.base)
    sender = (await w.open()).split(".")[0]
    channel = gw.app[SOCKETIO]
    pubsub = channel.hub._pubsub
    await kill_pubsub(redis_client, pubsub)
    for n in range(3):
        await channel.push(_agent(sender, f"断线时 {n}"))
    assert [(await w.bot())["text"] for _ in range(3)] == [f"断线时 {n}" for n in range(3)]
    assert await _quiet(w, 1.0) == []
