"""The incident store: the one place that reads and writes incidents in Redis (keys: ``gateway.rkeys.Keys.ik``,
one ``{incidents}`` hash tag, so each script touches one Cluster slot).

A stage change is one script: it moves the stage only if it is still the one the change was judged against (two
supervisors pressing at once: one wins, the other gets 409), stamps the stage time and appends the timeline entry.
Every change is published on ``incidents_changed`` (every process refreshes its cache of active incidents)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Any

import redis.asyncio as aioredis

from gateway.errors import NotFound
from gateway.rkeys import INCIDENT_SEQ_TTL, Keys
from handoff.incidents.model import OPEN, Incident, check_move

# Move an incident's stage if it is still ARGV[1]. KEYS: incident, timeline, the open set. ARGV: from, to,
# stage_times JSON, updated_at, timeline entry JSON, incident id, "1" when the new stage is open.
# Returns 1, or 0 when the stage changed meanwhile.
_MOVE = """
if redis.call('HGET', KEYS[1], 'stage') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'stage', ARGV[2], 'stage_times', ARGV[3], 'updated_at', ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[5])
if ARGV[7] == '1' then redis.call('SADD', KEYS[3], ARGV[6]) else redis.call('SREM', KEYS[3], ARGV[6]) end
return 1
"""


class IncidentStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, tz: dt.tzinfo | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.tz = tz or dt.UTC
        self._move = redis.register_script(_MOVE)

    # ---- reading ------------------------------------------------------------------------------------------
    async def find(self, incident_id: str) -> Incident | None:
        raw = await self.redis.hgetall(self.keys.incident(incident_id))
        return Incident.from_redis(raw) if raw else None

    async def get(self, incident_id: str) -> Incident:
        found = await self.find(incident_id)
        if found is None:
            raise NotFound(f"no incident {incident_id!r}", zh="没有该事件", field="id")
        return found

    async def recent(self, limit: int = 200) -> list[Incident]:
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.incidents_all(), 0, limit - 1)]
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.keys.incident(i))
        return [Incident.from_redis(raw) for raw in await pipe.execute() if raw]

    async def open(self) -> list[Incident]:
        """The incidents not closed, newest first."""
        ids = [i.decode() for i in await self.redis.smembers(self.keys.incidents_open())]
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.keys.incident(i))
        found = [Incident.from_redis(raw) for raw in await pipe.execute() if raw]
        return sorted((i for i in found if i.is_open), key=lambda i: -i.created_at)

    async def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        return [json.loads(e) for e in await self.redis.lrange(self.keys.incident_timeline(incident_id), 0, -1)]

    async def stats(self, incident_id: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.incident_stats(incident_id))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def stats_of(self, incident_ids: list[str]) -> dict[str, dict[str, int]]:
        pipe = self.redis.pipeline(transaction=False)
        for incident_id in incident_ids:
            pipe.hgetall(self.keys.incident_stats(incident_id))
        found = await pipe.execute()
        return {i: {k.decode(): int(v) for k, v in raw.items()} for i, raw in zip(incident_ids, found, strict=True)}

    async def links(self, incident_id: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.incident_links(incident_id))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    # ---- writing ------------------------------------------------------------------------------------------
    async def create(self, *, title: str, category: str, severity: int, districts: tuple[str, ...],
                     services: tuple[str, ...], owner: str, by: str, eta: float | None = None,
                     notice: dict[str, str] | None = None, source: str = "console", proposal: str = "",
                     note: str = "") -> Incident:  # fmt: skip
        now = time.time()
        day = dt.datetime.fromtimestamp(now, self.tz).strftime("%Y%m%d")
        seq_key = self.keys.incident_seq(day)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(seq_key)
        pipe.expire(seq_key, INCIDENT_SEQ_TTL)
        n = int((await pipe.execute())[0])
        incident = Incident(id=f"INC{day}{n:03d}", title=title, category=category, severity=severity,
                            districts=districts, services=services, stage="reported", owner=owner, created_at=now,
                            updated_at=now, eta=eta, notice=dict(notice or {}), stage_times={"reported": now},
                            source=source, proposal=proposal)  # fmt: skip
        entry = {"at": now, "by": by, "event": "stage", "from": "", "to": "reported", "note": note, "source": source}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.incident(incident.id), mapping=incident.to_redis())
        pipe.zadd(self.keys.incidents_all(), {incident.id: now})
        pipe.sadd(self.keys.incidents_open(), incident.id)
        pipe.rpush(self.keys.incident_timeline(incident.id), json.dumps(entry, ensure_ascii=False))
        pipe.publish(self.keys.incidents_changed(), incident.id)
        await pipe.execute()
        return incident

    async def move(self, incident_id: str, to: str, by: str, note: str = "") -> Incident:
        """Stage change, checked (409 with the allowed stages) and made once however many press at once."""
        incident = await self.get(incident_id)
        check_move(incident, to)
        now = time.time()
        times = {**incident.stage_times, to: now}
        entry = {"at": now, "by": by, "event": "stage", "from": incident.stage, "to": to, "note": note}
        keys = [self.keys.incident(incident_id), self.keys.incident_timeline(incident_id), self.keys.incidents_open()]
        moved = await self._move(keys=keys, args=[incident.stage, to, json.dumps(times), repr(now),
                                                  json.dumps(entry, ensure_ascii=False), incident_id,
                                                  "1" if to in OPEN else "0"])  # fmt: skip
        if not moved:  # another change came first: judge again against the stage it left
            check_move(await self.get(incident_id), to)
            return await self.move(incident_id, to, by, note)
        await self.redis.publish(self.keys.incidents_changed(), incident_id)
        return await self.get(incident_id)

    async def update(self, incident_id: str, by: str, changes: dict[str, Any], note: str = "") -> Incident:
        """Change the record's facts (eta, severity, districts, services, owner, title, notice); a timeline entry
        says what changed from what."""
        incident = await self.get(incident_id)
        before, after = incident.to_json(), dataclasses.replace(incident, **changes)
        shown = after.to_json()
        fields = {k: v for k, v in after.to_redis().items() if k in changes}
        now = time.time()
        changed = {k: {"from": before[k], "to": shown[k]} for k in changes if before[k] != shown[k]}
        entry = {"at": now, "by": by, "event": "update", "changes": changed, "note": note}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.incident(incident_id), mapping={**fields, "updated_at": repr(now)})
        pipe.rpush(self.keys.incident_timeline(incident_id), json.dumps(entry, ensure_ascii=False))
        pipe.publish(self.keys.incidents_changed(), incident_id)
        await pipe.execute()
        return await self.get(incident_id)

    async def note(self, incident_id: str, by: str, text: str) -> dict[str, Any]:
        await self.get(incident_id)
        entry = {"at": time.time(), "by": by, "event": "note", "note": text}
        await self.redis.rpush(self.keys.incident_timeline(incident_id), json.dumps(entry, ensure_ascii=False))
        return entry

    async def count(self, incident_id: str, *names: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hincrby(self.keys.incident_stats(incident_id), name, 1)
        await pipe.execute()

    async def link(self, incident_id: str, owner: str, link: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """A customer's complaint linked to the incident: ``(their link, True)`` the first time, then the same link
        with its count raised (``False``) — one link per customer however often they complain."""
        key = self.keys.incident_links(incident_id)
        first = await self.redis.hsetnx(key, owner, json.dumps({**link, "count": 1}, ensure_ascii=False))
        if first:
            return {**link, "count": 1}, True
        raw = await self.redis.hget(key, owner)
        stored = json.loads(raw) if raw else dict(link)
        stored.update(count=int(stored.get("count", 1)) + 1, last_at=link["at"], text=link.get("text", ""))
        await self.redis.hset(key, owner, json.dumps(stored, ensure_ascii=False))
        return stored, False

    async def mark_followed(self, incident_id: str, owner: str) -> None:
        """The customer was told the incident is over (never twice)."""
        key = self.keys.incident_links(incident_id)
        raw = await self.redis.hget(key, owner)
        if raw:
            await self.redis.hset(key, owner, json.dumps({**json.loads(raw), "followed_up": time.time()},
                                                         ensure_ascii=False))  # fmt: skip

    async def set_lessons(self, incident_id: str, by: str, text: str) -> Incident:
        """The lessons learnt (free text, for the review); the timeline says who wrote them."""
        await self.get(incident_id)
        entry = {"at": time.time(), "by": by, "event": "lessons", "note": text[:200]}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.incident(incident_id), "lessons", text)
        pipe.rpush(self.keys.incident_timeline(incident_id), json.dumps(entry, ensure_ascii=False))
        await pipe.execute()
        return await self.get(incident_id)

    async def last_entry(self, incident_id: str) -> float | None:
        """When the incident's timeline last changed."""
        last = await self.redis.lrange(self.keys.incident_timeline(incident_id), -1, -1)
        return float(json.loads(last[0])["at"]) if last else None

    async def entry(self, incident_id: str, by: str, event: str, **data: Any) -> dict[str, Any]:
        """A timeline entry of another kind (a task added or done)."""
        entry = {"at": time.time(), "by": by, "event": event, **data}
        await self.redis.rpush(self.keys.incident_timeline(incident_id), json.dumps(entry, ensure_ascii=False))
        return entry
