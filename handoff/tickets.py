"""The daily numbers of complaint tickets (``TS…``) and callback requests (``CB…``). The complaints themselves are
cases (``handoff/cases/``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from gateway.privacy import OWN_NUMBER_KINDS
from gateway.rkeys import SEQ_TTL, Keys


class ComplaintTickets:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, tz: str = "Asia/Shanghai") -> None:
        self.redis = redis
        self.keys = keys
        self.tz = ZoneInfo(tz)

    async def number(self, kind: str) -> str:
        """The next daily number of a kind, e.g. ``TS2026112900001`` (kind, date, sequence). Only the kinds the masker
        knows (``privacy.OWN_NUMBER_KINDS``): any other would be masked as a bank card wherever it is shown."""
        if kind not in OWN_NUMBER_KINDS:
            raise ValueError(f"unknown number kind {kind!r}: add it to gateway.privacy.OWN_NUMBER_KINDS")
        day = dt.datetime.now(self.tz).strftime("%Y%m%d")
        key = self.keys.counter(f"{kind}:{day}")
        n = int(await self.redis.incr(key))
        if n == 1:
            await self.redis.expire(key, SEQ_TTL)
        return f"{kind}{day}{n:05d}"
