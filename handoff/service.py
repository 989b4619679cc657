"""The human side: a durable queue in Redis with priorities and skills, agents with presence and
capacity, assignment (push and pull, exactly one agent per chat), transfer, notes, close with a
disposition, the satisfaction survey, callbacks outside service hours. It fills the bots' ``Handoff``
port; channels deliver what agents write through the pipeline's ``deliver``.

Every handoff key carries the ``{handoff}`` hash tag, so each script runs in one Cluster slot.
A chat's id is its conversation's id; its transcript is the conversation's log stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jinja2
import redis.asyncio as aioredis

from bots.ports import Complaint, HandoffRequest, HandoffResult
from bots.templates import Renderer
from gateway.errors import GatewayError
from gateway.metrics import Metrics
from gateway.models import Button, OutboundMessage
from gateway.privacy import mask_phone
from gateway.rkeys import Keys
from handoff.agents import Agent, AgentStore
from handoff.config import HandoffConfig
from handoff.throttle import LoginThrottle
from handoff.tickets import ComplaintTickets

log = logging.getLogger(__name__)

# Give a queued chat to one agent, if it is still queued and the agent has room.
# KEYS: queue, chat hash, agent's chats. ARGV: chat id, agent name, capacity, now.
_CLAIM = """
if redis.call('HGET', KEYS[2], 'state') ~= 'queued' then return 0 end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[3]) then return -1 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'assigned', 'agent', ARGV[2], 'assigned_at', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# Put an agent's chat back in the queue (front), unless it moved on. KEYS: queue, chat, agent's chats.
# ARGV: chat id, agent, score.
_RETURN = """
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], 'state') ~= 'assigned' or redis.call('HGET', KEYS[2], 'agent') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], 'state', 'queued', 'agent', '', 'returned', '1')
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

LEVELS = ((100, "very_satisfied"), (80, "satisfied"), (60, "neutral"), (40, "dissatisfied"),
          (20, "very_dissatisfied"))  # fmt: skip
DISPOSITIONS = ("resolved", "follow_up", "complaint_registered")
TELL_EVERY = 10.0  # seconds between queue-position notices to one customer (except near the front)

Deliver = Callable[[OutboundMessage], Awaitable[object]]


class HandoffError(GatewayError):
    """A refusal of the human side: a JSON error with ``status``, in English and Chinese."""

    def __init__(self, status: int, message: str, zh: str = "", field: str | None = None) -> None:
        super().__init__(message, zh=zh, field=field, status=status)


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    channel: str
    sender: str
    phone: str | None
    lang: str
    skills: tuple[str, ...]
    reason: str
    complaint_type: str | None
    urgency: int
    tier: str
    ticket: str | None
    state: str
    agent: str | None
    enqueued_at: float
    assigned_at: float | None
    first_reply_at: float | None
    credit: float
    log: str

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> Chat:
        g = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            id=g["id"], channel=g["channel"], sender=g["sender"], phone=g.get("phone") or None, lang=g["lang"],
            skills=tuple(s for s in g.get("skills", "").split(",") if s), reason=g.get("reason", ""),
            complaint_type=g.get("complaint_type") or None, urgency=int(g.get("urgency") or 0),
            tier=g.get("tier") or "normal", ticket=g.get("ticket") or None, state=g["state"],
            agent=g.get("agent") or None, enqueued_at=float(g["enqueued_at"]),
            assigned_at=float(g["assigned_at"]) if g.get("assigned_at") else None,
            first_reply_at=float(g["first_reply_at"]) if g.get("first_reply_at") else None,
            credit=float(g.get("credit") or 0), log=g["log"],
        )  # fmt: skip

    def summary(self, timers: dict[str, tuple[float, float, bool]] | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "channel": self.channel,
            "customer": mask_phone(self.phone) if self.phone else ("访客" if self.lang == "zh" else "Visitor"),
            "lang": self.lang, "skills": list(self.skills), "priority": round(self.credit), "reason": self.reason,
            "complaint_type": self.complaint_type, "urgency": self.urgency, "tier": self.tier, "ticket": self.ticket,
            "state": self.state, "agent": self.agent, "enqueued_at": self.enqueued_at, "assigned_at": self.assigned_at,
            "sla": [{"clock": c, "warn_at": w, "due_at": d, "breached": b} for c, (w, d, b) in (timers or {}).items()],
        }  # fmt: skip


class HandoffService:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, config: HandoffConfig, renderer: Renderer, metrics: Metrics,
        deliver: Deliver, *, production: bool = False, conversation_log: Callable[[str, str, str], str],
        tier_of: Callable[[str], Awaitable[str]] | None = None,
        profile_of: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.config = config
        self.renderer = renderer
        self.metrics = metrics
        self.deliver = deliver
        self.production = production
        self.conversation_log = conversation_log
        self.tier_of = tier_of
        self.profile_of = profile_of
        self.agents = AgentStore(redis, keys)
        self.login_guard = LoginThrottle(redis, keys)
        self.tickets = ComplaintTickets(redis, keys, tz=config.timezone,
                                       first_response=int(config.clocks["complaint_first_response"].breach),
                                       solution=int(config.complaint_solution))  # fmt: skip
        self._claim = redis.register_script(_CLAIM)
        self._return = redis.register_script(_RETURN)
        self.timers: Any = None  # handoff.sla.Timers, set by the app
        self._canned_env = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dispatching = self._dispatch_again = False
        self._telling = self._tell_again = False
        self._agents_due = False

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- keys -------------------------------------------------------------------------------------
    def chat_key(self, chat_id: str) -> str:
        return self.keys.hk("chat", chat_id)

    def agent_chats(self, name: str) -> str:
        return self.keys.hk("agent", name, "chats")

    # ---- events ----------------------------------------------------------------------------------
    async def publish(self, event: dict[str, Any], to: str | list[str] = "all") -> None:
        """An agent-side event for every process's agent hub: ``to`` is ``all``, ``supervisors``,
        or a list of agent names."""
        await self.redis.publish(self.keys.live_agents(), json.dumps({"to": to, "event": event}, ensure_ascii=False))

    async def log_entry(self, chat: Chat, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {**entry, "at": entry.get("at", time.time())}
        await self.redis.xadd(chat.log, {"e": json.dumps(entry, ensure_ascii=False)})
        return entry

    # ---- the bots' port ------------------------------------------------------------------------------
    async def register_complaint(self, request: HandoffRequest) -> Complaint:
        return await self.tickets.register_complaint(request)

    async def complaints(self, phone: str | None, channel: str, sender: str) -> list[Complaint]:
        return await self.tickets.complaints(phone, channel, sender)

    def wants_human(self, reason: str, complaint_type: str | None, urgency: int, tier: str) -> bool:
        if reason == "complaint":
            return self.config.on_complaint.get(complaint_type or "other", False)
        if reason == "urgent":
            return urgency >= self.config.urgency_threshold
        if reason == "vip":
            return tier in self.config.vip_tiers
        return True

    async def request_human(self, request: HandoffRequest) -> HandoffResult:
        now = time.time()
        tier = (await self.tier_of(request.phone)) if self.tier_of and request.phone else "normal"
        skills = self.config.skills_for(request.lang, request.channel, request.complaint_type)
        existing = await self.redis.hgetall(self.chat_key(request.conversation_id))
        if existing and existing[b"state"] in (b"queued", b"assigned"):
            chat = Chat.from_redis(existing)  # already with people: say where it stands
            return HandoffResult("queued", chat.id[:8], await self.position(chat.id) or 1, None)
        if not self.config.in_service_hours():
            return await self._callback(request, "closed")
        online = [a for a in await self.online_agents() if set(skills[:1]) <= set(a.skills)]
        if not online:
            return await self._callback(request, "no_agents")
        p = self.config.priority
        credit = p.get("urgency", 0) * request.urgency + (p.get("complaint", 0) if request.reason == "complaint"
                 else 0) + p.get(tier, 0)  # fmt: skip
        chat_id = request.conversation_id
        log_key = self.conversation_log(request.channel, request.sender, chat_id)
        mapping = {
            "id": chat_id, "channel": request.channel, "sender": request.sender, "phone": request.phone or "",
            "lang": request.lang, "skills": ",".join(skills), "base_skills": ",".join(skills),
            "reason": request.reason, "complaint_type": request.complaint_type or "", "urgency": request.urgency,
            "tier": tier, "ticket": request.ticket or "", "state": "queued", "agent": "", "enqueued_at": now,
            "assigned_at": "", "first_reply_at": "", "credit": credit, "log": log_key, "escalation": 0,
            "returned": 0, "told": 0, "told_at": now}  # fmt: skip
        chat = Chat.from_redis({k.encode(): str(v).encode() for k, v in mapping.items()})
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip: agents see it at once
            pipe.delete(self.chat_key(chat_id))
            pipe.hset(self.chat_key(chat_id), mapping=mapping)
            pipe.zadd(self.keys.hk("queue"), {chat_id: now - credit})
            complaint_at = now if request.ticket else None
            clocks = self.timers.queue_clocks(pipe, chat_id, now, complaint_at) if self.timers else {}
            event = json.dumps({"to": "all", "event": {"type": "queue_add", "chat": chat.summary(clocks)}},
                               ensure_ascii=False)  # fmt: skip
            pipe.publish(self.keys.live_agents(), event)
            await pipe.execute()
        await self.redis.hset(self.keys.sender(request.channel, request.sender), "human", chat_id)
        await self.redis.xadd(log_key, {"e": json.dumps({"kind": "event", "event": "queued", "reason": request.reason,
                                                         "skills": list(skills), "at": now})})  # fmt: skip
        self.metrics.handoff_queued.inc()
        position = await self.position(chat_id)
        await self.redis.hset(self.chat_key(chat_id), "told", position or 0)
        self.spawn(self.dispatch())
        return HandoffResult("queued", chat_id[:8], position, self.estimated_wait(position or 1, len(online)))

    async def _callback(self, request: HandoffRequest, status: str) -> HandoffResult:
        entry = {"conversation": request.conversation_id, "channel": request.channel, "sender": request.sender,
                 "phone": mask_phone(request.phone) if request.phone else "", "lang": request.lang,
                 "reason": request.reason, "status": status, "text": request.text, "at": time.time()}  # fmt: skip
        request_id = await self.tickets.number("CB")
        payload = json.dumps({**entry, "id": request_id}, ensure_ascii=False)
        await self.redis.xadd(self.keys.hk("callbacks"), {"e": payload}, maxlen=10_000)
        await self.publish({"type": "callbacks_changed"})
        return HandoffResult(status, request_id)

    async def leave_message(self, request_id: str, channel: str, sender: str, phone: str | None, text: str) -> None:
        """The customer's message for a callback task (outside hours, or no agent available)."""
        await self.redis.xadd(self.keys.hk("callbacks"), {"e": json.dumps({
            "id": request_id, "kind": "message", "channel": channel, "sender": sender,
            "phone": mask_phone(phone) if phone else "", "text": text, "at": time.time()}, ensure_ascii=False)},
            maxlen=10_000)  # fmt: skip
        await self.publish({"type": "callbacks_changed"})

    # ---- callback tasks: what customers asked when no one could answer ---------------------------------
    async def callbacks(self, include_done: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Callback tasks, newest first: the request (reason, the text that led to it) with the message the
        customer left, and whether an agent has handled it."""
        entries = await self.redis.xrevrange(self.keys.hk("callbacks"), count=2000)
        tasks: dict[str, dict[str, Any]] = {}
        for _, fields in reversed(entries):  # oldest first: the request, then the customer's message
            data = json.loads(fields[b"e"])
            task = tasks.setdefault(data["id"], {"id": data["id"], "messages": []})
            if data.get("kind") == "message":
                task["messages"].append({"text": data["text"], "at": data["at"]})
            else:
                task.update({k: data.get(k) for k in ("conversation", "channel", "sender", "phone", "lang", "reason",
                                                      "status", "text", "at")})  # fmt: skip
        done = await self.redis.hgetall(self.keys.hk("callbacks", "done"))
        out = []
        for task in sorted(tasks.values(), key=lambda t: t.get("at") or 0, reverse=True):
            if "channel" not in task:
                continue  # its request fell off the stream's end
            handled = done.get(task["id"].encode())
            task["handled"] = json.loads(handled) if handled else None
            if include_done or not handled:
                out.append(task)
        return out[:limit]

    async def callback(self, task_id: str) -> dict[str, Any]:
        for task in await self.callbacks(include_done=True, limit=10_000):
            if task["id"] == task_id:
                return task
        raise HandoffError(404, f"no callback task {task_id}", zh=f"没有编号为 {task_id} 的回电任务")

    async def handle_callback(self, agent: Agent, task_id: str, reply: str | None, note: str) -> dict[str, Any]:
        """Mark a callback task handled; with ``reply``, answer the customer on their own channel."""
        task = await self.callback(task_id)
        record = {"agent": agent.display_name, "at": time.time(), "reply": bool(reply), "note": note[:500]}
        if not await self.redis.hsetnx(
            self.keys.hk("callbacks", "done"), task_id, json.dumps(record, ensure_ascii=False)
        ):
            raise HandoffError(409, "this callback task was already handled", zh="该回电任务已被处理")
        if reply:
            await self.deliver(OutboundMessage(task["channel"], task["sender"], reply, task["conversation"] or "",
                                               sender="agent", agent=agent.display_name))  # fmt: skip
        await self.publish({"type": "callbacks_changed"})
        return {**task, "handled": record}

    async def record_survey(self, conversation_id: str, score: int, comment: str | None) -> None:
        raw = await self.redis.hgetall(self.chat_key(conversation_id))
        chat = Chat.from_redis(raw) if raw else None
        level = next(name for value, name in LEVELS if value == score)
        entry = {"conversation": conversation_id, "score": score, "level": level, "comment": comment or "",
                 "agent": (raw.get(b"closed_by") or b"").decode() if raw else "",
                 "skills": list(chat.skills) if chat else [], "channel": chat.channel if chat else "",
                 "complaint_type": chat.complaint_type if chat else None, "at": time.time()}  # fmt: skip
        key = self.keys.hk("survey", conversation_id)
        await self.redis.hset(key, mapping={k: json.dumps(v, ensure_ascii=False) for k, v in entry.items()})
        await self.redis.expire(key, 400 * 86400)
        if comment is None:
            await self.redis.xadd(self.keys.hk("surveys"), {"e": json.dumps(entry, ensure_ascii=False)})
        if chat:
            await self.log_entry(chat, {"kind": "event", "event": "survey", "score": score, "comment": comment or ""})

    # ---- queue --------------------------------------------------------------------------------------
    async def position(self, chat_id: str) -> int | None:
        rank = await self.redis.zrank(self.keys.hk("queue"), chat_id)
        return None if rank is None else int(rank) + 1

    def estimated_wait(self, position: int, agents: int) -> int:
        return int(self.config.average_handle_seconds * position / max(agents, 1))

    async def chat(self, chat_id: str) -> Chat:
        raw = await self.redis.hgetall(self.chat_key(chat_id))
        if not raw:
            raise HandoffError(404, f"no chat {chat_id!r}", zh="会话不存在")
        return Chat.from_redis(raw)

    async def queued(self, limit: int = 200) -> list[Chat]:
        ids = [i.decode() for i in await self.redis.zrange(self.keys.hk("queue"), 0, limit - 1)]
        return await self._chats(ids)

    async def _chats(self, ids: list[str]) -> list[Chat]:
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat_id in ids:
                pipe.hgetall(self.chat_key(chat_id))
            rows = await pipe.execute()
        return [Chat.from_redis(r) for r in rows if r]

    async def mine(self, name: str) -> list[Chat]:
        ids = sorted(i.decode() for i in await self.redis.smembers(self.agent_chats(name)))
        return [c for c in await self._chats(ids) if c.state == "assigned" and c.agent == name]

    async def online_agents(self) -> list[Agent]:
        """Agents who are online (not away) with a fresh heartbeat: the ones chats are pushed to."""
        agents = await self.agents.all()
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hmget(self.keys.hk("presence", agent.name), "status", "seen")
            rows = await pipe.execute()
        now = time.time()
        return [a for a, (status, seen) in zip(agents, rows, strict=True)
                if status == b"online" and now - float(seen or 0) < self.config.heartbeat_timeout]  # fmt: skip

    async def _loads(self, agents: list[Agent]) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.scard(self.agent_chats(agent.name))
            counts = await pipe.execute()
        return {a.name: int(n) for a, n in zip(agents, counts, strict=True)}

    async def dispatch(self) -> None:
        """Push: the best queued chat goes to the least-loaded eligible online agent, and so on.
        One pass at a time per process: calls during a pass make it run once more (not pile up)."""
        if not self.config.push:
            return
        if self._dispatching:
            self._dispatch_again = True
            return
        self._dispatching = True
        try:
            while True:
                self._dispatch_again = False
                await self._dispatch_once()
                if not self._dispatch_again:
                    return
        finally:
            self._dispatching = False

    async def _dispatch_once(self) -> None:
        agents = await self.online_agents()
        if not agents:
            return
        loads = await self._loads(agents)
        for chat in await self.queued(50):
            eligible = [a for a in agents if a.serves(chat.skills) and loads[a.name] < a.capacity]
            if not eligible:
                continue
            agent = min(eligible, key=lambda a: (loads[a.name] / a.capacity, loads[a.name]))
            if await self._assign(chat, agent):
                loads[agent.name] += 1

    async def _assign(self, chat: Chat, agent: Agent) -> bool:
        now = time.time()
        result = await self._claim(keys=[self.keys.hk("queue"), self.chat_key(chat.id), self.agent_chats(agent.name)],
                                   args=[chat.id, agent.name, agent.capacity, now])  # fmt: skip
        if result != 1:
            return False
        self.metrics.handoff_wait_seconds.observe(now - chat.enqueued_at)
        chat = dataclasses.replace(chat, state="assigned", agent=agent.name, assigned_at=now)
        await self.publish({"type": "assigned", "chat": chat.summary()}, to=[agent.name])  # the agent first
        text = self.renderer.text("request_human", "agent_joined", chat.lang, chat.channel, agent=agent.display_name)
        await self.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                           agent=agent.display_name, kind="agent_joined"))  # fmt: skip
        if self.timers:
            await self.timers.picked_up(chat.id, now)
        await self.log_entry(chat, {"kind": "event", "event": "assigned", "agent": agent.name})
        await self.publish({"type": "queue_remove", "chat": chat.id})
        await self.publish({"type": "queue_changed"})
        self.spawn(self.tell_positions())
        return True

    async def accept(self, agent: Agent, chat_id: str) -> Chat:
        chat = await self.chat(chat_id)
        if not agent.serves(chat.skills) and not agent.supervises:
            raise HandoffError(403, "this chat needs skills you do not have: " + ", ".join(chat.skills),
                               zh="该会话需要您不具备的技能：" + "、".join(chat.skills))  # fmt: skip
        if chat.state != "queued":
            if chat.state == "assigned":
                raise HandoffError(409, "chat already taken", zh="会话已被其他坐席接起")
            zh = "会话已结束" if chat.state == "closed" else "会话状态已变化"
            raise HandoffError(409, f"chat is {chat.state}", zh=zh)
        if not await self._assign(chat, agent):
            if await self.agents.load(agent.name) >= agent.capacity:
                raise HandoffError(409, f"you already have {agent.capacity} chats (your capacity)",
                                   zh=f"您已有 {agent.capacity} 个会话（已达上限）")  # fmt: skip
            raise HandoffError(409, "chat already taken", zh="会话已被其他坐席接起")
        return await self.chat(chat_id)

    async def tell_positions(self) -> None:
        """Queued customers hear their new place in the queue when it changes (one pass at a time)."""
        if self._telling:
            self._tell_again = True
            return
        self._telling = True
        try:
            while True:
                self._tell_again = False
                await self._tell_once()
                if not self._tell_again:
                    return
        finally:
            self._telling = False

    async def _tell_once(self) -> None:
        """A customer hears their new place when it improved — at once near the front (top 3),
        otherwise at most every ``TELL_EVERY`` seconds, so a moving queue is not a flood of notices."""
        chats = await self.queued(50)
        if not chats:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat in chats:
                pipe.hmget(self.chat_key(chat.id), "told", "told_at")
            told = await pipe.execute()
        agents = len(await self.online_agents())
        now = time.time()
        for position, (chat, (was, when)) in enumerate(zip(chats, told, strict=True), 1):
            was_n = int(was or 0)
            if not was_n or position >= was_n or (position > 3 and now - float(when or 0) < TELL_EVERY):
                continue
            await self.redis.hset(self.chat_key(chat.id), mapping={"told": position, "told_at": now})
            wait = self.estimated_wait(position, agents)
            text = self.renderer.text("request_human", "position", chat.lang, chat.channel, position=position,
                                      wait=wait)  # fmt: skip
            meta = {"position": position, "eta_seconds": wait}
            await self.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                               kind="queued", meta=meta))  # fmt: skip

    # ---- conversation while a human holds it -----------------------------------------------------
    async def customer_message(self, chat_id: str, text: str, at: float) -> None:
        chat = await self.chat(chat_id)
        entry = {"kind": "customer", "text": text, "at": at}
        if chat.state == "assigned" and chat.agent:
            await self.publish({"type": "message", "chat": chat.id, "entry": entry}, to=[chat.agent])

    async def customer_typing(self, chat_id: str) -> None:
        chat = await self.chat(chat_id)
        if chat.state == "assigned" and chat.agent:
            await self.publish({"type": "typing", "chat": chat.id, "from": "customer"}, to=[chat.agent])

    async def _own(self, agent: Agent, chat_id: str) -> Chat:
        chat = await self.chat(chat_id)
        if chat.state != "assigned" or chat.agent != agent.name:
            if agent.supervises and chat.state == "assigned":
                return chat
            raise HandoffError(403, "this chat is not assigned to you", zh="该会话未分配给您")
        return chat

    async def agent_message(self, agent: Agent, chat_id: str, text: str) -> dict[str, Any]:
        chat = await self._own(agent, chat_id)
        await self.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="agent",
                                           agent=agent.display_name))  # fmt: skip
        entry = await self.log_entry(chat, {"kind": "agent", "text": text, "agent": agent.display_name})
        if chat.first_reply_at is None:
            await self.redis.hset(self.chat_key(chat.id), "first_reply_at", entry["at"])
            if self.timers:
                await self.timers.first_reply(chat.id)
        await self.publish({"type": "message", "chat": chat.id, "entry": entry}, to=[agent.name])
        return entry

    async def agent_typing(self, agent: Agent, chat_id: str) -> None:
        chat = await self._own(agent, chat_id)
        await self.deliver(OutboundMessage(chat.channel, chat.sender, "", chat.id, sender="agent",
                                           agent=agent.display_name, kind="typing"))  # fmt: skip

    async def note(self, agent: Agent, chat_id: str, text: str) -> dict[str, Any]:
        chat = await self._own(agent, chat_id)
        return await self.log_entry(chat, {"kind": "note", "text": text, "agent": agent.display_name})

    async def transfer(self, agent: Agent, chat_id: str, to_agent: str | None, to_skill: str | None,
                       note: str) -> Chat:  # fmt: skip
        chat = await self._own(agent, chat_id)
        if note:
            await self.log_entry(chat, {"kind": "note", "text": note, "agent": agent.display_name})
        if to_agent:
            target = await self.agents.get(to_agent)
            if target is None:
                raise HandoffError(404, f"no agent {to_agent!r}", zh="没有该坐席", field="to_agent")
            if await self.agents.load(target.name) >= target.capacity:
                raise HandoffError(409, f"{target.name} is at capacity", zh=f"坐席 {target.name} 的会话数已满")
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.srem(self.agent_chats(chat.agent or ""), chat.id)
                pipe.sadd(self.agent_chats(target.name), chat.id)
                pipe.hset(self.chat_key(chat.id), mapping={"agent": target.name, "assigned_at": time.time()})
                await pipe.execute()
            await self.log_entry(chat, {"kind": "event", "event": "transferred", "from": agent.name,
                                        "to": target.name})  # fmt: skip
            moved = await self.chat(chat.id)
            await self.publish({"type": "chat_removed", "chat": chat.id}, to=[chat.agent or agent.name])
            await self.publish({"type": "assigned", "chat": moved.summary()}, to=[target.name])
            text = self.renderer.text("request_human", "agent_joined", chat.lang, chat.channel,
                                      agent=target.display_name)  # fmt: skip
            await self.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                               agent=target.display_name, kind="agent_joined"))  # fmt: skip
            return moved
        if not to_skill:
            raise HandoffError(400, "give 'to_agent' or 'to_skill'", zh="请指定转接坐席（to_agent）或技能组")
        skills = tuple(dict.fromkeys([chat.skills[0] if chat.skills else chat.lang, to_skill]))
        await self.redis.hset(self.chat_key(chat.id), "skills", ",".join(skills))
        await self._requeue(chat, chat.agent or agent.name, front=True)
        await self.log_entry(chat, {"kind": "event", "event": "transferred", "from": agent.name,
                                    "to": f"skill:{to_skill}"})  # fmt: skip
        await self.publish({"type": "chat_removed", "chat": chat.id}, to=[chat.agent or agent.name])
        self.spawn(self.dispatch())
        return await self.chat(chat.id)

    async def _requeue(self, chat: Chat, agent: str, front: bool) -> bool:
        score = chat.enqueued_at - chat.credit - (self.config.priority.get("returned", 3600) if front else 0)
        moved = await self._return(keys=[self.keys.hk("queue"), self.chat_key(chat.id), self.agent_chats(agent)],
                                   args=[chat.id, agent, score])  # fmt: skip
        if moved and self.timers:
            await self.timers.requeued(chat.id, time.time())
        if moved:
            back = await self.chat(chat.id)
            clocks = await self.timers.clocks([chat.id]) if self.timers else {}
            await self.publish({"type": "queue_add", "chat": back.summary(clocks.get(chat.id))})
        await self.publish({"type": "queue_changed"})
        return bool(moved)

    async def agent_gone(self, name: str) -> int:
        """A vanished agent's chats go back to the queue, at the front."""
        await self.agents.set_status(name, "offline")
        count = 0
        for chat in await self.mine(name):
            if await self._requeue(chat, name, front=True):
                count += 1
                await self.log_entry(chat, {"kind": "event", "event": "agent_lost", "agent": name})
                text = self.renderer.text("request_human", "agent_lost", chat.lang, chat.channel)
                await self.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                                   kind="agent_left"))  # fmt: skip
        if count:
            log.warning("agent %s vanished: %d chat(s) back in the queue", name, count)
            await self.dispatch()
        self.spawn(self.publish_agents())
        return count

    async def close(
        self, agent: Agent, chat_id: str, disposition: str, set_survey: Callable[[Chat], Awaitable[None]]
    ) -> Chat:
        if disposition not in DISPOSITIONS:
            raise HandoffError(400, f"'disposition' must be one of {', '.join(DISPOSITIONS)}", field="disposition",
                               zh="结束原因须为 resolved、follow_up 或 complaint_registered")  # fmt: skip
        chat = await self._own(agent, chat_id)
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.chat_key(chat.id), mapping={"state": "closed", "closed_at": now, "disposition": disposition,
                                                       "closed_by": agent.name})  # fmt: skip
            pipe.srem(self.agent_chats(chat.agent or agent.name), chat.id)
            pipe.hdel(self.keys.sender(chat.channel, chat.sender), "human")
            await pipe.execute()
        if self.timers:
            await self.timers.closed(chat.id)
        await self.log_entry(chat, {"kind": "event", "event": "closed", "disposition": disposition,
                                    "agent": agent.name})  # fmt: skip
        text = self.renderer.text("request_human", "agent_left", chat.lang, chat.channel, agent=agent.display_name)
        await self.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                           agent=agent.display_name, kind="agent_left"))  # fmt: skip
        await set_survey(chat)
        labels = [self.renderer.text("survey", "level", chat.lang, chat.channel, level=n) for n in range(5)]
        question = self.renderer.text("survey", "ask", chat.lang, chat.channel)
        await self.deliver(OutboundMessage(chat.channel, chat.sender, question, chat.id,
                                           tuple(Button(t, str(5 - i)) for i, t in enumerate(labels))))  # fmt: skip
        await self.publish({"type": "chat_closed", "chat": chat.id}, to=[chat.agent or agent.name])
        self.spawn(self.dispatch())
        return await self.chat(chat.id)

    # ---- console data --------------------------------------------------------------------------------
    async def transcript(self, chat: Chat, with_notes: bool = True) -> list[dict[str, Any]]:
        out = []
        for _, fields in await self.redis.xrange(chat.log):
            entry = json.loads(fields[b"e"])
            if entry.get("kind") == "note" and not with_notes:
                continue
            if entry.get("kind") in ("customer", "bot", "agent", "system", "note", "event"):
                item = {k: v for k, v in entry.items() if k in ("kind", "text", "at", "agent", "nlu", "event",
                                                                "disposition", "reason", "score")}  # fmt: skip
                if item["kind"] == "event" and not item.get("text"):  # a readable line for the console
                    details = [str(entry[k]) for k in ("agent", "to", "clock", "disposition", "reason", "score")
                               if entry.get(k) not in (None, "")]  # fmt: skip
                    item["text"] = " · ".join([str(entry.get("event", "")), *details])
                out.append(item)
        return out

    def canned(self, chat: Chat, agent: Agent) -> list[dict[str, str]]:
        out = []
        for key, entry in self.config.canned.items():
            text = self._canned_env.from_string(entry.get(chat.lang) or entry["zh"]).render(
                agent=agent.display_name, ticket=chat.ticket or "",
                customer=mask_phone(chat.phone) if chat.phone else "")  # fmt: skip
            out.append({"id": key, "title": entry["title"].get(chat.lang, key), "text": text})
        return out

    async def agent_loads(self) -> list[dict[str, Any]]:
        agents = await self.agents.all()
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hmget(self.keys.hk("presence", agent.name), "status", "seen")
                pipe.scard(self.agent_chats(agent.name))
            rows = await pipe.execute()
        out = []
        now = time.time()
        for i, agent in enumerate(agents):
            (status_b, seen), load = rows[2 * i], rows[2 * i + 1]
            status = (status_b or b"offline").decode()
            if status != "offline" and now - float(seen or 0) >= self.config.heartbeat_timeout:
                status = "offline"
            out.append({**agent.to_json(), "status": status, "load": int(load)})
        return out

    async def breaches(self, limit: int = 50) -> list[dict[str, Any]]:
        return [json.loads(b) for b in await self.redis.lrange(self.keys.hk("breaches"), 0, limit - 1)]

    async def publish_agents(self) -> None:
        """Supervisors' overview of agents and breaches; changes within 200 ms make one update."""
        if self._agents_due:
            return
        self._agents_due = True
        await asyncio.sleep(0.2)
        self._agents_due = False
        await self.publish({"type": "agents", "agents": await self.agent_loads(), "breaches": await self.breaches()},
                           to="supervisors")  # fmt: skip
