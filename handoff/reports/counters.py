"""Adding to the report buckets: one script call per event — the hour's and the day's hash (and, for a milestone
counted once, its marker) in one round trip and one Cluster slot (the ``{reports}`` hash tag)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from gateway.rkeys import REPORT_DAY_TTL, REPORT_HOUR_TTL, REPORT_ONCE_TTL, Keys
from handoff.reports import buckets
from handoff.reports.buckets import Pairs
from handoff.reports.config import current

log = logging.getLogger(__name__)

# KEYS: hour hash, day hash, once-marker hash. ARGV: hour ttl, day ttl, once field ('' = always), once ttl,
# number of pairs for both buckets, then field, increment … (both), then field, increment … (day only).
# Returns 0 when the milestone was already counted (nothing added), else 1.
RECORD = """
if ARGV[3] ~= '' then
  if redis.call('HSETNX', KEYS[3], ARGV[3], '1') == 0 then return 0 end
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
local both = tonumber(ARGV[5])
local i = 6
for _ = 1, both do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""
RECORD_SHA = hashlib.sha1(RECORD.encode()).hexdigest()


def command(keys: Keys, at: float, pairs: Pairs, day_only: Pairs | None = None,
            once: tuple[str, str] | None = None) -> list[Any]:  # fmt: skip
    """The ``EVALSHA`` arguments adding ``pairs`` to ``at``'s hour and day (``day_only`` to the day alone);
    ``once`` = (subject, milestone): only the first time."""
    return command_at(keys, buckets.hour_of(at), buckets.day_of(at, current().tz), pairs, day_only, once)


def command_at(keys: Keys, hour: int, day: str, pairs: Pairs, day_only: Pairs | None = None,
               once: tuple[str, str] | None = None) -> list[Any]:  # fmt: skip
    """``command`` for a UTC hour and the local day it belongs to."""
    subject, milestone = once or ("-", "")
    args: list[Any] = [REPORT_HOUR_TTL, REPORT_DAY_TTL, milestone, REPORT_ONCE_TTL, len(pairs)]
    for field, inc in (*pairs, *(day_only or ())):
        args += [field, inc]
    return ["EVALSHA", RECORD_SHA, 3, keys.report_hour(hour), keys.report_day(day), keys.report_once(subject), *args]


async def run(redis: aioredis.Redis, args: list[Any]) -> Any:
    """Run a ``command`` with redis-py (loading the script when Redis does not know it)."""
    try:
        return await redis.execute_command(*args)
    except NoScriptError:
        await redis.script_load(RECORD)
        return await redis.execute_command(*args)


async def add(redis: aioredis.Redis, keys: Keys, at: float, pairs: Pairs, day_only: Pairs | None = None,
              once: tuple[str, str] | None = None) -> bool:  # fmt: skip
    """Add an event's counts. A report is never worth a failed chat: a Redis error is logged and swallowed."""
    try:
        return bool(await run(redis, command(keys, at, pairs, day_only, once)))
    except (aioredis.RedisError, OSError) as exc:
        log.warning("reports: an event was not counted (%s)", type(exc).__name__)
        return False
