"""The recorder: each event adds to the report buckets as it happens (``buckets.py`` says what), so a report reads
a few counters per day instead of scanning logs. Every hook is one call from the code where the event happens:

* ``TurnStats.record`` — the pipeline's turn (a conversation started; an automated answer and its latency), sent
  on the pipeline's lean connection alongside the turn's own write (no extra round trip);
* ``handoff_queued`` / ``picked_up`` / ``first_reply`` / ``chat_closed`` — the human side (``handoff/queue.py``,
  ``handoff/live.py``): arrivals, waiting, handling, quality inspection at close;
* ``complaint_registered`` / ``case_transition`` — complaints (``handoff/tickets.py``; complaint cases call
  ``case_transition`` on every stage change: first response, solution and reopening are counted from it, each
  milestone once per case);
* ``survey`` — a satisfaction score (``handoff/surveys.py``; a follow-up visit passes its case's district).

Hooks never raise for Redis trouble (``counters.add`` logs and goes on): a report is never worth a failed chat.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis

from gateway.fastredis import FastRedis, FastRedisError
from gateway.rkeys import Keys
from handoff.reports import buckets, counters, quality
from handoff.reports.config import current

log = logging.getLogger(__name__)


class ChatLike(Protocol):
    """What the hooks read of ``handoff.store.Chat``."""

    id: str
    channel: str
    lang: str
    log: str
    agent: str | None
    skills: tuple[str, ...]
    complaint_type: str | None
    ticket: str | None
    enqueued_at: float
    assigned_at: float | None
    first_reply_at: float | None


class TurnStats:
    """The pipeline's turn: ``await stats.record(...)`` runs beside the turn's finishing script (``asyncio.gather``)
    on the same lean connection, so both travel in one round trip."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, fast: FastRedis | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.fast = fast

    async def record(self, channel: str, at: float, seconds: float, new: bool, bot: bool, timed_out: bool) -> None:
        pairs = buckets.turn(channel, seconds, new, bot, timed_out, current().targets)
        if not pairs:
            return
        args = counters.command(self.keys, at, pairs)
        try:
            if self.fast is None:
                await counters.run(self.redis, args)
                return
            try:
                await self.fast.execute(*args)
            except FastRedisError as exc:
                if exc.lost or not str(exc).startswith("NOSCRIPT"):
                    raise
                await self.redis.script_load(counters.RECORD)
                await self.fast.execute(*args)
        except (aioredis.RedisError, OSError, FastRedisError) as exc:
            log.warning("reports: a turn was not counted (%s)", type(exc).__name__)


async def handoff_queued(redis: aioredis.Redis, keys: Keys, chat: ChatLike, at: float) -> None:
    hour = buckets.local(at, current().tz).hour
    await counters.add(redis, keys, at, buckets.queued(chat.channel), buckets.hour_of_day("queued", 0, hour),
                       once=(chat.id, f"queued:{chat.enqueued_at}"))  # fmt: skip


async def picked_up(redis: aioredis.Redis, keys: Keys, chat: ChatLike, agent: str, at: float) -> None:
    """The first pick-up of a queued chat (a chat back in the queue and taken again is counted once)."""
    pairs = buckets.picked_up(agent, at - chat.enqueued_at, current().targets)
    await counters.add(redis, keys, at, pairs, once=(chat.id, f"picked:{chat.enqueued_at}"))


async def first_reply(redis: aioredis.Redis, keys: Keys, chat: ChatLike, at: float) -> None:
    """An agent's first message in a chat; for a chat that carries a complaint ticket, that complaint's first
    response (counted once per ticket, whichever of this and ``case_transition`` comes first)."""
    if chat.ticket:
        created = await _registered_at(redis, keys, chat.ticket, chat.enqueued_at)
        await counters.add(redis, keys, at, buckets.first_response(at - created, current().targets),
                           once=(f"case:{chat.ticket}", "first_response"))  # fmt: skip


