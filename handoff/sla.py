"""SLA clocks and presence checks as timers in Redis: a sorted set of ``clock|id|stage`` members scored by their
due time (epoch seconds), and per chat a hash of its running clocks as the console shows them. ``Clocks`` starts
and stops them; the worker that fires them is ``handoff.timers.Timers``. Also the list of recent breaches.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from gateway.rkeys import HANDOFF_BREACHES_KEPT, HANDOFF_CLOCKS_TTL, Keys
from handoff.config import HandoffConfig
from handoff.store import Timers

CHAT_CLOCKS = ("pickup", "first_reply", "complaint_first_response")


class Clocks:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: HandoffConfig) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config
        self.wake = asyncio.Event()  # set when a timer is added: the worker looks again at the earliest one

    # ---- the timers -------------------------------------------------------------------------------
    async def schedule(self, member: str, due: float) -> None:
        await self.redis.zadd(self.keys.handoff_timers(), {member: due})
        self.wake.set()

    async def cancel(self, *members: str) -> None:
        if members:
            await self.redis.zrem(self.keys.handoff_timers(), *members)

    async def due(self, now: float, limit: int = 50) -> list[tuple[str, float]]:
        rows = await self.redis.zrangebyscore(self.keys.handoff_timers(), "-inf", now, start=0, num=limit,
                                              withscores=True)  # fmt: skip
        return [(member.decode(), due) for member, due in rows]

    async def claim(self, member: str) -> bool:
        """Take a fired timer: only one process handles it."""
        return bool(await self.redis.zrem(self.keys.handoff_timers(), member))

    async def next_due(self) -> float | None:
        head = await self.redis.zrange(self.keys.handoff_timers(), 0, 0, withscores=True)
        return float(head[0][1]) if head else None

    async def watch_agent(self, name: str, due: float) -> None:
        """Check the agent's presence at ``due`` (a vanished agent's chats go back to the queue)."""
        await self.schedule(f"presence|{name}|check", due)

    # ---- a chat's clocks ----------------------------------------------------------------------------
    async def _start(self, chat_id: str, clock: str, start: float) -> None:
        c = self.config.clocks[clock]
        key = self.keys.handoff_clocks(chat_id)
        await self.redis.hset(key, clock, json.dumps([start + c.warn, start + c.breach, False]))
        await self.redis.expire(key, HANDOFF_CLOCKS_TTL)
        await self.schedule(f"{clock}|{chat_id}|warn", start + c.warn)
        await self.schedule(f"{clock}|{chat_id}|breach", start + c.breach)

    async def _stop(self, chat_id: str, clock: str) -> None:
        await self.cancel(f"{clock}|{chat_id}|warn", f"{clock}|{chat_id}|breach")
        await self.redis.hdel(self.keys.handoff_clocks(chat_id), clock)

    def queue_clocks(self, pipe: Pipeline, chat_id: str, now: float, complaint_at: float | None) -> Timers:
        """The clocks of a chat entering the queue, added to ``pipe`` (one round trip with the enqueue);
        returns them as the console shows them."""
        out: Timers = {}
        starts = {"pickup": now, **({"complaint_first_response": complaint_at} if complaint_at is not None else {})}
        key = self.keys.handoff_clocks(chat_id)
        for clock, start in starts.items():
            c = self.config.clocks[clock]
            out[clock] = (start + c.warn, start + c.breach, False)
            pipe.hset(key, clock, json.dumps(list(out[clock])))
            pipe.zadd(self.keys.handoff_timers(), {f"{clock}|{chat_id}|warn": start + c.warn,
                                                   f"{clock}|{chat_id}|breach": start + c.breach})  # fmt: skip
        pipe.expire(key, HANDOFF_CLOCKS_TTL)
        self.wake.set()
        return out

    async def picked_up(self, chat_id: str, now: float) -> None:
        await self._stop(chat_id, "pickup")
        await self._start(chat_id, "first_reply", now)

    async def first_reply(self, chat_id: str) -> None:
        await self._stop(chat_id, "first_reply")
        await self._stop(chat_id, "complaint_first_response")

    async def requeued(self, chat_id: str, now: float) -> None:
        await self._stop(chat_id, "first_reply")
        await self._start(chat_id, "pickup", now)

    async def closed(self, chat_id: str) -> None:
        for clock in CHAT_CLOCKS:
            await self._stop(chat_id, clock)

    async def clocks(self, chat_ids: list[str]) -> dict[str, Timers]:
        """Each chat's running clocks (one round trip)."""
        if not chat_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat_id in chat_ids:
                pipe.hgetall(self.keys.handoff_clocks(chat_id))
            rows = await pipe.execute()
        return {chat_id: {k.decode(): tuple(json.loads(v)) for k, v in row.items()}  # type: ignore[misc]
                for chat_id, row in zip(chat_ids, rows, strict=True)}  # fmt: skip

    # ---- breaches -----------------------------------------------------------------------------------------
    async def breached(self, chat_id: str, clock: str, record: dict[str, Any]) -> None:
        """A clock ran out: kept in the breaches list, and marked on the chat's clock."""
        await self.redis.lpush(self.keys.handoff_breaches(), json.dumps(record))
        await self.redis.ltrim(self.keys.handoff_breaches(), 0, HANDOFF_BREACHES_KEPT - 1)
        stored = await self.redis.hget(self.keys.handoff_clocks(chat_id), clock)
        if stored:
            warn_at, due_at, _ = json.loads(stored)
            await self.redis.hset(self.keys.handoff_clocks(chat_id), clock, json.dumps([warn_at, due_at, True]))

    async def breaches(self, limit: int = 50) -> list[dict[str, Any]]:
        return [json.loads(b) for b in await self.redis.lrange(self.keys.handoff_breaches(), 0, limit - 1)]
