"""The case clocks' timers and the worker that fires them.

Timers are members ``ticket|clock|stage`` of one sorted set scored by their due time: ``first_response`` and
``solution`` each have ``warn`` (before the breach), ``breach`` (escalated to the department's supervisor) and
``head`` (still not met: escalated to the department head); ``followup|visit`` starts the follow-up visit.

Every gateway process runs the worker. A due timer is *claimed* by moving it a lease ahead (one script: only one
process wins), handled, then removed. A process that dies while handling one leaves it to fire again after the
lease, and each effect is recorded once on the case (``HSETNX`` of the timer's mark), so a timer's effect happens
exactly once whatever processes come and go — the timers live in Redis, so they survive restarts. (A warning that
comes round again only after its breach is dropped: the breach says more.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from gateway import tasks
from gateway.errors import log_failure
from gateway.rkeys import Keys

log = logging.getLogger(__name__)
LEASE = 15.0  # seconds a claimed timer is held before another process may take it over

# KEYS: timers. ARGV: member, now, lease. 1 when this process claimed the due timer.
_CLAIM = """
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
return 1
"""

Fire = Callable[[str, str, str, float], Awaitable[None]]  # ticket, clock, stage, due


class CaseTimers:
    def __init__(self, redis: aioredis.Redis, keys: Keys, lease: float = LEASE) -> None:
        self.redis = redis
        self.keys = keys
        self.lease = lease
        self.wake = asyncio.Event()
        self._claim = redis.register_script(_CLAIM)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ---- the timers ----------------------------------------------------------------------------------------
    async def schedule(self, ticket: str, clock: str, stage: str, due: float) -> None:
        await self.redis.zadd(self.keys.case_timers(), {f"{ticket}|{clock}|{stage}": due})
        self.wake.set()

    async def cancel(self, ticket: str, clock: str, stages: tuple[str, ...] = ("warn", "breach", "head")) -> None:
        await self.redis.zrem(self.keys.case_timers(), *(f"{ticket}|{clock}|{s}" for s in stages))

    async def pending(self, ticket: str) -> dict[str, float]:
        """The case's timers still to fire, ``clock|stage`` → due (for tests and the case view)."""
        rows = await self.redis.zrange(self.keys.case_timers(), 0, -1, withscores=True)
        out = {}
        for member, due in rows:
            t, _, rest = member.decode().partition("|")
            if t == ticket:
                out[rest] = due
        return out

    # ---- the worker ----------------------------------------------------------------------------------------
    def start(self, fire: Fire) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(fire))

    async def stop(self) -> None:
        self._stopping = True
        self.wake.set()
        await tasks.stop(self._task)

    async def _run(self, fire: Fire) -> None:
        while not self._stopping:
            try:
                await self.fire_due(fire)
                head = await self.redis.zrange(self.keys.case_timers(), 0, 0, withscores=True)
                delay = min(max(head[0][1] - time.time(), 0.0), 1.0) if head else 1.0
                self.wake.clear()
                waiter = asyncio.ensure_future(self.wake.wait())
                try:  # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation
                    await asyncio.wait({waiter}, timeout=delay)
                finally:
                    waiter.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away for a moment: try again shortly
                log_failure(log, "case timers: worker error", exc)
                await asyncio.sleep(1.0)

    async def fire_due(self, fire: Fire) -> int:
        """Claim and handle every due timer; how many this process handled."""
        now = time.time()
        rows = await self.redis.zrangebyscore(self.keys.case_timers(), "-inf", now, start=0, num=50, withscores=True)
        fired = 0
        for raw, due in rows:
            member = raw.decode()
            if not await self._claim(keys=[self.keys.case_timers()], args=[member, now, self.lease]):
                continue  # another process has it
            ticket, clock, stage = member.split("|")
            try:
                await fire(ticket, clock, stage, due)
            except Exception as exc:
                log_failure(log, f"case timers: {clock} {stage} of a case failed (it fires again after the lease)", exc)
                continue
            await self.redis.zrem(self.keys.case_timers(), member)
            fired += 1
        return fired
