"""One message's way: dedupe → per-sender order → conversation → route → NLU → reply → log.

* De-duplication is one ``SET NX EX`` on (channel, provider message id). The first delivery
  stores its replies under that key; a duplicate gets the same replies back (answered once).
* Order: each message takes a ticket (``INCR``) on arrival and waits until the sender's previous
  ticket is served, so two messages from one customer — even on two gateway processes — are
  handled in arrival order. A ticket whose holder died is skipped after ``order_wait``.
* Every turn is appended to the conversation's stream (customer text with numbers masked, the
  NLU labels, the replies, timings).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from bots.replies import Reply, ReplyTable
from gateway.metrics import Metrics
from gateway.models import Button, InboundMessage, OutboundMessage, Turn
from gateway.rkeys import DEDUPE_PENDING, Keys
from gateway.settings import PipelineSettings
from nlu import INTENTS, NLU, NLUInputError, ParseResult, Ranked, mask_text
from nlu.normalize import has_cjk

log = logging.getLogger(__name__)

# Mark a ticket served only if no later ticket already was (a skipped holder may finish late).
_SERVE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return cur
"""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    new: bool


class Pipeline:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, nlu: NLU, settings: PipelineSettings, metrics: Metrics,
        replies: ReplyTable | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.nlu = nlu
        self.settings = settings
        self.metrics = metrics
        self.replies = replies or ReplyTable()
        self._serve = redis.register_script(_SERVE)
        self._inflight: set[asyncio.Task[Turn]] = set()

    # ---- public --------------------------------------------------------------------------
    async def handle(self, msg: InboundMessage) -> Turn:
        """Handle one customer message; shielded so a dropped client does not cut a turn in half."""
        task = asyncio.ensure_future(self._handle(msg))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def drain(self, timeout: float) -> None:
        """Wait for in-flight turns (graceful shutdown)."""
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=timeout)

    def validate_text(self, text: object) -> str:
        from nlu.normalize import validate

        return validate(text, self.settings.max_message_chars)

    # ---- the steps ---------------------------------------------------------------------------
    async def _handle(self, msg: InboundMessage) -> Turn:
        started = time.perf_counter()
        self.metrics.messages.labels(msg.channel).inc()
        dedupe_key = self.keys.dedupe(msg.channel, msg.message_id)
        first = await self.redis.set(dedupe_key, DEDUPE_PENDING, nx=True, ex=self.settings.dedupe_ttl)
        if not first:
            self.metrics.duplicates.labels(msg.channel).inc()
            return await self._duplicate(msg, dedupe_key)
        try:
            ticket = await self.redis.incr(self.keys.ticket(msg.channel, msg.sender_id))
            await self._wait_turn(msg, ticket)
            try:
                turn = await self._turn(msg, started, ticket)
            finally:
                await self._serve(keys=[self.keys.served(msg.channel, msg.sender_id)], args=[ticket])
        except BaseException:
            await self.redis.delete(dedupe_key)  # not handled: let the provider's retry through
            raise
        payload = json.dumps([_out_dict(r) for r in turn.replies], ensure_ascii=False)
        await self.redis.set(dedupe_key, payload, xx=True, keepttl=True)
        self.metrics.reply_seconds.labels(msg.channel).observe(time.perf_counter() - started)
        return turn

    async def _duplicate(self, msg: InboundMessage, key: str) -> Turn:
        deadline = time.monotonic() + self.settings.reply_deadline
        stored = await self.redis.get(key)
        while stored == DEDUPE_PENDING.encode() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            stored = await self.redis.get(key)
        replies: tuple[OutboundMessage, ...] = ()
        if stored and stored != DEDUPE_PENDING.encode():
            replies = tuple(_out_from_dict(d, msg) for d in json.loads(stored))
        conversation = await self.redis.get(self.keys.active_conversation(msg.channel, msg.sender_id))
        return Turn((conversation or b"").decode(), replies, None, duplicate=True)

    async def _wait_turn(self, msg: InboundMessage, ticket: int) -> None:
        if ticket == 1:
            return
        served_key = self.keys.served(msg.channel, msg.sender_id)
        deadline = time.monotonic() + self.settings.order_wait
        delay = 0.001
        while time.monotonic() < deadline:
            served = int(await self.redis.get(served_key) or 0)
            if served >= ticket - 1:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
        log.warning("channel %s: an earlier message's turn did not finish in %.1f s; going on", msg.channel,
                    self.settings.order_wait)  # fmt: skip

    async def _turn(self, msg: InboundMessage, started: float, ticket: int) -> Turn:
        conversation = await self._conversation(msg)
        budget = self.settings.reply_deadline - (time.perf_counter() - started)
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                result, lang, reply = await self._understand_and_answer(msg)
        except TimeoutError:
            self.metrics.deadline_misses.labels(msg.channel).inc()
            lang = _reply_lang(msg.text, msg.lang)
            reply = self.replies.render("deadline", lang)
            result = None
        replies = (
            OutboundMessage(msg.channel, msg.sender_id, reply.text, conversation.id, reply.buttons),
        )  # fmt: skip
        await self._log_turn(msg, conversation, result, replies, time.perf_counter() - started, ticket)
        return Turn(conversation.id, replies, result.intent if result else None, timed_out=result is None)

    async def _understand_and_answer(self, msg: InboundMessage) -> tuple[ParseResult, str, Reply]:
        result = await asyncio.to_thread(self.parse, msg.text) if self.nlu.is_remote else self.parse(msg.text)
        self.metrics.intents.labels(result.intent).inc()
        lang = _reply_lang(msg.text, msg.lang)
        return result, lang, self.replies.respond(result, lang, msg.phone)

    def parse(self, text: str) -> ParseResult:
        """NLU, except that a quick-reply payload ``/intent`` names its intent directly (as in Rasa)."""
        forced = text.strip()
        if forced.startswith("/") and forced[1:] in INTENTS:
            return ParseResult(forced, forced[1:], 1.0, (Ranked(forced[1:], 1.0),), None, None,
                               "zh" if has_cjk(forced) else "en", (), 0)  # fmt: skip
        return self.nlu.parse(text)

    async def _conversation(self, msg: InboundMessage) -> Conversation:
        key = self.keys.active_conversation(msg.channel, msg.sender_id)
        ttl = self.settings.conversation_idle_timeout
        fresh = uuid.uuid4().hex
        while True:  # SET NX, else refresh the idle timer and read (GETEX); SET NX GET needs Redis 7
            if await self.redis.set(key, fresh, nx=True, ex=ttl):
                now = time.time()
                await self.redis.hset(
                    self.keys.conversation(fresh),
                    mapping={"channel": msg.channel, "sender": msg.sender_id, "started_at": now, "last_at": now},
                )
                return Conversation(fresh, True)
            existing = await self.redis.getex(key, ex=ttl)
            if existing is not None:
                break
        conversation_id = existing.decode()
        await self.redis.hset(self.keys.conversation(conversation_id), "last_at", time.time())
        return Conversation(conversation_id, False)

    async def _log_turn(
        self, msg: InboundMessage, conv: Conversation, result: ParseResult | None,
        replies: Sequence[OutboundMessage], seconds: float, ticket: int,
    ) -> None:  # fmt: skip
        stream = self.keys.conversation_log(conv.id)
        customer_text = mask_text(msg.text, result.entities) if result else msg.text
        nlu_fields = json.dumps(
            {"intent": result.intent, "confidence": round(result.confidence, 4), "complaint_type": result.complaint_type,
             "lang": result.lang, "urgency": result.urgency} if result else None, ensure_ascii=False,
        )  # fmt: skip
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream, {"kind": "customer", "channel": msg.channel, "message_id": msg.message_id,
                               "ticket": ticket, "text": customer_text, "nlu": nlu_fields,
                               "received_at": msg.received_at})
            for reply in replies:
                pipe.xadd(stream, {"kind": reply.sender, "text": reply.text, "seconds": round(seconds, 4),
                                   "buttons": json.dumps([b.title for b in reply.buttons], ensure_ascii=False)})
            await pipe.execute()


def _reply_lang(text: str, preferred: str | None) -> str:
    if has_cjk(text):
        return "zh"
    if preferred in {"zh", "en"} and (len(text) <= 12 or text.startswith("/")):
        return preferred  # "TD", "ok", a quick-reply payload: keep the customer's chosen language
    return "en"


def _out_dict(out: OutboundMessage) -> dict[str, object]:
    return {"text": out.text, "buttons": [[b.title, b.payload] for b in out.buttons], "from": out.sender}


def _out_from_dict(data: dict[str, object], msg: InboundMessage) -> OutboundMessage:
    buttons = tuple(Button(str(t), str(p)) for t, p in data.get("buttons", []))  # type: ignore[misc, union-attr]
    return OutboundMessage(msg.channel, msg.sender_id, str(data["text"]), "", buttons, str(data.get("from", "bot")))


__all__ = ["Conversation", "NLUInputError", "Pipeline"]
