"""Marketing consent: per customer (the keyed hash of the phone number) and channel, with when and where it was
given or withdrawn.

One hash per customer (``Keys.consent(phone)``): field = a channel (``sms``, ``wechat``, ``telegram``, …) or ``*``
(every channel), value = JSON ``{"granted", "at", "source", "by", "history"}`` — ``source`` says how it came
(``sms:TD`` a customer's opt-out keyword, ``sms:YES`` an opt-in, ``api``, ``console``, ``erasure``), ``history``
the earlier decisions (newest last, at most ``HISTORY_KEPT``), the record a regulator may ask for.

``may_market(redis, keys, phone, channel)`` is what every broadcast asks before queueing a marketing or notice
message: the channel's own decision, else the ``*`` one, else the deployment's default (``privacy.marketing_default``:
``opt_out`` — allowed until withdrawn, the SMS channel's behaviour with TD — or ``opt_in``, nothing until granted).

The SMS channel's TD/DY keywords write here (``sms:TD``); the old ``sms_optout`` hash of clear numbers is moved
into these records by ``migrate_sms_optout`` (at start-up and by the daily purge) and then deleted.

An erasure (gateway/subject.py) keeps the customer's consent record — it names no one, only the keyed hash — with
every channel withdrawn (``source: erasure``): a customer who asked to be forgotten gets no marketing afterwards.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from gateway.rkeys import Keys

AnyRedis = Any  # redis.asyncio.Redis or RedisCluster
ALL = "*"
HISTORY_KEPT = 20
CHANNELS = ("sms", "wechat", "weibo", "telegram", "webchat", "rest", "forum", "email", "voice", ALL)
SOURCE = re.compile(r"[a-z][a-z0-9_]{0,19}(:[A-Za-z0-9_-]{1,20})?")
DEFAULTS = ("opt_out", "opt_in")


def valid_source(source: str) -> bool:
    return bool(SOURCE.fullmatch(source))


async def read(redis: AnyRedis, keys: Keys, phone: str) -> dict[str, dict[str, Any]]:
    """Every channel's decision for the customer (``{}`` when none was ever recorded)."""
    raw = await redis.hgetall(keys.consent(phone))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def record(redis: AnyRedis, keys: Keys, phone: str, channel: str, granted: bool, source: str, by: str = "",
                 at: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Record a decision (the previous one kept in its history); the new record."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if not valid_source(source):
        raise ValueError("source must look like 'sms:TD', 'api' or 'console'")
    key = keys.consent(phone)
    previous = await redis.hget(key, channel)
    history: list[Any] = []
    if previous:
        old = json.loads(previous)
        history = [*old.get("history", []), [old["granted"], old["at"], old["source"]]][-HISTORY_KEPT:]
    entry = {"granted": granted, "at": round(at or time.time(), 3), "source": source, "by": by[:64],
             "history": history}  # fmt: skip
    await redis.hset(key, channel, json.dumps(entry, ensure_ascii=False))
    return entry


async def may_market(redis: AnyRedis, keys: Keys, phone: str, channel: str, default: str = "opt_out") -> bool:
    """May a marketing or broadcast message go to this customer on this channel? (See the module's doc.)"""
    mine, every = await redis.hmget(keys.consent(phone), [channel, ALL])
    for raw in (mine, every):
        if raw:
            return bool(json.loads(raw)["granted"])
    return default != "opt_in"


async def withdraw_all(redis: AnyRedis, keys: Keys, phone: str, source: str = "erasure") -> None:
    """Every channel withdrawn (an erasure): the record keeps the decision and nothing else."""
    key = keys.consent(phone)
    now = round(time.time(), 3)
    entry = json.dumps({"granted": False, "at": now, "source": source, "by": "", "history": []})
    await redis.delete(key)
    await redis.hset(key, ALL, entry)


async def migrate_sms_optout(redis: AnyRedis, keys: Keys) -> int:
    """Numbers in the old ``sms_optout`` hash (clear numbers → time) become consent records (``sms``, withdrawn,
    ``sms:TD``, the time they opted out); the hash is deleted. How many moved."""
    old = keys.sms_optout()
    moved = 0
    for number, at in (await redis.hgetall(old)).items():
        phone = number.decode()
        if not re.fullmatch(r"\+?[0-9]{5,16}", phone):
            continue
        try:
            when = float(at)
        except ValueError:
            when = time.time()
        await record(redis, keys, phone, "sms", False, "sms:TD", at=when)
        moved += 1
    await redis.delete(old)
    return moved
