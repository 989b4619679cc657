"""The agents' WebSocket ``/ws/agent``: this process's console sockets, fed from the chat store's live channel
(Redis pub/sub), so an agent and a customer may be on different processes. A console sends ``heartbeat`` and
``typing`` frames; a malformed frame is answered with an error frame and the socket stays."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from gateway import tasks, websec
from gateway.edge import decode, is_utf8
from gateway.errors import GatewayError
from gateway.keys import METRICS
from handoff.agents import Agent
from handoff.auth import SERVICE, require_agent
from handoff.service import HandoffService
from handoff.store import ID
from handoff.views import visible

log = logging.getLogger(__name__)
HUB: web.AppKey[AgentHub] = web.AppKey("agent_hub")
SNAPSHOT_DELAY = 0.5  # full snapshots: at most two a second; single events go out at once
WATCHED = ("message", "typing", "chat_closed", "chat_removed")  # a chat's events a watching supervisor gets


class FrameIn(msgspec.Struct):
    """A frame the console sends on ``/ws/agent``: ``heartbeat``, ``typing`` (with ``chat``), and a supervisor's
    ``watch`` (with ``chat``: this socket gets the chat's events as they happen) or ``unwatch``."""

    type: Literal["heartbeat", "typing", "watch", "unwatch"]
    chat: Annotated[str, msgspec.Meta(max_length=128)] | None = None


def dumps(obj: Any) -> str:
    """JSON for agents; a stored lone surrogate is escaped, so the response can still be sent."""
    text = json.dumps(obj, ensure_ascii=False)
    return text if is_utf8(text) else json.dumps(obj)


class AgentHub:
    """This process's agent WebSockets, fed from one Redis pub/sub channel."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.agents: dict[str, Agent] = {}
        self.watching: dict[web.WebSocketResponse, tuple[str, str]] = {}  # a supervisor's socket → (name, chat)
        self._pubsub = service.store.listen()
        self._reader: asyncio.Task[None] | None = None
        self._snapshot_due: asyncio.Handle | None = None

    async def start(self) -> None:
        await self._pubsub.subscribe(self.service.store.live_channel)
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._snapshot_due is not None:  # no snapshot after the shutdown
            self._snapshot_due.cancel()
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001, message=b"server shutting down")
        await tasks.stop(self._reader)
        await self._pubsub.aclose()

    async def _read(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        try:
                            data = json.loads(message["data"])
                            await self.route(data["to"], data["event"])
                        except (aioredis.ConnectionError, OSError):
                            raise
                        except Exception:  # one bad event must not stop every console's updates
                            log.exception("agent event could not be delivered")
            except asyncio.CancelledError:
                raise
            except (aioredis.ConnectionError, OSError):
                log.warning("agent pub/sub connection lost; reconnecting")
                await asyncio.sleep(0.5)

    def _targets(self, to: str | list[str]) -> set[str]:
        names = [to] if isinstance(to, str) else [t for t in to if t]
        out: set[str] = set()
        for name in names:
            if name == "all":
                out |= set(self.sockets)
            elif name == "supervisors":
                out |= {n for n in self.sockets if self.agents[n].supervises}
            elif name in self.sockets:
                out.add(name)
        return out

    async def route(self, to: str | list[str], event: dict[str, Any]) -> None:
        if event.get("type") == "queue_changed":
            self.schedule_snapshot()
            return
        if event.get("type") == "queue_add":  # straight to the agents who may take it; a snapshot follows
            data = json.dumps(event, ensure_ascii=False)
            skills = event["chat"]["skills"]
            for name in list(self.sockets):
                if self.agents[name].supervises or self.agents[name].serves(skills):
                    await self.send_raw(name, data)
            self.schedule_snapshot()
            return
        targets = self._targets(to)
        for name in targets:
            await self.send(name, event)
        if self.watching and event.get("type") in WATCHED:
            data = json.dumps({**event, "watched": True}, ensure_ascii=False)
            for ws, (name, chat) in list(self.watching.items()):
                if chat == event.get("chat") and name not in targets and not ws.closed:
                    with contextlib.suppress(ConnectionResetError):
                        await ws.send_str(data)

    async def send(self, name: str, event: dict[str, Any]) -> None:
        await self.send_raw(name, json.dumps(event, ensure_ascii=False))

    async def send_raw(self, name: str, data: str) -> None:
        for ws in list(self.sockets.get(name, ())):
            if not ws.closed:
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(data)

    def schedule_snapshot(self) -> None:
        """Queue snapshots are coalesced: the changes of half a second make one snapshot (single
        events — a chat queued, taken, closed — go out at once on their own)."""
        if self._snapshot_due is None and self.sockets:
            self._snapshot_due = asyncio.get_running_loop().call_later(
                SNAPSHOT_DELAY, lambda: self.service.background.spawn(self._snapshots())
            )

    async def _snapshots(self) -> None:
        """The queue, one JSON text per kind of agent. An agent's own chats travel as single events
        (assigned, chat_removed, chat_closed) and in the snapshot a console gets when it connects."""
        queue = await self.service.views.queue()
        self._snapshot_due = None  # changes from here on make the next snapshot
        views: dict[tuple[bool, tuple[str, ...]], str] = {}
        for name in list(self.sockets):
            agent = self.agents[name]
            kind = (agent.supervises, agent.skills)
            if kind not in views:
                views[kind] = f'{{"type": "queue", "chats": {json.dumps(visible(agent, queue), ensure_ascii=False)}}}'
            await self.send_raw(name, views[kind])

    async def full_snapshot(self, agent: Agent) -> None:
        views = self.service.views
        chats = visible(agent, await views.queue())
        await self.send(agent.name, {"type": "queue", "chats": chats, "mine": await views.mine(agent)})


async def agent_socket(request: web.Request) -> web.WebSocketResponse:
    """``GET /ws/agent``: a signed-in agent's console socket (from this gateway's own pages)."""
    service, hub, metrics = request.config_dict[SERVICE], request.config_dict[HUB], request.config_dict[METRICS]
    agent = await require_agent(request, csrf=False)
    websec.check_origin(request)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=8192)
    await ws.prepare(request)
    hub.sockets[agent.name].add(ws)
    hub.agents[agent.name] = agent
    metrics.agent_sockets.inc()
    await service.agents.connected(agent.name, +1)
    await service.agents.heartbeat(agent.name)
    status = await service.agents.back(agent.name)
    try:
        await ws.send_json({"type": "hello", "agent": agent.to_json(), "status": status})
        await hub.full_snapshot(agent)
        if agent.supervises:
            service.background.spawn(service.views.publish_agents())
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_str(dumps({"type": "error", "error": "frames are JSON text, not binary",
                                         "error_zh": "消息须为 JSON 文本"}))  # fmt: skip
                continue
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = decode(msg.data, FrameIn, "frame")
            except GatewayError as exc:  # answered, never fatal: the console keeps its socket
                await ws.send_str(dumps({"type": "error", "error": exc.message, "error_zh": "消息格式无效"}))
                continue
            if frame.type == "heartbeat":
                await service.agents.heartbeat(agent.name)
                await service.clocks.watch_agent(agent.name, time.time() + service.config.heartbeat_timeout)
            elif frame.type == "unwatch":
                hub.watching.pop(ws, None)
            elif frame.type == "watch":
                if not agent.supervises or not frame.chat or not ID.fullmatch(frame.chat):
                    await ws.send_str(dumps({"type": "error", "error": "only supervisors may watch a chat",
                                             "error_zh": "仅主管可以监听会话"}))  # fmt: skip
                    continue
                hub.watching[ws] = (agent.name, frame.chat)
            elif frame.chat and ID.fullmatch(frame.chat):
                with contextlib.suppress(GatewayError):  # typing in a chat that just moved on: nothing to do
                    await service.chats.agent_typing(agent, frame.chat)
    finally:
        hub.watching.pop(ws, None)
        hub.sockets[agent.name].discard(ws)
        if not hub.sockets[agent.name]:
            del hub.sockets[agent.name]
        metrics.agent_sockets.dec()
        with contextlib.suppress(aioredis.RedisError):
            await service.agents.connected(agent.name, -1)
            await service.clocks.watch_agent(agent.name, time.time() + service.config.disconnect_grace)
    return ws


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = AgentHub(app[SERVICE])
    app[HUB] = hub
    await hub.start()
    yield
    await hub.stop()
