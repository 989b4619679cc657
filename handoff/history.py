"""History of chats with people. A chat's id is its conversation's and a conversation may go to people more than
once, so every chat that ends is kept as an **episode**: the chat's summary (the customer masked), who held and
closed it, how, and the slice of the conversation log it spans (after the previous episode's last entry up to its
own close). Episodes are listed per customer — the same phone number on any channel is the same customer, an
anonymous one is its channel and sender — with their tickets and survey scores, read back as read-only
transcripts, exported (text or JSON, numbers masked) and searched (``handoff.search``).

The customer's key is a keyed hash (HMAC-SHA256 with the server key) of the number's digits, never the number:
nothing new in Redis holds a number in clear. Retention: ``HANDOFF_HISTORY_TTL`` (see ``gateway.rkeys``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from bots.ports import Complaint
from gateway.privacy import mask_phone, mask_text
from gateway.rkeys import HANDOFF_HISTORY_TTL, Keys
from handoff.agents import Agent
from handoff.store import Chat, ChatStore

ComplaintsOf = Callable[[str | None, str, str], Awaitable[list[Complaint]]]  # phone, channel, sender → tickets
TEXT_KEPT = 16_000  # characters of an episode's masked text kept for search and snippets
LISTED = 50  # a customer's newest episodes listed in the panel
SPOKEN = ("customer", "agent")  # the log entries whose text is searched (not the bot's templates: in every chat)
_NON_DIGIT = re.compile(r"\D")
TERMS_KEPT = 400  # distinct terms indexed per episode
_WORD = re.compile(r"[a-z0-9]{2,}")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def terms(text: str) -> list[str]:
    """The index terms of a (masked) text: words of two or more letters/digits, and Chinese two-character runs
    (a lone character alone)."""
    low = text.lower()
    out = dict.fromkeys(_WORD.findall(low))
    for run in _HAN.findall(low):
        out.update(dict.fromkeys([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]))
    return list(out)[:TERMS_KEPT]


def phone_digits(value: str) -> str:
    """A number as its digits alone, without a leading 86/0086 country code (``+86 138-0013-8000`` → 11 digits)."""
    digits = _NON_DIGIT.sub("", value.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    for cc in ("0086", "86"):
        if digits.startswith(cc) and len(digits) == len(cc) + 11:
            return digits[len(cc) :]
    return digits


def keyed(secret: bytes, purpose: str, value: str) -> str:
    """A keyed hash (HMAC-SHA256, 128 bits in hex) of ``value``: an index key that does not reveal it."""
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def held_by(log: list[dict[str, Any]]) -> set[str]:
    """The agents (sign-in names) an episode's log shows holding the chat: assigned, transferred, taken over."""
    out: set[str] = set()
    for e in log:
        if e.get("kind") == "event" and e.get("event") in ("assigned", "transferred", "taken_over"):
            out |= {str(e[k]) for k in ("agent", "from", "to") if e.get(k) and not str(e[k]).startswith("skill:")}
    return out


def customer_label(chat: Chat) -> str:
    """The customer as a chat's summary names them: the number masked, else 访客/Visitor."""
    if chat.phone:
        return mask_phone(chat.phone)
    return "访客" if chat.lang == "zh" else "Visitor"  # the console adds four characters of the chat id


