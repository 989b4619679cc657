"""The chat store: the one place that reads and writes a chat with people in Redis.

A chat's record (``Chat``), the queue (a sorted set), each agent's set of chats, the link from the customer's
conversation state to the chat (``human``), the live channel every process's agent hub listens on, and the
conversation log entries the human side adds. Every key comes from ``gateway.rkeys.Keys`` (the ``{handoff}``
hash tag: each script below touches one Cluster slot). A chat's id is its conversation's id; its transcript is
the conversation's log stream.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub

from gateway.errors import NotFound
from gateway.privacy import mask_phone
from gateway.rkeys import Keys

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

# Put an agent's chat back in the queue, unless it moved on. KEYS: queue, chat, agent's chats.
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

ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # chat ids (conversation ids) and callback task ids
SEALED = frozenset({"sender", "phone"})  # a chat's fields that identify the customer: encrypted at rest
SEALED_B = tuple(f.encode() for f in SEALED)
Timers = dict[str, tuple[float, float, bool]]  # clock → (warn at, due at, breached), as the console shows them


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
    state: str  # queued | assigned | closed
    agent: str | None
    enqueued_at: float
    assigned_at: float | None
    first_reply_at: float | None
    credit: float
    log: str
    closed_by: str | None = None
    log_to: str | None = None  # the log's last entry when it last closed (the next episode starts after it)
    log_from: str | None = None  # … when the chat before it of the same conversation closed (this one starts after)

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
            credit=float(g.get("credit") or 0), log=g["log"], closed_by=g.get("closed_by") or None,
            log_to=g.get("log_to") or None, log_from=g.get("log_from") or None,
        )  # fmt: skip

    def summary(self, timers: Timers | None = None) -> dict[str, Any]:
        """The chat as the console lists it: the customer masked, never the raw sender id."""
        return {
            "id": self.id, "channel": self.channel,
            "customer": mask_phone(self.phone) if self.phone else ("访客" if self.lang == "zh" else "Visitor"),
            "lang": self.lang, "skills": list(self.skills), "priority": round(self.credit), "reason": self.reason,
            "complaint_type": self.complaint_type, "urgency": self.urgency, "tier": self.tier, "ticket": self.ticket,
            "state": self.state, "agent": self.agent, "enqueued_at": self.enqueued_at, "assigned_at": self.assigned_at,
            "sla": [{"clock": c, "warn_at": w, "due_at": d, "breached": b} for c, (w, d, b) in (timers or {}).items()],
        }  # fmt: skip


def new_chat(fields: dict[str, Any]) -> Chat:
    """The record ``fields`` (as written to Redis) make."""
    return Chat.from_redis({k.encode(): str(v).encode() for k, v in fields.items()})


class ChatStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._claim = redis.register_script(_CLAIM)
        self._return = redis.register_script(_RETURN)

    # ---- reads ------------------------------------------------------------------------------------
    def _chat(self, raw: dict[bytes, bytes]) -> Chat:
        for field in SEALED_B:
            if raw.get(field):
                raw[field] = self.keys.unseal(raw[field]).encode()
        return Chat.from_redis(raw)

    async def find(self, chat_id: str) -> Chat | None:
        raw = await self.redis.hgetall(self.keys.handoff_chat(chat_id))
        return self._chat(raw) if raw else None

    def chat_of(self, raw: dict[bytes, bytes]) -> Chat | None:
        """The chat from its hash as read (``HGETALL`` of ``Keys.handoff_chat``), None when it is empty."""
        return self._chat(raw) if raw else None

    async def get(self, chat_id: str) -> Chat:
        """The chat, or ``NotFound`` (404)."""
        chat = await self.find(chat_id)
        if chat is None:
            raise NotFound(f"no chat {chat_id!r}", zh="会话不存在")
        return chat

    async def many(self, ids: list[str]) -> list[Chat]:
        """The chats of ``ids`` that exist, in that order (one round trip)."""
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat_id in ids:
                pipe.hgetall(self.keys.handoff_chat(chat_id))
            rows = await pipe.execute()
        return [self._chat(r) for r in rows if r]

    async def queued(self, limit: int = 200) -> list[Chat]:
        """The queue, first in line first."""
        ids = [i.decode() for i in await self.redis.zrange(self.keys.handoff_queue(), 0, limit - 1)]
        return await self.many(ids)

    async def position(self, chat_id: str) -> int | None:
        rank = await self.redis.zrank(self.keys.handoff_queue(), chat_id)
        return None if rank is None else int(rank) + 1

    async def mine(self, agent: str) -> list[Chat]:
        """The chats ``agent`` holds now."""
        ids = sorted(i.decode() for i in await self.redis.smembers(self.keys.handoff_agent_chats(agent)))
        return [c for c in await self.many(ids) if c.state == "assigned" and c.agent == agent]

    async def loads(self, agents: Iterable[str]) -> dict[str, int]:
        """How many chats each agent holds."""
        names = list(agents)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.scard(self.keys.handoff_agent_chats(name))
            counts = await pipe.execute()
        return {name: int(n) for name, n in zip(names, counts, strict=True)}

    async def load(self, agent: str) -> int:
        return int(await self.redis.scard(self.keys.handoff_agent_chats(agent)))

    async def told(self, chats: list[Chat]) -> list[tuple[int, float]]:
        """The queue position each customer was last told, and when."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat in chats:
                pipe.hmget(self.keys.handoff_chat(chat.id), "told", "told_at")
            rows = await pipe.execute()
        return [(int(was or 0), float(when or 0)) for was, when in rows]

    async def closed_by(self, chat_id: str) -> str:
        return ((await self.redis.hget(self.keys.handoff_chat(chat_id), "closed_by")) or b"").decode()

    async def log(self, chat: Chat) -> list[dict[str, Any]]:
        """Every entry of the chat's conversation log, oldest first."""
        return [json.loads(self.keys.unseal(fields[b"e"])) for _, fields in await self.redis.xrange(chat.log)]

    async def log_slice(self, key: str, after: str | None, upto: str | None, count: int = 2000) -> list[dict[str, Any]]:
        """The log entries after stream id ``after`` (from the start when None) up to ``upto`` (to the end), at
        most ``count``, oldest first."""
        rows = await self.redis.xrange(key, f"({after}" if after else "-", upto or "+", count=count)
        return [json.loads(self.keys.unseal(fields[b"e"])) for _, fields in rows]

    async def log_end(self, key: str) -> str | None:
        """The stream id of the log's last entry (None when it is empty)."""
        rows = await self.redis.xrevrange(key, "+", "-", count=1)
        return rows[0][0].decode() if rows else None

    # ---- writes -----------------------------------------------------------------------------------
    def batch(self) -> Pipeline:
        """A pipeline (no transaction) for ``put_queued`` and ``publish_in``: one round trip."""
        return self.redis.pipeline(transaction=False)

    def put_queued(self, pipe: Pipeline, fields: dict[str, Any], score: float) -> None:
        """A new chat in the queue (replacing an old record of the same conversation). The customer's identifiers
        (``SEALED``) are stored encrypted."""
        key = self.keys.handoff_chat(str(fields["id"]))
        pipe.delete(key)
        pipe.hset(key, mapping={k: self.keys.seal(str(v)) if k in SEALED and v else v for k, v in fields.items()})
        pipe.zadd(self.keys.handoff_queue(), {str(fields["id"]): score})

    async def link(self, chat: Chat) -> None:
        """The customer's conversation state points at the chat: their messages go to people."""
        await self.redis.hset(self.keys.sender(chat.channel, chat.sender), "human", chat.id)

    async def update(self, chat_id: str, **fields: str | float | int) -> None:
        await self.redis.hset(self.keys.handoff_chat(chat_id), mapping=fields)  # type: ignore[arg-type]

    async def claim(self, chat: Chat, agent: str, capacity: int, now: float) -> bool:
        """Give a queued chat to ``agent`` if it is still queued and the agent has room (atomic)."""
        result = await self._claim(keys=[self.keys.handoff_queue(), self.keys.handoff_chat(chat.id),
                                         self.keys.handoff_agent_chats(agent)],
                                   args=[chat.id, agent, capacity, now])  # fmt: skip
        return result == 1

    async def give_back(self, chat: Chat, agent: str, score: float) -> bool:
        """Put ``agent``'s chat back in the queue at ``score``, unless it moved on meanwhile (atomic)."""
        keys = [self.keys.handoff_queue(), self.keys.handoff_chat(chat.id), self.keys.handoff_agent_chats(agent)]
        return bool(await self._return(keys=keys, args=[chat.id, agent, score]))

    async def move(self, chat: Chat, from_agent: str, to_agent: str, at: float) -> None:
        """An assigned chat changes agents (a transfer)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(self.keys.handoff_agent_chats(from_agent), chat.id)
            pipe.sadd(self.keys.handoff_agent_chats(to_agent), chat.id)
            pipe.hset(self.keys.handoff_chat(chat.id), mapping={"agent": to_agent, "assigned_at": at})
            await pipe.execute()

    async def close(self, chat: Chat, holder: str, closed_by: str, disposition: str, at: float) -> None:
        """The chat ends: off its agent's load, and the customer's next message goes to the bot again. The sender's
        key is in another Cluster slot than the chat's, so it is let go of first: were the close to fail after it,
        the customer talks to the bot and the agent closes again, rather than the customer writing to a closed chat."""
        await self.redis.hdel(self.keys.sender(chat.channel, chat.sender), "human")
        async with self.redis.pipeline(transaction=True) as pipe:
            fields = {"state": "closed", "closed_at": at, "disposition": disposition, "closed_by": closed_by}
            pipe.hset(self.keys.handoff_chat(chat.id), mapping=fields)
            pipe.srem(self.keys.handoff_agent_chats(holder), chat.id)
            await pipe.execute()

    # ---- events and the log ------------------------------------------------------------------------
    @staticmethod
    def event_text(event: dict[str, Any], to: str | list[str] = "all") -> str:
        """An agent-side event as published on the live channel (for a script that publishes it itself)."""
        return json.dumps({"to": to, "event": event}, ensure_ascii=False)

    async def publish(self, event: dict[str, Any], to: str | list[str] = "all") -> None:
        """An agent-side event for every process's agent hub: ``to`` is ``all``, ``supervisors``, or a list of
        agent names."""
        await self.redis.publish(self.keys.live_agents(), self.event_text(event, to))

    def publish_in(self, pipe: Pipeline, event: dict[str, Any], to: str | list[str] = "all") -> None:
        pipe.publish(self.keys.live_agents(), self.event_text(event, to))

    def listen(self) -> PubSub:
        """A pub/sub connection for the live channel (subscribe with ``live_channel``)."""
        return self.redis.pubsub(ignore_subscribe_messages=True)

    @property
    def live_channel(self) -> str:
        return self.keys.live_agents()

    async def log_entry(self, chat: Chat, entry: dict[str, Any]) -> dict[str, Any]:
        """Append to the chat's conversation log (``at`` now unless given); returns the entry as stored."""
        entry = {**entry, "at": entry.get("at", time.time())}
        await self.redis.xadd(chat.log, {"e": self.keys.seal(json.dumps(entry, ensure_ascii=False))})
        return entry
