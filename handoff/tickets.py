"""Complaint tickets in Redis: registered with who, when, what and type, listed per customer,
announced on the handoff stream; each carries the operator's deadlines (first response 30 min,
solution 24 h). Also the daily sequence numbers of tickets and callback requests.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from bots.ports import Complaint, HandoffRequest
from gateway.rkeys import HANDOFF_REQUESTS_MAXLEN, SEQ_TTL, Keys
from handoff.reports import recorder as reports


class ComplaintTickets:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, *, tz: str = "Asia/Shanghai", first_response: int = 1800,
        solution: int = 86400,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.tz = ZoneInfo(tz)
        self.first_response = first_response
        self.solution = solution

    async def number(self, kind: str) -> str:
        """The next daily number of a kind, e.g. ``TS2026112900001`` (kind, date, sequence)."""
        day = dt.datetime.now(self.tz).strftime("%Y%m%d")
        key = self.keys.counter(f"{kind}:{day}")
        n = int(await self.redis.incr(key))
        if n == 1:
            await self.redis.expire(key, SEQ_TTL)
        return f"{kind}{day}{n:05d}"

    @staticmethod
    def _owner(phone: str | None, channel: str, sender: str) -> str:
        return f"phone:{phone}" if phone else f"{channel}:{sender}"

    async def register_complaint(self, request: HandoffRequest) -> Complaint:
        ticket = await self.number("TS")
        now = time.time()
        complaint = Complaint(ticket, request.complaint_type or "other", "registered", now, now + self.first_response,
                              now + self.solution, request.text, ((now, "registered"),))  # fmt: skip
        owner = self._owner(request.phone, request.channel, request.sender)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.complaint(ticket), mapping={
                "ticket": ticket, "complaint_type": complaint.complaint_type, "status": complaint.status,
                "created_at": now, "first_response_due": complaint.first_response_due,
                "solution_due": complaint.solution_due, "summary": request.text, "owner": owner,
                "channel": request.channel, "conversation": request.conversation_id, "lang": request.lang,
                "history": json.dumps(complaint.history)})  # fmt: skip
            pipe.zadd(self.keys.complaints_of(owner), {ticket: now})
            pipe.xadd(self.keys.handoff_requests(), {"e": json.dumps({
                "type": "complaint", "ticket": ticket, "conversation": request.conversation_id,
                "channel": request.channel, "complaint_type": complaint.complaint_type, "text": request.text,
                "urgency": request.urgency, "at": now}, ensure_ascii=False)},
                maxlen=HANDOFF_REQUESTS_MAXLEN, approximate=True)  # fmt: skip
            await pipe.execute()
        await reports.complaint_registered(self.redis, self.keys, ticket, complaint.complaint_type, now)
        return complaint

    async def complaints(self, phone: str | None, channel: str, sender: str) -> list[Complaint]:
        owners = {self._owner(phone, channel, sender), self._owner(None, channel, sender)}
        tickets: dict[str, float] = {}
        for owner in owners:
            for ticket, score in await self.redis.zrevrange(self.keys.complaints_of(owner), 0, 19, withscores=True):
                tickets[ticket.decode()] = score
        out = []
        for ticket in sorted(tickets, key=tickets.__getitem__, reverse=True):
            raw = {k.decode(): v.decode() for k, v in (await self.redis.hgetall(self.keys.complaint(ticket))).items()}
            if raw:
                out.append(Complaint(raw["ticket"], raw["complaint_type"], raw["status"], float(raw["created_at"]),
                                     float(raw["first_response_due"]), float(raw["solution_due"]), raw["summary"],
                                     tuple(tuple(h) for h in json.loads(raw["history"]))))  # fmt: skip
        return out
