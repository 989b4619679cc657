"""Proactive broadcast of an incident's notice by SMS, through the SMS channel's outbox (seed ch. 7.2.2).

A supervisor asks for one (recipients: the numbers the operator's systems list for the affected districts); above
``second_approval_over`` recipients a second supervisor must approve it first. Then, in one process at a time (a
claim per wall-clock second), at most ``per_second`` recipients a second are taken from the broadcast's cursor
and queued in the outbox (which keeps its own per-number and per-provider limits, retries and dead list): an
opted-out number is skipped and counted, a number queued before is not queued again. Outside ``quiet_hours`` only;
inside them it waits. The cursor and the counters live in Redis, so a restart resumes where it stopped.

The channel is reached through ``Texter`` (the gateway fills it in: ``gateway/incident_sms.py``); without SMS,
a broadcast is refused with 503."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from gateway.errors import Conflict, Forbidden, NotFound
from gateway.rkeys import Keys

log = logging.getLogger(__name__)
COUNTERS = ("queued", "opted_out", "invalid", "duplicates")


class Texter(Protocol):
    """The SMS channel, as a broadcast needs it."""

    def normalise(self, raw: str) -> str:
        """The number as the channel keeps it; ``ValueError`` when it is none."""
        ...

    async def opted_out(self, number: str) -> bool: ...

    async def put(self, number: str, text: str, job_id: str) -> bool:
        """Queue one text in the outbox; ``False`` when that job id was queued before."""
        ...


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    second_approval_over: int = 1000  # more recipients than this: a second supervisor approves first
    per_second: int = 20  # recipients queued per second, across the deployment
    quiet_hours: tuple[str, str] = ("22:00", "08:00")  # local time; start == end: none
    timezone: str = "Asia/Shanghai"
    max_recipients: int = 200_000

    def quiet(self, now: float) -> bool:
        start, end = (dt.time.fromisoformat(t) for t in self.quiet_hours)
        if start == end:
            return False
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone)).time()
        return start <= local < end if start < end else (local >= start or local < end)


class Broadcasts:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: BroadcastConfig) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config
        self.texter_source: Callable[[], Texter | None] | None = None  # set by the gateway (the SMS channel)

    @property
    def texter(self) -> Texter | None:
        return self.texter_source() if self.texter_source is not None else None

    async def get(self, broadcast_id: str) -> dict[str, Any]:
        raw = await self.redis.hgetall(self.keys.incident_broadcast(broadcast_id))
        if not raw:
            raise NotFound(f"no broadcast {broadcast_id!r}", zh="没有该群发", field="id")
        g = {k.decode(): v.decode() for k, v in raw.items()}
        for name in ("total", "cursor", *COUNTERS):
            g[name] = int(g.get(name) or 0)
        for name in ("created_at", "approved_at", "finished_at"):
            g[name] = float(g[name]) if g.get(name) else None
        g["quiet_wait"] = g.get("quiet_wait") == "1"
        return g

    async def of(self, incident_id: str) -> list[dict[str, Any]]:
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.incident_broadcasts(), 0, 199)]
        found = [await self.get(i) for i in ids]
        return [b for b in found if b["incident"] == incident_id]

    async def create(self, incident_id: str, numbers: list[str], text: str, lang: str, by: str) -> dict[str, Any]:
        """Ask for a broadcast: ``sending`` at once, or ``awaiting_approval`` above the second-approval count.
        Numbers that are none are counted as invalid; repeats are dropped."""
        valid: list[str] = []
        invalid = 0
        texter = self.texter
        for raw in numbers:
            try:
                valid.append(texter.normalise(raw) if texter else raw)
            except ValueError:
                invalid += 1
        valid = list(dict.fromkeys(valid))
        broadcast_id = f"BC{secrets.token_hex(5)}"
        state = "awaiting_approval" if len(valid) > self.config.second_approval_over else "sending"
        now = time.time()
        record = {"id": broadcast_id, "incident": incident_id, "state": state if valid else "done", "text": text,
                  "lang": lang, "total": len(valid), "cursor": 0, "invalid": invalid, "created_by": by,
                  "created_at": repr(now), "approved_by": "" if state == "awaiting_approval" else by}  # fmt: skip
        if not valid:
            record["finished_at"] = repr(now)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.incident_broadcast(broadcast_id), mapping=record)
        for start in range(0, len(valid), 10_000):
            pipe.rpush(self.keys.incident_broadcast_numbers(broadcast_id), *valid[start : start + 10_000])
        pipe.zadd(self.keys.incident_broadcasts(), {broadcast_id: now})
        await pipe.execute()
        return await self.get(broadcast_id)

    async def approve(self, broadcast_id: str, by: str) -> dict[str, Any]:
        broadcast = await self.get(broadcast_id)
        if broadcast["state"] != "awaiting_approval":
            raise Conflict(f"broadcast {broadcast_id} is {broadcast['state']}, not awaiting approval",
                           zh="该群发不在待审批状态", field="id")  # fmt: skip
        if broadcast["created_by"] == by:
            raise Forbidden("a second supervisor must approve a broadcast to this many recipients",
                            zh="收件人数较多，须由另一位主管审批")  # fmt: skip
        key = self.keys.incident_broadcast(broadcast_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            if (await pipe.hget(key, "state")) != b"awaiting_approval":
                raise Conflict("this broadcast was decided already", zh="该群发已被处理", field="id")
            pipe.multi()
            pipe.hset(key, mapping={"state": "sending", "approved_by": by, "approved_at": repr(time.time())})
            await pipe.execute()
        return await self.get(broadcast_id)

    async def cancel(self, broadcast_id: str, by: str) -> dict[str, Any]:
        broadcast = await self.get(broadcast_id)
        if broadcast["state"] not in ("awaiting_approval", "sending"):
            raise Conflict(f"broadcast {broadcast_id} is {broadcast['state']}", zh="该群发已结束", field="id")
        ended = {"state": "cancelled", "cancelled_by": by, "finished_at": repr(time.time())}
        await self.redis.hset(self.keys.incident_broadcast(broadcast_id), mapping=ended)
        return await self.get(broadcast_id)

    # ---- the worker's part (every process, once a second) ------------------------------------------------
    async def tick(self, now: float | None = None) -> int:
        """Queue this second's share of every sending broadcast, in the one process that claims the second."""
        now = time.time() if now is None else now
        texter = self.texter
        if texter is None:
            return 0
        if not await self.redis.set(self.keys.incident_broadcast_tick(int(now)), "1", nx=True, ex=2):
            return 0
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.incident_broadcasts(), 0, 199)]
        sent = 0
        for broadcast_id in ids:
            key = self.keys.incident_broadcast(broadcast_id)
            if await self.redis.hget(key, "state") != b"sending":
                continue
            quiet = self.config.quiet(now)
            await self.redis.hset(key, "quiet_wait", "1" if quiet else "0")
            if quiet:
                continue
            sent += await self._batch(texter, broadcast_id, self.config.per_second - sent)
            if sent >= self.config.per_second:
                break
        return sent

    async def _batch(self, texter: Texter, broadcast_id: str, room: int) -> int:
        """Queue the next ``room`` recipients from the cursor, then move the cursor past them. A process that stops
        in between leaves the cursor behind: the next one queues them again, and the outbox's job ids (one per
        broadcast and number) keep each text queued once."""
        key = self.keys.incident_broadcast(broadcast_id)
        broadcast = await self.get(broadcast_id)
        start = broadcast["cursor"]
        end = min(start + room, broadcast["total"])
        numbers = [n.decode() for n in await self.redis.lrange(self.keys.incident_broadcast_numbers(broadcast_id),
                                                                start, end - 1)]  # fmt: skip
        counts = dict.fromkeys(("queued", "opted_out", "duplicates"), 0)
        for number in numbers:
            if await texter.opted_out(number):
                counts["opted_out"] += 1
            elif await texter.put(number, broadcast["text"], f"incident:{broadcast_id}:{number}"):
                counts["queued"] += 1
            else:
                counts["duplicates"] += 1
        pipe = self.redis.pipeline(transaction=True)
        for name, n in counts.items():
            if n:
                pipe.hincrby(key, name, n)
        pipe.hset(key, "cursor", end)
        if end >= broadcast["total"]:
            pipe.hset(key, mapping={"state": "done", "finished_at": repr(time.time())})
        await pipe.execute()
        return len(numbers)


def describe(broadcast: dict[str, Any]) -> dict[str, Any]:
    """A broadcast as the console shows it (the text, not the numbers)."""
    shown = {k: v for k, v in broadcast.items() if k != "text"}
    shown["text"] = broadcast.get("text", "")[:500]
    total = broadcast["total"]
    shown["progress"] = round(min(broadcast["cursor"], total) / total, 3) if total else 1.0
    return json.loads(json.dumps(shown))