class History:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: ChatStore, complaints: ComplaintsOf,
                 secret: bytes) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.store = store
        self.complaints = complaints  # the customer's complaint tickets, as the bots' port lists them
        self.secret = secret

    # ---- whose ---------------------------------------------------------------------------------------
    def customer_key(self, phone: str | None, channel: str, sender: str) -> str:
        if phone and len(phone_digits(phone)) >= 5:
            return keyed(self.secret, "phone", phone_digits(phone))
        return keyed(self.secret, "sender", f"{channel}:{sender}")

    def key_of(self, chat: Chat) -> str:
        return self.customer_key(chat.phone, chat.channel, chat.sender)

    # ---- writing: a chat ended ---------------------------------------------------------------------------
    async def record(self, chat: Chat, holder: str, closed_by: str, disposition: str, at: float) -> str:
        """Keep the chat that just closed as an episode, indexed for its customer and for search; returns its id."""
        upto = await self.store.log_end(chat.log)
        log = await self.store.log_slice(chat.log, chat.log_from, upto)
        spoken = [mask_text(str(e.get("text") or "")) for e in log if e.get("kind") in SPOKEN and e.get("text")]
        text = "\n".join(spoken)[:TEXT_KEPT]
        episode = f"{chat.id[:100]}.{int(at * 1000)}"
        agents = sorted({holder, closed_by, *held_by(log)} - {""})
        record = {
            "id": episode, "chat": chat.id, "channel": chat.channel, "customer": customer_label(chat),
            "lang": chat.lang, "skills": ",".join(chat.skills), "reason": chat.reason,
            "complaint_type": chat.complaint_type or "", "tier": chat.tier, "ticket": chat.ticket or "",
            "agent": holder, "agents": ",".join(agents), "closed_by": closed_by,
            "disposition": disposition, "enqueued_at": chat.enqueued_at, "assigned_at": chat.assigned_at or "",
            "closed_at": at, "log": chat.log, "log_from": chat.log_from or "", "log_to": upto or "",
            "customer_key": self.key_of(chat), "text": self.keys.seal(text),
        }  # fmt: skip
        record["customer"] = self.keys.seal(str(record["customer"]))
        indexes = [self.keys.handoff_history(record["customer_key"])]
        indexes += [self.keys.handoff_index("agent", a) for a in agents]
        if chat.ticket:
            indexes.append(self.keys.handoff_index("ticket", chat.ticket.upper()))
        indexes += [self.keys.handoff_index("term", keyed(self.secret, "term", t)) for t in terms(text)]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.handoff_episode(episode), mapping=record)  # type: ignore[arg-type]
            pipe.expire(self.keys.handoff_episode(episode), HANDOFF_HISTORY_TTL)
            pipe.zadd(self.keys.handoff_episodes(), {episode: at})
            pipe.zremrangebyscore(self.keys.handoff_episodes(), "-inf", at - HANDOFF_HISTORY_TTL)
            for key in indexes:
                pipe.zadd(key, {episode: at})
                pipe.expire(key, HANDOFF_HISTORY_TTL)
            if upto:
                pipe.hset(self.keys.handoff_chat(chat.id), "log_to", upto)
            await pipe.execute()
        return episode

    # ---- reading ------------------------------------------------------------------------------------------
    async def episodes(self, ids: list[str]) -> list[dict[str, Any]]:
        """The episodes of ``ids`` that still exist, in that order (one round trip)."""
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for episode in ids:
                pipe.hgetall(self.keys.handoff_episode(episode))
            rows = await pipe.execute()
        out = [{k.decode(): v.decode() for k, v in row.items()} for row in rows if row]
        for episode in out:  # the customer's label and words are encrypted at rest
            for field in ("customer", "text"):
                if field in episode:
                    episode[field] = self.keys.unseal(episode[field])
        return out

    async def episode(self, episode: str) -> dict[str, Any] | None:
        found = await self.episodes([episode])
        return found[0] if found else None

    async def of_customer(self, customer: str, limit: int = LISTED) -> list[dict[str, Any]]:
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.handoff_history(customer), 0, limit - 1)]
        return await self.with_scores(await self.episodes(ids))

    async def with_scores(self, episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each episode with its survey score, if the customer gave one after it (a conversation keeps its latest
        survey: it belongs to the newest of its episodes closed before it)."""
        chats = sorted({e["chat"] for e in episodes})
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat_id in chats:
                pipe.hmget(self.keys.handoff_survey(chat_id), "score", "comment", "at")
            rows = await pipe.execute()
        surveys = {c: r for c, r in zip(chats, rows, strict=True) if r[0] is not None}
        for e in episodes:
            e["score"] = None
        for chat_id, (score, comment, at) in surveys.items():
            when = float(json.loads(at or b"0"))
            before = [e for e in episodes if e["chat"] == chat_id and float(e["closed_at"]) <= when]
            if before:
                best = max(before, key=lambda e: float(e["closed_at"]))
                best["score"], best["comment"] = json.loads(score), json.loads(self.keys.unseal(comment) or '""')
        return episodes

    async def tickets_of(self, chat: Chat) -> list[dict[str, Any]]:
        """The customer's complaint tickets (by number on any channel, and by this channel's sender)."""
        return [{"ticket": c.ticket, "complaint_type": c.complaint_type, "status": c.status, "created_at": c.created_at,
                 "summary": mask_text(c.summary)}
                for c in await self.complaints(chat.phone, chat.channel, chat.sender)]  # fmt: skip

    async def transcript_log(self, episode: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.store.log_slice(episode["log"], episode.get("log_from") or None,
                                          episode.get("log_to") or None)  # fmt: skip

    # ---- who may read ---------------------------------------------------------------------------------------
    async def customers_held(self, agent: Agent) -> set[str]:
        """The customers (keys) of the chats ``agent`` holds now."""
        return {self.key_of(c) for c in await self.store.mine(agent.name)}

    async def may_read(self, agent: Agent, episode: dict[str, Any]) -> bool:
        """Supervisors read every episode; an agent those they took part in and the history of the customers of
        the chats they hold now."""
        if agent.supervises or agent.name in episode.get("agents", "").split(","):
            return True
        return episode.get("customer_key") in await self.customers_held(agent)


def view(episode: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """An episode as the console lists it (never the customer key, the log's key or the full text)."""
    return {
        "id": episode["id"], "chat": episode["chat"], "ref": episode["chat"][:8].upper(),
        "channel": episode["channel"], "customer": episode["customer"], "lang": episode["lang"],
        "reason": episode["reason"], "complaint_type": episode.get("complaint_type") or None,
        "ticket": episode.get("ticket") or None, "agent": episode["agent"],
        "agent_name": names.get(episode["agent"], episode["agent"]), "disposition": episode["disposition"],
        "enqueued_at": float(episode["enqueued_at"]), "closed_at": float(episode["closed_at"]),
        "score": episode.get("score"), "comment": episode.get("comment"),
    }  # fmt: skip
