"""The goodwill offer of a major incident (seed ch. 7.2.2): a data bonus or a credit, through the back end, to the
customers whose complaints were linked to it (``scope: linked``) or to every customer the back end lists in its
districts (``scope: district``). A supervisor sets it while the incident is open (granted when it closes) or once it
is closed (granted at once).

Idempotent per customer: a Redis ``SET NX`` per incident and customer claims the grant ("pending", then the back
end's order id) and the back-end call carries the idempotency key ``goodwill:<incident>:<phone>``; a run cut off (a
restart, the back end away) is resumed by the desk's worker, and a customer claimed but not confirmed is asked for
again under the same key — the back end gives the first result, never a second gesture."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

from bots.bss.base import BSSError, NotFound, Order, Rejected
from gateway.errors import Conflict
from gateway.rkeys import Keys

log = logging.getLogger(__name__)
KINDS = ("data", "credit")  # MB of data, or yuan
SCOPES = ("linked", "district")
RUN_LEASE = 60  # seconds a process holds an offer's run (renewed as it goes)


class Goodwill(Protocol):
    async def goodwill(self, phone: str, kind: str, amount: float, reason: str, idempotency_key: str) -> Order: ...

    async def phones(self, district: str) -> list[str]: ...


class Compensation:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.backend: Goodwill | None = None  # set by the gateway

    def _key(self, incident_id: str) -> str:
        return self.keys.ik("compensation", incident_id)

    def _claim(self, incident_id: str, phone: str) -> str:
        return self.keys.ik("goodwill", incident_id, phone)

    async def of(self, incident_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hgetall(self._key(incident_id))
        if b"amount" not in raw:  # none (or only counters left of a deleted one)
            return None
        g: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
        for name in ("total", "granted", "already", "refused", "failed"):
            g[name] = int(g.get(name) or 0)
        g["amount"] = float(g["amount"])
        g["set_at"] = float(g["set_at"])
        return g

    async def offer(self, incident_id: str, kind: str, amount: float, scope: str, by: str) -> dict[str, Any]:
        """Set the offer (once: 409 when one was set)."""
        record = {"incident": incident_id, "kind": kind, "amount": repr(amount), "scope": scope, "by": by,
                  "set_at": repr(time.time()), "state": "planned"}  # fmt: skip
        if not await self.redis.hsetnx(self._key(incident_id), "kind", kind):
            raise Conflict("a goodwill offer was set for this incident already", zh="该事件已设置过补偿",
                           field="kind")  # fmt: skip
        await self.redis.hset(self._key(incident_id), mapping=record)
        found = await self.of(incident_id)
        assert found is not None
        return found

    def _granting(self) -> str:
        """Set: the incidents whose offer is being granted (what a worker resumes). No TTL."""
        return self.keys.ik("compensations-granting")

    async def start(self, incident_id: str) -> None:
        """The incident closed (or the offer came after): the offer is to be granted."""
        key = self._key(incident_id)
        if await self.redis.hget(key, "state") == b"planned":
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(key, "state", "granting")
            pipe.sadd(self._granting(), incident_id)
            await pipe.execute()

    async def pending(self) -> list[str]:
        """Incidents whose offer is being granted (what a worker resumes)."""
        return sorted(i.decode() for i in await self.redis.smembers(self._granting()))

    async def run(self, incident_id: str, title: str, districts: tuple[str, ...], linked: list[str]) -> int:
        """Grant the offer to every customer not granted yet, in the one process holding the run; returns how many
        were granted now. ``linked``: the numbers of the customers whose complaints were linked."""
        offer = await self.of(incident_id)
        if offer is None or offer["state"] != "granting":
            await self.redis.srem(self._granting(), incident_id)
            return 0
        if self.backend is None:
            return 0
        lease = self.keys.ik("compensation-run", incident_id)
        if not await self.redis.set(lease, "1", nx=True, ex=RUN_LEASE):
            return 0
        try:
            phones = list(linked)
            if offer["scope"] == "district":
                for district in districts:
                    phones += await self.backend.phones(district)
            phones = list(dict.fromkeys(phones))
            await self.redis.hset(self._key(incident_id), mapping={"total": len(phones), "already": 0, "failed": 0})
            granted = 0
            for phone in phones:
                granted += await self._grant(incident_id, phone, offer, title)
                await self.redis.expire(lease, RUN_LEASE)
            done = await self.of(incident_id)
            if done is not None and done["failed"] == 0:
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(self._key(incident_id), mapping={"state": "done", "done_at": repr(time.time())})
                pipe.srem(self._granting(), incident_id)
                await pipe.execute()
            return granted
        finally:
            await self.redis.delete(lease)

    async def _grant(self, incident_id: str, phone: str, offer: dict[str, Any], title: str) -> int:
        claim, key = self._claim(incident_id, phone), self._key(incident_id)
        if not await self.redis.set(claim, "pending", nx=True) and await self.redis.get(claim) != b"pending":
            await self.redis.hincrby(key, "already", 1)
            return 0
        assert self.backend is not None
        try:
            order = await self.backend.goodwill(phone, offer["kind"], offer["amount"], f"{incident_id} {title}"[:200],
                                                f"goodwill:{incident_id}:{phone}")  # fmt: skip
        except (NotFound, Rejected) as exc:  # not a subscriber, not eligible: for good
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(claim, json.dumps({"refused": getattr(exc, "code", "not_found"), "at": time.time()}))
            pipe.hincrby(key, "refused", 1)
            await pipe.execute()
            return 0
        except BSSError as exc:  # the back end is away: counted; a later run asks again under the same key
            log.info("incident %s: a goodwill gesture not granted (%s)", incident_id, type(exc).__name__)
            await self.redis.hincrby(key, "failed", 1)
            return 0
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(claim, json.dumps({"order": order.order_id, "at": time.time()}))
        pipe.hincrby(key, "granted", 1)
        await pipe.execute()
        return 1

    async def granted(self, incident_id: str, phone: str) -> bool:
        found = await self.redis.get(self._claim(incident_id, phone))
        return found is not None and b'"order"' in found
