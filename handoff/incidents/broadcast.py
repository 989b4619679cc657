"""Proactive broadcast of an incident's notice by SMS, WeChat template message and Telegram, through each channel's
outbox (seed ch. 7.2.2).

A supervisor asks for one: to the numbers given (SMS), or to the customers the back end lists in the affected
districts — their numbers by SMS, the WeChat and Telegram accounts bound to those numbers on those channels.
Above ``second_approval_over`` recipients a second supervisor must approve it first. Then, in one process at a time
(a claim per wall-clock second), at most ``per_channel[channel]`` recipients of each channel a second (and
``per_second`` in all) are taken from the channel's cursor and queued in that channel's outbox (which keeps its own
per-recipient and per-provider limits, retries and dead list): an opted-out recipient (SMS ``TD``, a WeChat follower
who unsubscribed) is skipped and counted, one queued before is not queued again. Outside ``quiet_hours`` only;
inside them it waits. The outboxes report each message's end (sent, or given up: failed) back to its broadcast's
counters. Cursors and counters live in Redis, so a restart resumes where it stopped.

The channels are reached through ``Sender`` objects and the customers through ``Audience`` (the gateway fills them
in: ``gateway/incident_sms.py``); a channel that is not enabled is refused with 503."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from gateway.errors import Conflict, Forbidden, NotFound
from gateway.rkeys import Keys

log = logging.getLogger(__name__)
CHANNELS = ("sms", "wechat", "telegram")
COUNTERS = ("queued", "opted_out", "duplicates", "sent", "failed")
JOB_TAG = "incident-broadcast:"  # an outbox job's conversation_id: which broadcast it belongs to


class Sender(Protocol):
    """One channel, as a broadcast needs it."""

    def normalise(self, raw: str) -> str:
        """The recipient as the channel keeps it; ``ValueError`` when it is none."""
        ...

    async def opted_out(self, address: str) -> bool: ...

    async def put(self, address: str, text: str, job_key: str, broadcast_id: str) -> bool:
        """Queue one message in the channel's outbox; ``False`` when that job was queued before."""
        ...


class Audience(Protocol):
    """Who lives in a district (the back end) and the social accounts bound to their numbers."""

    async def phones(self, district: str) -> list[str]: ...

    async def accounts(self, channel: str, phones: set[str]) -> list[str]:
        """The ``channel`` accounts (WeChat openids, Telegram chat ids) bound to any of ``phones``."""
        ...


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    second_approval_over: int = 1000  # more recipients than this: a second supervisor approves first
    per_second: int = 20  # recipients queued per second, across the deployment and every channel
    per_channel: dict[str, int] = field(default_factory=lambda: {"sms": 20, "wechat": 20, "telegram": 25})
    quiet_hours: tuple[str, str] = ("22:00", "08:00")  # local time; start == end: none
    timezone: str = "Asia/Shanghai"
    max_recipients: int = 200_000
    wechat_template_id: str = ""  # the WeChat template message of the notice; empty: no WeChat broadcast

    def quiet(self, now: float) -> bool:
        start, end = (dt.time.fromisoformat(t) for t in self.quiet_hours)
        if start == end:
            return False
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone)).time()
        return start <= local < end if start < end else (local >= start or local < end)


def _channel_field(name: str, channel: str) -> str:
    return f"{name}:{channel}"


