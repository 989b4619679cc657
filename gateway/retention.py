"""Retention: how long each kind of customer data is kept (settings ``privacy.*_days``), and the purge that removes
what is older.

Keys that expire carry their retention as a TTL already (rkeys: conversation state and dedupe a day past the idle
timeout, one-time codes minutes, bindings ``bots.binding_ttl_days``, episodes and history indexes and surveys a
year and a month, report buckets, outbox ids, receipts…). What does not expire by itself is purged once a day by one
process of the deployment (``run_daily``: a ``SET NX EX`` lock, ``PRIVACY_PURGE_LOCK_TTL``), and by
``gateway privacy purge`` (``--dry-run`` counts without deleting):

==================  ==========================================================================================
kind                what goes when older than its days
==================  ==========================================================================================
conversations       log entries (XTRIM MINID); a log left empty with its meta; closed chats with people
history             episodes (by close time) and their ids in the history and search indexes
surveys             the survey stream's entries (the per-conversation survey hash expires by itself)
callbacks           callback requests (stream entries) and their handled records
cases               closed complaint cases (by their last change): the case, its history and notes, its index
                    entries; the case event stream's entries
broadcasts          incident broadcasts' recipient lists (the broadcast's counters stay)
audit               audit trail entries (``gateway.audit.trim``)
==================  ==========================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from gateway import audit, consent, tasks
from gateway.keys import REDIS, RKEYS
from gateway.rkeys import PRIVACY_PURGE_LOCK_TTL, Keys
from gateway.settings import PrivacySettings
from gateway.subject import glob_escape

log = logging.getLogger(__name__)
AnyRedis = Any
DAY = 86400
KINDS = ("conversations", "history", "surveys", "callbacks", "cases", "broadcasts", "audit")


def cutoffs(privacy: PrivacySettings, now: float | None = None) -> dict[str, float]:
    """Per kind, the epoch second before which data goes."""
    now = now or time.time()
    return {kind: now - getattr(privacy, f"{kind}_days") * DAY for kind in KINDS}


def _ms(ts: float) -> int:
    return int(ts * 1000)


async def _keys(redis: AnyRedis, keys: Keys, pattern: str) -> AsyncIterator[bytes]:
    async for key in redis.scan_iter(match=glob_escape(keys.prefix) + pattern, count=1000):
        yield key


async def _older_entries(redis: AnyRedis, key: bytes | str, cutoff: float) -> int:
    return len(await redis.xrange(key, "-", f"({_ms(cutoff)}-0", count=1_000_000))


async def _trim_stream(redis: AnyRedis, key: bytes | str, cutoff: float, dry: bool) -> int:
    if dry:
        return await _older_entries(redis, key, cutoff)
    return int(await redis.xtrim(key, minid=_ms(cutoff), approximate=False))


async def purge_conversations(redis: AnyRedis, keys: Keys, cutoff: float, dry: bool) -> int:
    gone = 0
    async for key in _keys(redis, keys, "{sender:*:log:*"):
        name = key.decode()
        old = await _older_entries(redis, key, cutoff)
        if not old:
            continue
        gone += old
        if dry:
            continue
        await redis.xtrim(key, minid=_ms(cutoff), approximate=False)
        if not await redis.xlen(key):
            await redis.delete(key, keys.conversation(name.rsplit(":log:", 1)[1]))
    async for key in _keys(redis, keys, "{handoff}:chat:*"):
        state, closed = await redis.hmget(key, ["state", "closed_at"])
        if state == b"closed" and closed and float(closed) < cutoff:
            gone += 1
            if not dry:
                await redis.delete(key)
    return gone


async def purge_history(redis: AnyRedis, keys: Keys, cutoff: float, dry: bool) -> int:
    ids = await redis.zrangebyscore(keys.handoff_episodes(), 0, cutoff)
    if dry or not ids:
        return len(ids)
    for episode in ids:
        await redis.delete(keys.handoff_episode(episode.decode()))
    await redis.zremrangebyscore(keys.handoff_episodes(), 0, cutoff)
    for pattern in ("{handoff}:history:*", "{handoff}:index:*"):
        async for key in _keys(redis, keys, pattern):
            await redis.zremrangebyscore(key, 0, cutoff)
    return len(ids)


async def purge_callbacks(redis: AnyRedis, keys: Keys, cutoff: float, dry: bool) -> int:
    gone = await _trim_stream(redis, keys.handoff_callbacks(), cutoff, dry)
    done = keys.handoff_callbacks_done()
    for task, raw in (await redis.hgetall(done)).items():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            if float(json.loads(keys.unseal(raw)).get("at", cutoff)) < cutoff:
                gone += 1
                if not dry:
                    await redis.hdel(done, task)
    return gone


async def purge_cases(redis: AnyRedis, keys: Keys, cutoff: float, dry: bool) -> int:
    gone = 0
    for raw in await redis.zrangebyscore(keys.cases_all(), 0, cutoff):
        ticket = raw.decode()
        status, updated, assignee = await redis.hmget(keys.case(ticket), ["status", "updated_at", "assignee"])
        if status != b"closed" or not updated or float(updated) >= cutoff:
            continue
        gone += 1
        if dry:
            continue
        await redis.delete(keys.case(ticket), keys.case_history(ticket), keys.case_notes(ticket))
        await redis.zrem(keys.cases_all(), ticket)
        await redis.srem(keys.cases_in("closed"), ticket)
        if assignee:
            await redis.srem(keys.cases_of_agent(assignee.decode()), ticket)
    return gone + await _trim_stream(redis, keys.case_events(), cutoff, dry)


async def purge_broadcasts(redis: AnyRedis, keys: Keys, cutoff: float, dry: bool) -> int:
    gone = 0
    for raw in await redis.zrangebyscore(keys.incident_broadcasts(), 0, cutoff):
        numbers = keys.incident_broadcast_numbers(raw.decode())
        gone += int(await redis.llen(numbers))
        if not dry:
            await redis.delete(numbers)
    return gone


async def purge_audit(redis: AnyRedis, keys: Keys, cutoff: float, dry: bool) -> int:
    if dry:
        return await _older_entries(redis, keys.audit(), cutoff)
    return await audit.trim(redis, keys, cutoff)


PURGES: dict[str, Callable[[AnyRedis, Keys, float, bool], Any]] = {
    "conversations": purge_conversations,
    "history": purge_history,
    "surveys": lambda r, k, c, d: _trim_stream(r, k.handoff_surveys(), c, d),
    "callbacks": purge_callbacks,
    "cases": purge_cases,
    "broadcasts": purge_broadcasts,
    "audit": purge_audit,
}


async def purge(redis: AnyRedis, keys: Keys, privacy: PrivacySettings, dry_run: bool = False,
                now: float | None = None) -> dict[str, int]:  # fmt: skip
    """Remove (or with ``dry_run`` count) what is older than each kind's retention: entries or records per kind."""
    limits = cutoffs(privacy, now)
    counts = {kind: int(await PURGES[kind](redis, keys, limits[kind], dry_run)) for kind in KINDS}
    if not dry_run:
        await consent.migrate_sms_optout(redis, keys)
    return counts


async def run_daily(redis: AnyRedis, keys: Keys, privacy: PrivacySettings, interval: float = DAY) -> None:
    """The server's purge task: every ``interval`` (first a minute after start), the process that takes the lock
    purges; the others skip that day."""
    await asyncio.sleep(min(60.0, interval))
    while True:
        try:
            if await redis.set(keys.privacy_purge_lock(), str(os.getpid()), nx=True, ex=PRIVACY_PURGE_LOCK_TTL):
                counts = await purge(redis, keys, privacy)
                log.info("retention purge: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
        except Exception as exc:  # a failed purge is retried tomorrow; the gateway goes on
            log.warning("retention purge failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def ctx(settings: Any) -> Callable[[web.Application], AsyncIterator[None]]:
    """The server's ``cleanup_ctx``: the daily purge task (every process runs one; the lock picks who purges)."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run_daily(app[REDIS], app[RKEYS], settings.privacy))
        yield
        await tasks.stop(task)

    return run
