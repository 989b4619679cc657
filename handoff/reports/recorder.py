"""The recorder: each event adds to the report buckets as it happens (``buckets.py`` says what), so a report reads
a few counters per day instead of scanning logs. Every hook is one call from the code where the event happens:

* ``TurnStats.record`` — the pipeline's turn (a conversation started; an automated answer and its latency),
  counted in the process and added once a second (no round trip on the message path);
* ``handoff_queued`` / ``picked_up`` / ``first_reply`` / ``chat_closed`` — the human side (``handoff/queue.py``,
  ``handoff/live.py``): arrivals, waiting, handling, quality inspection at close;
* ``complaint_registered`` / ``case_transition`` — complaints (``handoff/tickets.py``; complaint cases call
  ``case_transition`` on every stage change: first response, solution and reopening are counted from it, each
  milestone once per case);
* ``survey`` — a satisfaction score (``handoff/surveys.py``; a follow-up visit passes its case's district).

Hooks never raise for Redis trouble (``counters.add`` logs and goes on): a report is never worth a failed chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis

from gateway import tasks
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
    """The pipeline's turns, counted in this process and added to Redis once a second (and at ``close``): the
    message path pays a few dictionary updates, never a round trip (a Redis call per turn cost more than the 5 %
    the turn may lose). A process killed outright loses at most its last second of turn counts."""

    FLUSH_EVERY = 1.0  # seconds

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.pending: dict[tuple[int, str], Counter[str]] = {}
        self._days: dict[int, str] = {}  # quarter hour (UTC) → its local day
        self._flusher: asyncio.Task[None] | None = None

    def record(self, channel: str, at: float, seconds: float, new: bool, bot: bool, timed_out: bool) -> None:
        pairs = buckets.turn(channel, seconds, new, bot, timed_out, current().targets)
        if not pairs:
            return
        quarter = int(at // 900)  # zones are whole quarter hours off UTC: a quarter hour is in one local day
        day = self._days.get(quarter)
        if day is None:
            day = self._days[quarter] = buckets.day_of(at, current().tz)
        hour = quarter // 4
        counts = self.pending.get((hour, day))
        if counts is None:
            counts = self.pending[(hour, day)] = Counter()
        for name, inc in pairs:
            counts[name] += inc
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._every_second())

    async def _every_second(self) -> None:
        while self.pending:
            await asyncio.sleep(self.FLUSH_EVERY)
            await self.flush()

    async def flush(self) -> None:
        """Add what was counted to the buckets (kept for the next flush when Redis is away)."""
        pending, self.pending = self.pending, {}
        if len(self._days) > 192:
            self._days.clear()
        for (hour, day), counts in pending.items():
            pairs = [(name, inc) for name, inc in counts.items() if inc]
            try:
                await counters.run(self.redis, counters.command_at(self.keys, hour, day, pairs))
            except (aioredis.RedisError, OSError) as exc:
                log.warning("reports: turn counts wait for Redis (%s)", type(exc).__name__)
                self.pending.setdefault((hour, day), Counter()).update(counts)

    async def close(self) -> None:
        """At shutdown: stop the timer and add the last counts."""
        await tasks.stop(self._flusher)
        await self.flush()


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
    skills = list(entry.get("skills") or [""])
    groups: dict[str, Iterable[str]] = {
        "channel": [entry.get("channel") or ""],
        "agent": [entry.get("agent") or ""],
        # a two-letter skill is the language group: the survey counts under the chat's other skills when it has any
        "skill": [s for s in skills if len(s) > 2] or skills,
        "complaint_type": [entry.get("complaint_type") or "none"],
        "district": [district or ""],
    }
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