class Broadcasts:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: BroadcastConfig) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config
        self.senders_source: Callable[[], dict[str, Sender]] | None = None  # set by the gateway (the channels)
        self.audience: Audience | None = None  # set by the gateway (the back end and the bindings)

    @property
    def texter_source(self) -> Callable[[], dict[str, Sender]] | None:
        """The former name of ``senders_source`` (SMS only), kept for callers not moved yet."""
        return self.senders_source

    @texter_source.setter
    def texter_source(self, source: Callable[[], dict[str, Sender]] | None) -> None:
        self.senders_source = source

    @property
    def senders(self) -> dict[str, Sender]:
        return self.senders_source() if self.senders_source is not None else {}

    def numbers_key(self, broadcast_id: str, channel: str) -> str:
        return self.keys.incident_broadcast_numbers(f"{broadcast_id}:{channel}")

    async def get(self, broadcast_id: str) -> dict[str, Any]:
        raw = await self.redis.hgetall(self.keys.incident_broadcast(broadcast_id))
        if not raw:
            raise NotFound(f"no broadcast {broadcast_id!r}", zh="没有该群发", field="id")
        g: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
        channels = json.loads(g.get("channels") or '["sms"]')
        per: dict[str, dict[str, int]] = {}
        for channel in channels:
            per[channel] = {name: int(g.pop(_channel_field(name, channel), 0) or 0)
                            for name in ("total", "cursor", *COUNTERS)}  # fmt: skip
        texts = {c: g.pop(_channel_field("text", c), "") for c in channels}
        g["texts"] = texts
        g["text"] = texts.get("sms") or texts.get("telegram") or g.get("text", "")
        g["channels"] = per
        for name in ("total", "cursor", *COUNTERS):
            g[name] = sum(p[name] for p in per.values())
        g["invalid"] = int(g.get("invalid") or 0)
        for name in ("created_at", "approved_at", "finished_at"):
            g[name] = float(g[name]) if g.get(name) else None
        g["quiet_wait"] = g.get("quiet_wait") == "1"
        return g

    async def of(self, incident_id: str) -> list[dict[str, Any]]:
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.incident_broadcasts(), 0, 199)]
        found = [await self.get(i) for i in ids]
        return [b for b in found if b["incident"] == incident_id]

    async def recipients(self, districts: tuple[str, ...], channels: list[str]) -> dict[str, list[str]]:
        """The customers the back end lists in ``districts``: their numbers (SMS) and the accounts bound to those
        numbers (WeChat, Telegram)."""
        assert self.audience is not None
        phones: list[str] = []
        for district in districts:
            phones += await self.audience.phones(district)
        phones = list(dict.fromkeys(phones))
        wanted = set(phones)
        return {c: (phones if c == "sms" else await self.audience.accounts(c, wanted)) for c in channels}

    async def create(self, incident_id: str, recipients: dict[str, list[str]], texts: dict[str, str], lang: str,
                     by: str, source: str = "numbers") -> dict[str, Any]:  # fmt: skip
        """Ask for a broadcast: ``sending`` at once, or ``awaiting_approval`` above the second-approval count.
        Recipients that are none are counted as invalid; repeats are dropped."""
        senders = self.senders
        valid: dict[str, list[str]] = {}
        invalid = 0
        for channel, raw in recipients.items():
            sender = senders.get(channel)
            kept: list[str] = []
            for value in raw:
                try:
                    kept.append(sender.normalise(value) if sender else value)
                except ValueError:
                    invalid += 1
            valid[channel] = list(dict.fromkeys(kept))
        total = sum(len(v) for v in valid.values())
        broadcast_id = f"BC{secrets.token_hex(5)}"
        state = "awaiting_approval" if total > self.config.second_approval_over else "sending"
        now = time.time()
        record: dict[str, Any] = {
            "id": broadcast_id, "incident": incident_id, "state": state if total else "done", "lang": lang,
            "channels": json.dumps(list(valid)), "invalid": invalid, "created_by": by, "created_at": repr(now),
            "approved_by": "" if state == "awaiting_approval" else by, "source": source,
        }  # fmt: skip
        for channel, values in valid.items():
            record[_channel_field("total", channel)] = len(values)
            record[_channel_field("cursor", channel)] = 0
            record[_channel_field("text", channel)] = texts.get(channel, "")
        if not total:
            record["finished_at"] = repr(now)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.incident_broadcast(broadcast_id), mapping=record)
        for channel, values in valid.items():
            for start in range(0, len(values), 10_000):
                pipe.rpush(self.numbers_key(broadcast_id, channel), *values[start : start + 10_000])
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

    async def settled(self, channel: str, conversation_id: str, outcome: str) -> None:
        """An outbox's word on one message (``done`` or ``dead``): the broadcast's sent / failed counters."""
        if not conversation_id.startswith(JOB_TAG):
            return
        broadcast_id = conversation_id[len(JOB_TAG) :]
        name = "sent" if outcome == "done" else "failed"
        await self.redis.hincrby(self.keys.incident_broadcast(broadcast_id), _channel_field(name, channel), 1)

    # ---- the worker's part (every process, once a second) ------------------------------------------------
    async def tick(self, now: float | None = None) -> int:
        """Queue this second's share of every sending broadcast, in the one process that claims the second."""
        now = time.time() if now is None else now
        senders = self.senders
        if not senders:
            return 0
        if not await self.redis.set(self.keys.incident_broadcast_tick(int(now)), "1", nx=True, ex=2):
            return 0
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.incident_broadcasts(), 0, 199)]
        used: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        for broadcast_id in ids:
            key = self.keys.incident_broadcast(broadcast_id)
            if await self.redis.hget(key, "state") != b"sending":
                continue
            quiet = self.config.quiet(now)
            await self.redis.hset(key, "quiet_wait", "1" if quiet else "0")
            if quiet:
                continue
            await self._broadcast_tick(senders, broadcast_id, used)
            if sum(used.values()) >= self.config.per_second:
                break
        return sum(used.values())

    async def _broadcast_tick(self, senders: dict[str, Sender], broadcast_id: str, used: dict[str, int]) -> None:
        broadcast = await self.get(broadcast_id)
        for channel, progress in broadcast["channels"].items():
            sender = senders.get(channel)
            room = min(self.config.per_channel.get(channel, self.config.per_second) - used.get(channel, 0),
                       self.config.per_second - sum(used.values()))  # fmt: skip
            if sender is None or room <= 0 or progress["cursor"] >= progress["total"]:
                continue
            used[channel] = used.get(channel, 0) + await self._batch(sender, broadcast, channel, room)
        after = await self.get(broadcast_id)
        if all(p["cursor"] >= p["total"] for p in after["channels"].values()):
            await self.redis.hset(self.keys.incident_broadcast(broadcast_id),
                                  mapping={"state": "done", "finished_at": repr(time.time())})  # fmt: skip

    async def _batch(self, sender: Sender, broadcast: dict[str, Any], channel: str, room: int) -> int:
        """Queue the next ``room`` recipients of ``channel`` from its cursor, then move the cursor past them. A
        process that stops in between leaves the cursor behind: the next one queues them again, and the outbox's
        job ids (one per broadcast and recipient) keep each message queued once."""
        broadcast_id = broadcast["id"]
        start = broadcast["channels"][channel]["cursor"]
        end = min(start + room, broadcast["channels"][channel]["total"])
        found = await self.redis.lrange(self.numbers_key(broadcast_id, channel), start, end - 1)
        counts = dict.fromkeys(("queued", "opted_out", "duplicates"), 0)
        text = broadcast["texts"].get(channel, "")
        for address in (n.decode() for n in found):
            if await sender.opted_out(address):
                counts["opted_out"] += 1
            elif await sender.put(address, text, f"incident:{broadcast_id}:{channel}:{address}", broadcast_id):
                counts["queued"] += 1
            else:
                counts["duplicates"] += 1
        key = self.keys.incident_broadcast(broadcast_id)
        pipe = self.redis.pipeline(transaction=True)
        for name, n in counts.items():
            if n:
                pipe.hincrby(key, _channel_field(name, channel), n)
        pipe.hset(key, _channel_field("cursor", channel), end)
        await pipe.execute()
        return len(found)


def describe(broadcast: dict[str, Any]) -> dict[str, Any]:
    """A broadcast as the console shows it (the texts, not the recipients): ``progress`` is the share queued (or
    skipped), ``delivered`` the share whose end is known (sent, failed, opted out)."""
    shown = {k: v for k, v in broadcast.items() if k not in ("text", "texts")}
    shown["text"] = broadcast.get("text", "")[:500]
    total = broadcast["total"]
    shown["progress"] = round(min(broadcast["cursor"], total) / total, 3) if total else 1.0
    ended = broadcast["sent"] + broadcast["failed"] + broadcast["opted_out"] + broadcast["duplicates"]
    shown["delivered"] = round(min(ended, total) / total, 3) if total else 1.0
    return json.loads(json.dumps(shown))
