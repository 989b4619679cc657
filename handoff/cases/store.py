"""Complaint cases in Redis (every key ``{cases}``-tagged, so each script touches one Cluster slot).

A case is a hash; its history a list that is only ever appended to (every transition and clock event, with who and
when); its notes another. Indexes: all cases by time, the cases at each stage, each agent's cases, each customer's
cases and the customer's one open case (a new complaint links to it). Registration and every transition are one
Lua script each — the stage is checked and changed, the history appended, the indexes moved and the event put on
the reports' stream together, so two agents (or processes) never both move a case from the same stage."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from gateway.errors import NotFound
from gateway.rkeys import CASE_EVENTS_MAXLEN, Keys
from handoff.cases.model import OPEN, decode

# KEYS: open(owner), case, history, all, stage set, of(owner), events. ARGV: ticket, now, entry JSON, maxlen,
# then the case's fields and values. Returns {1, ticket} (registered) or {0, the open ticket} (to link to).
_CREATE = """
local open = redis.call('GET', KEYS[1])
if open and redis.call('EXISTS', string.sub(KEYS[2], 1, #KEYS[2] - #ARGV[1]) .. open) == 1 then
  return {0, open}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
return {1, ARGV[1]}
"""

# KEYS: case, history, from-stage set, to-stage set, events, open(owner). ARGV: expected stage, new stage, entry
# JSON, now, maxlen, open action (set | del | ''), ticket, then more fields and values. Returns 'ok', or the stage
# the case is at when it is not the expected one (another transition came first).
_MOVE = """
local cur = redis.call('HGET', KEYS[1], 'status')
if cur ~= ARGV[1] then return cur or '' end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[4])
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[7])
redis.call('SADD', KEYS[4], ARGV[7])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[3])
if ARGV[6] == 'del' and redis.call('GET', KEYS[6]) == ARGV[7] then redis.call('DEL', KEYS[6]) end
if ARGV[6] == 'set' then redis.call('SET', KEYS[6], ARGV[7], 'NX') end
return 'ok'
"""


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# a case's fields that identify the customer or hold their words: encrypted at rest (the history and notes lists are
# encrypted entry by entry); the reports' stream of events carries none of them
SEALED = frozenset({"owner", "sender", "phone", "summary", "facts", "followup"})
SEALED_B = frozenset(f.encode() for f in SEALED)


class CaseStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._create = redis.register_script(_CREATE)
        self._move = redis.register_script(_MOVE)

    def _stored(self, fields: dict[str, Any]) -> dict[str, str]:
        """Fields as stored: JSON for dicts and lists, the ``SEALED`` ones encrypted."""
        out = {}
        for key, value in fields.items():
            text = dumps(value) if isinstance(value, dict | list) else str(value)
            out[key] = self.keys.seal(text) if key in SEALED and text else text
        return out

    def _case(self, raw: dict[bytes, bytes]) -> dict[str, Any]:
        return decode({k: self.keys.unseal(v).encode() if k in SEALED_B and v else v for k, v in raw.items()})

    # ---- writes -----------------------------------------------------------------------------------------
    async def create(self, ticket: str, owner: str, fields: dict[str, Any], entry: dict[str, Any]) -> tuple[bool, str]:
        """Register a case unless the customer has an open one: ``(True, ticket)``, else ``(False, open ticket)``."""
        k = self.keys
        flat = [x for kv in self._stored(fields).items() for x in kv]
        made, which = await self._create(
            keys=[k.case_open(owner), k.case(ticket), k.case_history(ticket), k.cases_all(), k.cases_in("registered"),
                  k.cases_of(owner), k.case_events()],
            args=[ticket, fields["created_at"], dumps(entry), CASE_EVENTS_MAXLEN, *flat])  # fmt: skip
        return bool(made), which.decode() if isinstance(which, bytes) else str(which)

    async def move(self, case: dict[str, Any], to: str, entry: dict[str, Any], now: float, open_action: str = "",
                   **fields: Any) -> str:  # fmt: skip
        """One transition from the case's stage as read; ``'ok'``, else the stage it is at by now."""
        k, ticket = self.keys, case["ticket"]
        flat = [x for kv in self._stored(fields).items() for x in kv]
        got = await self._move(
            keys=[k.case(ticket), k.case_history(ticket), k.cases_in(case["status"]), k.cases_in(to), k.case_events(),
                  k.case_open(case["owner"])],
            args=[case["status"], to, dumps(entry), now, CASE_EVENTS_MAXLEN, open_action, ticket, *flat])  # fmt: skip
        return got.decode() if isinstance(got, bytes) else str(got)

    async def update(self, ticket: str, **fields: Any) -> None:
        await self.redis.hset(self.keys.case(ticket), mapping=self._stored(fields))  # type: ignore[arg-type]

    async def assign(self, ticket: str, before: str, after: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if before:
                pipe.srem(self.keys.cases_of_agent(before), ticket)
            pipe.sadd(self.keys.cases_of_agent(after), ticket)
            pipe.hset(self.keys.case(ticket), "assignee", after)
            await pipe.execute()

    async def record(self, ticket: str, entry: dict[str, Any]) -> None:
        """An event in the case's history (a clock warning, a breach, an escalation, a link), also for reports."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.keys.case_history(ticket), self.keys.seal(dumps(entry)))
            pipe.xadd(self.keys.case_events(), {"e": dumps(entry)}, maxlen=CASE_EVENTS_MAXLEN, approximate=True)
            await pipe.execute()

    async def add_note(self, ticket: str, note: dict[str, Any]) -> None:
        await self.redis.rpush(self.keys.case_notes(ticket), self.keys.seal(dumps(note)))

    # ---- reads ------------------------------------------------------------------------------------------
    async def find(self, ticket: str) -> dict[str, Any] | None:
        raw = await self.redis.hgetall(self.keys.case(ticket))
        return self._case(raw) if raw else None

    async def get(self, ticket: str) -> dict[str, Any]:
        case = await self.find(ticket)
        if case is None:
            raise NotFound(f"no complaint case {ticket}", zh=f"没有编号为 {ticket} 的投诉单", field="ticket")
        return case

    async def many(self, tickets: list[str]) -> list[dict[str, Any]]:
        if not tickets:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for t in tickets:
                pipe.hgetall(self.keys.case(t))
            rows = await pipe.execute()
        return [self._case(r) for r in rows if r]

    async def history(self, ticket: str) -> list[dict[str, Any]]:
        return [json.loads(self.keys.unseal(e)) for e in await self.redis.lrange(self.keys.case_history(ticket), 0, -1)]

    async def notes(self, ticket: str) -> list[dict[str, Any]]:
        return [json.loads(self.keys.unseal(e)) for e in await self.redis.lrange(self.keys.case_notes(ticket), 0, -1)]

    async def tickets(self, *, stage: str | None = None, assignee: str | None = None, limit: int = 500) -> list[str]:
        """Tickets, newest first, of one stage and/or one agent (all cases when neither is given)."""
        if assignee or stage:
            sets = [self.keys.cases_of_agent(assignee)] if assignee else []
            sets += [self.keys.cases_in(stage)] if stage else []
            members = await (self.redis.sinter(*sets) if len(sets) > 1 else self.redis.smembers(sets[0]))
            found = sorted((m.decode() for m in members), reverse=True)
            return found[:limit]
        return [t.decode() for t in await self.redis.zrevrange(self.keys.cases_all(), 0, limit - 1)]

    async def of_customer(self, owners: list[str], limit: int = 20) -> list[str]:
        scored: dict[str, float] = {}
        for owner in owners:
            for ticket, score in await self.redis.zrevrange(self.keys.cases_of(owner), 0, limit - 1, withscores=True):
                scored[ticket.decode()] = score
        return sorted(scored, key=scored.__getitem__, reverse=True)[:limit]

    async def count_since(self, owner: str, since: float) -> int:
        return int(await self.redis.zcount(self.keys.cases_of(owner), since, "+inf"))

    async def open_case(self, owner: str) -> str | None:
        ticket = await self.redis.get(self.keys.case_open(owner))
        return ticket.decode() if ticket else None

    async def load(self, agent: str) -> int:
        """How many cases an agent is responsible for that are not yet resolved (their set against each open
        stage's: one round trip, however many closed cases the agent has behind them)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stage in OPEN:
                pipe.sinter(self.keys.cases_of_agent(agent), self.keys.cases_in(stage))
            rows = await pipe.execute()
        return sum(len(r) for r in rows)
