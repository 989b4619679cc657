"""Search over ended chats (episodes, ``handoff.history``): by phone number, ticket, text, agent and a date range.

Every filter is a sorted set of episode ids scored by close time: the customer's history (a keyed hash of the
number's digits — the number itself is never stored, so a search matches the full digits only), an agent's, a
ticket's, and one per **term** of the masked text (lower-cased words of letters and digits, and each two-character
run of Chinese; each term's key a keyed hash too). A query counts each of its sets in the date range (one
``ZCOUNT`` each), reads at most ``SCAN`` of the newest ids from the smallest, keeps those every other set holds
(``ZMSCORE``), then reads at most ``LIMIT`` episodes and checks the text itself (a phrase is more than its terms).
So a query costs the same with a thousand episodes or ten million: O(log N + SCAN) per filter; the bound is that
a text search sees the ``SCAN`` newest episodes holding its rarest term within the dates asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import BadRequest
from gateway.privacy import mask_text
from handoff.agents import Agent
from handoff.history import History, keyed, phone_digits, terms

SCAN = 1000  # ids read from the most selective filter
LIMIT = 50  # results returned
SNIPPET = 60  # characters around the first match


@dataclass(frozen=True, slots=True)
class Query:
    phone: str = ""
    ticket: str = ""
    text: str = ""
    agent: str = ""
    since: float | None = None
    until: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.phone or self.ticket or self.text or self.agent or self.since or self.until)


class Search:
    def __init__(self, history: History) -> None:
        self.history = history
        self.redis = history.redis
        self.keys = history.keys

    def _sets(self, q: Query) -> list[str]:
        keys = self.keys
        sets = []
        if q.phone:
            digits = phone_digits(q.phone)
            if len(digits) < 5:
                raise BadRequest("'phone' needs the full number", zh="请输入完整号码", field="phone")
            sets.append(keys.handoff_history(keyed(self.history.secret, "phone", digits)))
        if q.ticket:
            sets.append(keys.handoff_index("ticket", q.ticket.strip().upper()))
        if q.agent:
            sets.append(keys.handoff_index("agent", q.agent.strip()))
        if q.text:
            words = terms(mask_text(q.text))
            if not words:
                raise BadRequest("'text' needs a word of two letters or a Chinese character", field="text",
                                 zh="搜索内容至少需要两个字母或一个汉字")  # fmt: skip
            sets += [keys.handoff_index("term", keyed(self.history.secret, "term", w)) for w in words[:8]]
        return sets or [keys.handoff_episodes()]

    async def run(self, agent: Agent, q: Query) -> dict[str, Any]:
        """The newest episodes matching every filter that ``agent`` may read (all for supervisors; for an agent
        the chats they took part in and the history of the customers they hold now)."""
        if q.empty:
            raise BadRequest("give at least one of phone, ticket, text, agent, from, to", field="phone",
                             zh="请至少填写一个搜索条件")  # fmt: skip
        low, high = q.since if q.since is not None else "-inf", q.until if q.until is not None else "+inf"
        sets = self._sets(q)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in sets:
                pipe.zcount(key, low, high)
            counts = await pipe.execute()
        if min(counts) == 0:
            return {"results": [], "more": False}
        order = sorted(range(len(sets)), key=counts.__getitem__)
        first, rest = sets[order[0]], [sets[i] for i in order[1:]]
        ids = [i.decode() for i in await self.redis.zrevrangebyscore(first, high, low, start=0, num=SCAN)]
        if rest and ids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in rest:
                    pipe.zmscore(key, ids)
                scores = await pipe.execute()
            ids = [i for n, i in enumerate(ids) if all(s[n] is not None for s in scores)]
        held = None if agent.supervises else await self.history.customers_held(agent)
        phrase = mask_text(q.text).lower().strip()
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), LIMIT):
            for e in await self.history.episodes(ids[start : start + LIMIT]):
                if held is not None and agent.name not in e["agents"].split(",") and e["customer_key"] not in held:
                    continue
                text = e.get("text", "")
                parts = phrase.split()
                if parts and not all(p in text.lower() for p in parts):
                    continue
                at = text.lower().find(parts[0]) if parts else -1
                e["snippet"] = text[max(at - SNIPPET // 2, 0) : at + SNIPPET] if at >= 0 else text[:SNIPPET]
                out.append(e)
            if len(out) >= LIMIT:
                break
        return {"results": out[:LIMIT], "more": len(out) > LIMIT or len(ids) >= SCAN}
