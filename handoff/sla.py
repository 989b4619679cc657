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

# A process starts: note it (agents' reconnect grace counts from it) and, when no process of the deployment was
# alive for longer than ARGV[2] seconds, pause every chat clock for that time — each timer not yet due when the
# last process was last alive moves on by the gap, and so does its clock as the console shows it.
# KEYS: alive, started, timers. ARGV: now, outage_after, clocks key prefix. Returns the last sign of life (or 0)
# and the number of timers moved; atomic, so no process fires a timer of the gap meanwhile.
_RESUME = """
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
if last <= 0 or now - last <= tonumber(ARGV[2]) then return {'0', 0} end
local gap = now - last
local moved = 0
local rows = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. last, '+inf', 'WITHSCORES')
for i = 1, #rows, 2 do
  local member = rows[i]
  local kind, chat, stage = string.match(member, '^([^|]+)|(.+)|([^|]+)$')
  if kind and kind ~= 'presence' then
    redis.call('ZADD', KEYS[3], tonumber(rows[i + 1]) + gap, member)
    moved = moved + 1
    if stage == 'breach' then
      local key = ARGV[3] .. chat
      local stored = redis.call('HGET', key, kind)
      if stored then
        local c = cjson.decode(stored)
        if not c[3] then
          redis.call('HSET', key, kind, cjson.encode({c[1] + gap, c[2] + gap, false}))
        end
      end
    end
  end
end
return {tostring(last), moved}
"""


class Clocks:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: HandoffConfig) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config
        self.wake = asyncio.Event()  # set when a timer is added: the worker looks again at the earliest one
        self._resume = redis.register_script(_RESUME)

    # ---- the deployment's sign of life ---------------------------------------------------------------------
    async def resume(self, now: float) -> dict[str, Any] | None:
        """A process starts (before its worker fires anything): the outage it ends, if any, with every chat clock
        paused for it and the outage recorded (not counted as anyone's breach); ``None`` when there was none."""
        keys = [self.keys.handoff_alive(), self.keys.handoff_started(), self.keys.handoff_timers()]
        last, moved = await self._resume(keys=keys, args=[now, self.config.outage_after,
                                                          self.keys.handoff_clocks("")])  # fmt: skip
        if float(last) <= 0:
            return None
        outage = {"from": float(last), "to": now, "seconds": round(now - float(last), 1), "timers_paused": int(moved)}
        await self.redis.lpush(self.keys.handoff_outages(), json.dumps(outage))
        await self.redis.ltrim(self.keys.handoff_outages(), 0, HANDOFF_BREACHES_KEPT - 1)
        return outage

    async def alive(self, now: float) -> None:
        """This process is alive (the timer worker says so every second)."""
        await self.redis.set(self.keys.handoff_alive(), now)

    async def started(self) -> float:
        """When a gateway process of the deployment last started (0 when unknown)."""
        return float(await self.redis.get(self.keys.handoff_started()) or 0)

    async def outages(self, limit: int = 50) -> list[dict[str, Any]]:
        return [json.loads(o) for o in await self.redis.lrange(self.keys.handoff_outages(), 0, limit - 1)]

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