async def chat_closed(redis: aioredis.Redis, keys: Keys, chat: ChatLike, disposition: str, at: float) -> None:
    """Handling time (from pick-up to close), the quality inspection, and a ticket resolved in the chat."""
    start = chat.assigned_at or chat.enqueued_at
    hour = buckets.local(at, current().tz).hour
    await counters.add(redis, keys, at, buckets.closed(at - start), buckets.hour_of_day("closed", at - start, hour),
                       once=(chat.id, f"closed:{chat.enqueued_at}"))  # fmt: skip
    if chat.ticket and disposition == "resolved":
        created = await _registered_at(redis, keys, chat.ticket, chat.enqueued_at)
        await counters.add(redis, keys, at, buckets.solved(at - created, current().targets),
                           once=(f"case:{chat.ticket}", "solution"))  # fmt: skip
    try:
        await quality.inspect(redis, keys, chat, disposition, at)
    except (aioredis.RedisError, OSError) as exc:
        log.warning("reports: a chat was not inspected (%s)", type(exc).__name__)


async def complaint_registered(redis: aioredis.Redis, keys: Keys, ticket: str, complaint_type: str | None,
                               at: float) -> None:  # fmt: skip
    await counters.add(redis, keys, at, buckets.complaint(complaint_type), once=(f"case:{ticket}", "registered"))
    try:
        await redis.hset(keys.report_once(f"case:{ticket}"), "at", repr(at))
    except (aioredis.RedisError, OSError) as exc:
        log.warning("reports: a complaint's time was not kept (%s)", type(exc).__name__)


async def case_transition(redis: aioredis.Redis, keys: Keys, ticket: str, complaint_type: str | None,
                          created_at: float, to: str, at: float) -> None:  # fmt: skip
    """A complaint case moved to stage ``to`` at ``at`` (registered ``created_at``). Counts its registration
    (``registered``), first response (the first stage in reports.yml ``cases.first_response``), solution (the first
    ``cases.solution`` stage) and every ``reopened`` — each milestone once per case, so calling this on every
    transition, or again for the same one, is safe."""
    config = current()
    if to == "registered":
        await complaint_registered(redis, keys, ticket, complaint_type, created_at)
    elif to in config.first_response_stages:
        await counters.add(redis, keys, at, buckets.first_response(at - created_at, config.targets),
                           once=(f"case:{ticket}", "first_response"))  # fmt: skip
    if to in config.solution_stages:
        await counters.add(redis, keys, at, buckets.solved(at - created_at, config.targets),
                           once=(f"case:{ticket}", "solution"))  # fmt: skip
    elif to == "reopened":
        await counters.add(redis, keys, at, buckets.reopened(), once=(f"case:{ticket}", f"reopened:{at}"))


async def survey(redis: aioredis.Redis, keys: Keys, entry: dict[str, Any], district: str | None = None) -> None:
    """A satisfaction score: ``entry`` as ``handoff/surveys.py`` keeps it (conversation, score, agent, skills,
    channel, complaint_type, at). Counted once per conversation and time; a chat's quality score takes it in."""
    score, at = int(entry["score"]), float(entry.get("at") or 0)
    if score not in buckets.LEVELS:
        return
    groups: dict[str, Iterable[str]] = {
        "channel": [entry.get("channel") or ""],
        "agent": [entry.get("agent") or ""],
        "skill": [s for s in entry.get("skills") or [] if len(s) > 2] or list(entry.get("skills") or [""]),
        "complaint_type": [entry.get("complaint_type") or "none"],
        "district": [district or ""],
    }  # fmt: skip  (a skill of two letters is the language group: counted under the others when there are any)
    conversation = str(entry.get("conversation") or "")
    await counters.add(redis, keys, at, buckets.survey(score, groups), once=(conversation, f"survey:{int(at)}"))
    try:
        await quality.survey_arrived(redis, keys, conversation, score)
    except (aioredis.RedisError, OSError) as exc:
        log.warning("reports: a survey did not reach its inspection (%s)", type(exc).__name__)


async def _registered_at(redis: aioredis.Redis, keys: Keys, ticket: str, fallback: float) -> float:
    try:
        raw = await redis.hget(keys.report_once(f"case:{ticket}"), "at")
    except (aioredis.RedisError, OSError):
        raw = None
    return float(raw) if raw else fallback
