"""Early warning (seed ch. 7.2.1 预警): a sliding-window detector over network complaints and ``network_status``
questions per district (and per district × channel).

Counting: every process counts what its bots observe in memory (``Counts``) and adds it to Redis in one batch a
second — hour buckets, ``incident_counts(<epoch hour>)`` → ``<district>|<channel>|<kind>`` (HINCRBY), kept 35 days.

Judging: every ``interval`` seconds one process (a Redis claim per interval) counts the last ``window_minutes`` from
the buckets (a partly covered hour counts in proportion) and the same window on each of the last ``baseline_days``
days (the same hour of day); a scope whose count is at least ``min_count`` and over ``factor`` × the median of those
days (at least ``floor``) becomes a proposal — unless a proposal for it is muted (``cooldown``) or an open incident
already covers the district. Proposals go to supervisors on the agents' live channel with the evidence; they accept
(an incident is opened) or dismiss it (``handoff.incidents.api``)."""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from collections import Counter, defaultdict, deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from gateway.privacy import mask_text
from gateway.rkeys import INCIDENT_COUNTS_TTL, Keys
from handoff.incidents.config import DetectorConfig

log = logging.getLogger(__name__)
HOUR = 3600
DAY = 86400
KINDS = ("complaint", "network_status")


class Counts:
    """What this process observed since the last flush (no I/O), and a few recent texts per district (masked)."""

    def __init__(self, samples: int = 5) -> None:
        self.keep = max(samples, 1)
        self.pending: Counter[tuple[int, str]] = Counter()
        self.samples: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=self.keep))

    def add(self, district: str, channel: str, kind: str, text: str, at: float | None = None, n: int = 1) -> None:
        hour = int((at if at is not None else time.time()) // HOUR)
        self.pending[(hour, f"{district}|{channel}|{kind}")] += n
        if text:
            self.samples[district].append(mask_text(text)[:200])

    async def flush(self, redis: aioredis.Redis, keys: Keys) -> int:
        """Add the pending counts to Redis (one round trip); returns how many were added."""
        if not self.pending:
            return 0
        pending, self.pending = self.pending, Counter()
        samples, self.samples = self.samples, defaultdict(lambda: deque(maxlen=self.keep))
        pipe = redis.pipeline(transaction=False)
        for (hour, scope), n in pending.items():
            pipe.hincrby(keys.incident_counts(hour), scope, n)
            pipe.expire(keys.incident_counts(hour), INCIDENT_COUNTS_TTL)
        for district, texts in samples.items():
            pipe.lpush(keys.incident_samples(district), *texts)
            pipe.ltrim(keys.incident_samples(district), 0, self.keep - 1)
            pipe.expire(keys.incident_samples(district), INCIDENT_COUNTS_TTL)
        try:
            await pipe.execute()
        except Exception:
            for item, n in pending.items():  # Redis away for a moment: keep them for the next flush
                self.pending[item] += n
            raise
        return sum(pending.values())


def _scopes(bucket: dict[bytes, bytes], per_channel: bool) -> Counter[str]:
    """A bucket's counts summed per district (``<district>``) and per district × channel (``<district>|<channel>``)."""
    out: Counter[str] = Counter()
    for field, value in bucket.items():
        district, channel, _kind = field.decode().split("|", 2)
        out[district] += int(value)
        if per_channel:
            out[f"{district}|{channel}"] += int(value)
    return out


class Detector:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: DetectorConfig) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config

    async def window(self, end: float, days_back: int = 0) -> dict[int, Counter[str]]:
        """The scopes' counts in the window ending at ``end``, on this day and each of the ``days_back`` days
        before it (index: days before ``end``), from one pipelined read."""
        start = end - self.config.window_minutes * 60
        hours = list(range(int(start // HOUR), int(end // HOUR) + 1))
        pipe = self.redis.pipeline(transaction=False)
        for day in range(days_back + 1):
            for hour in hours:
                pipe.hgetall(self.keys.incident_counts(hour - day * 24))
        buckets = iter(await pipe.execute())
        out: dict[int, Counter[str]] = {}
        for day in range(days_back + 1):
            total: Counter[str] = Counter()
            for hour in hours:
                covered = min(end, (hour + 1) * HOUR) - max(start, hour * HOUR)
                # the hour that is still running counts whole; an earlier hour in proportion to the window's share
                share = 1.0 if day == 0 and hour == hours[-1] else max(covered, 0) / HOUR
                for scope, n in _scopes(next(buckets), self.config.per_channel).items():
                    total[scope] += n * share
            out[day] = total
        return out

    async def evaluate(self, now: float | None = None, covered: set[str] | frozenset[str] = frozenset()
                       ) -> list[dict[str, Any]]:  # fmt: skip
        """The scopes over their baseline now (each judged once per cooldown); ``covered``: districts an open
        incident covers already. Returns the new proposals (stored)."""
        c = self.config
        now = time.time() if now is None else now
        counts = await self.window(now, c.baseline_days)
        current = counts[0]
        made = []
        for scope, count in sorted(current.items()):
            if count < c.min_count or scope.split("|")[0] in covered:
                continue
            history = [counts[d].get(scope, 0.0) for d in range(1, c.baseline_days + 1)]
            baseline = statistics.median(history) if history else 0.0
            if count <= c.factor * max(baseline, c.floor):
                continue
            if not await self.redis.set(self.keys.incident_mute(scope), "1", nx=True, ex=c.cooldown):
                continue
            made.append(await self._propose(scope, count, baseline, history, now))
        return made

    async def _propose(self, scope: str, count: float, baseline: float, history: list[float], now: float
                       ) -> dict[str, Any]:  # fmt: skip
        district, _, channel = scope.partition("|")
        samples = [t.decode() for t in await self.redis.lrange(self.keys.incident_samples(district), 0, -1)]
        proposal = {
            "id": uuid.uuid4().hex[:12], "district": district, "channel": channel or None, "count": round(count, 1),
            "baseline": round(baseline, 2), "factor": round(count / max(baseline, self.config.floor), 1),
            "history": [round(h, 1) for h in history], "window_minutes": self.config.window_minutes, "at": now,
            "samples": samples, "state": "proposed",
        }  # fmt: skip
        await self.redis.hset(self.keys.incident_proposals(), proposal["id"], json.dumps(proposal, ensure_ascii=False))
        log.warning("incident proposed: %s, %.0f messages in %d min (baseline %.1f)", scope, count,
                    self.config.window_minutes, baseline)  # fmt: skip
        return proposal

    async def proposals(self, state: str | None = "proposed") -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.incident_proposals())
        found = [json.loads(v) for v in raw.values()]
        return sorted((p for p in found if state is None or p["state"] == state), key=lambda p: -p["at"])

    async def proposal(self, proposal_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.incident_proposals(), proposal_id)
        return json.loads(raw) if raw else None

    async def decide(self, proposal_id: str, state: str, by: str, incident: str = "") -> dict[str, Any] | None:
        """Mark a proposal accepted or dismissed once: ``None`` when it is no longer proposed."""
        key = self.keys.incident_proposals()
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, proposal_id)
                    proposal = json.loads(raw) if raw else None
                    if proposal is None or proposal["state"] != "proposed":
                        return None
                    proposal.update(state=state, decided_by=by, decided_at=time.time(), incident=incident)
                    pipe.multi()
                    pipe.hset(key, proposal_id, json.dumps(proposal, ensure_ascii=False))
                    await pipe.execute()
                    return proposal
                except WatchError:  # another decision (of any proposal) came in between: look again
                    continue

    async def claim(self, now: float | None = None) -> bool:
        """This process runs the evaluation of the current interval (one process across the deployment)."""
        slot = int((time.time() if now is None else now) // self.config.interval)
        ttl = max(int(self.config.interval * 2), 2)
        return bool(await self.redis.set(self.keys.incident_claim(slot), "1", nx=True, ex=ttl))

    async def set_incident(self, proposal_id: str, incident_id: str) -> dict[str, Any]:
        """The incident an accepted proposal opened."""
        proposal = await self.proposal(proposal_id) or {"id": proposal_id}
        proposal["incident"] = incident_id
        await self.redis.hset(self.keys.incident_proposals(), proposal_id, json.dumps(proposal, ensure_ascii=False))
        return proposal
