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
import contextlib
import itertools
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bots.replies import Reply, ReplyTable
from gateway.fastredis import FastRedis, FastRedisError
from gateway.metrics import Metrics
from gateway.models import Button, InboundMessage, OutboundMessage, Turn
from gateway.rkeys import DEDUPE_PENDING, Keys
from gateway.settings import PipelineSettings
from nlu import INTENTS, NLU, ParseResult, Ranked, mask_text
from nlu.normalize import has_cjk, validate

log = logging.getLogger(__name__)

# Accept in one round trip: dedupe (SET NX EX), take a ticket, find or start the conversation.
# KEYS: dedupe key, sender hash. ARGV: pending ttl, idle timeout, fresh conversation id.
# "pending" lives only as long as a turn may take: a retry after a crash mid-turn is handled.
# Returns {1, ticket, served, conversation, new, language} or, for a duplicate,
# {0, stored replies, conversation}.
_ACCEPT = """
if not redis.call('SET', KEYS[1], 'pending', 'NX', 'EX', ARGV[1]) then
  return {0, redis.call('GET', KEYS[1]) or '', redis.call('HGET', KEYS[2], 'conv') or ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ticket = redis.call('HINCRBY', KEYS[2], 'ticket', 1)
local state = redis.call('HMGET', KEYS[2], 'served', 'conv', 'last', 'lang')
local conv, new = state[2], 0
if not conv or now - tonumber(state[3] or '0') > tonumber(ARGV[2]) then
  conv, new = ARGV[3], 1
  redis.call('HSET', KEYS[2], 'conv', conv, 'started', tostring(now))
end
redis.call('HSET', KEYS[2], 'last', tostring(now))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]) + 86400)
return {1, ticket, tonumber(state[1] or '0'), conv, new, state[4] or ''}
"""

# Mark a ticket served unless a later one already was (a skipped, slow holder may finish late).
# KEYS: sender hash. ARGV: ticket.
_SERVE = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'served') or '0')
if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], 'served', ARGV[1]) end
return cur
"""

# Finish a turn in one round trip: append the log entries, store the replies for duplicates,
# mark the ticket served. KEYS: dedupe key, sender hash, conversation log (same slot: the
# sender's hash tag). ARGV: stored replies, ticket, dedupe ttl, reply language, log entries (JSON) …
_FINISH = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('HSET', KEYS[2], 'lang', ARGV[4])
local cur = tonumber(redis.call('HGET', KEYS[2], 'served') or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[2], 'served', ARGV[2]) end
for i = 5, #ARGV do redis.call('XADD', KEYS[3], '*', 'e', ARGV[i]) end
return cur
"""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    new: bool
    lang: str | None = None  # the language the bot last answered in


class Pipeline:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, nlu: NLU, settings: PipelineSettings, metrics: Metrics,
        replies: ReplyTable | None = None, fast: FastRedis | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.nlu = nlu
        self.settings = settings
        self.metrics = metrics
        self.replies = replies or ReplyTable()
        self.fast = fast
        self._accept = redis.register_script(_ACCEPT)
        self._serve = redis.register_script(_SERVE)
        self._finish = redis.register_script(_FINISH)
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._pending_ttl = int(settings.order_wait + settings.reply_deadline) + 5

    # ---- public --------------------------------------------------------------------------
    async def handle(self, msg: InboundMessage) -> Turn:
        """Handle one customer message. A turn cut short (its caller cancelled) releases its
        dedupe mark and its place in the sender's order, so the channel's retry is handled."""
        self._active += 1
        self._idle.clear()
        try:
            return await self._handle(msg)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Wait for in-flight turns (graceful shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def validate_text(self, text: object) -> str:
        return validate(text, self.settings.max_message_chars)

    # ---- the steps ---------------------------------------------------------------------------
    async def _handle(self, msg: InboundMessage) -> Turn:
        started = time.perf_counter()
        counters = self.metrics.channel(msg.channel)
        counters.messages.inc()
        sender_key = self.keys.sender(msg.channel, msg.sender_id)
        dedupe_key = self.keys.dedupe(msg.channel, msg.sender_id, msg.message_id)
        accepted = await self._script(
            self._accept,
            [dedupe_key, sender_key],
            [self._pending_ttl, self.settings.conversation_idle_timeout, os.urandom(16).hex()],
        )
        if not accepted[0]:
            counters.duplicates.inc()
            return await self._duplicate(msg, dedupe_key, accepted[1], accepted[2].decode())
        _, ticket, served, conv_id, new, conv_lang = accepted
        conversation = Conversation(conv_id.decode(), bool(new), conv_lang.decode() or None)
        try:
            if served < ticket - 1:
                await self._wait_turn(msg, sender_key, ticket)
            turn, entries = await self._turn(msg, conversation, started, ticket)
        except BaseException:
            await self.redis.delete(dedupe_key)  # not handled: let the provider's retry through
            await self._script(self._serve, [sender_key], [ticket])
            raise
        payload = orjson.dumps([_out_dict(r) for r in turn.replies])
        log_key = self.keys.conversation_log(msg.channel, msg.sender_id, conversation.id)
        if conversation.new:  # about one message in ten; the meta hash has its own slot, so not in the script
            meta = {"channel": msg.channel, "sender": msg.sender_id, "started_at": msg.received_at, "log": log_key}
            await self._command("HSET", self.keys.conversation(conversation.id), *itertools.chain(*meta.items()))
        await self._script(
            self._finish,
            [dedupe_key, sender_key, log_key],
            [payload, ticket, self.settings.dedupe_ttl, turn.lang, *entries],
        )
        counters.reply_seconds.observe(time.perf_counter() - started)
        return turn

    async def _command(self, *args: Any) -> Any:
        return await (self.fast.execute(*args) if self.fast else self.redis.execute_command(*args))

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run a registered script on the lean connection (redis-py when there is none)."""
        if self.fast is None:
            return await script(keys=keys, args=args)
        try:
            return await self.fast.evalsha(script.sha, keys, args)
        except FastRedisError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.redis.script_load(script.script)  # Redis restarted and forgot it
            return await self.fast.evalsha(script.sha, keys, args)

    async def _duplicate(self, msg: InboundMessage, key: str, stored: bytes, conversation: str) -> Turn:
        deadline = time.monotonic() + self.settings.reply_deadline
        while stored == DEDUPE_PENDING.encode() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            stored = await self.redis.get(key) or b""
        replies: tuple[OutboundMessage, ...] = ()
        if stored and stored != DEDUPE_PENDING.encode():
            replies = tuple(_out_from_dict(d, msg) for d in json.loads(stored))
        return Turn(conversation, replies, None, duplicate=True)

    async def _wait_turn(self, msg: InboundMessage, sender_key: str, ticket: int) -> None:
        deadline = time.monotonic() + self.settings.order_wait
        delay = 0.001
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
            if int(await self.redis.hget(sender_key, "served") or 0) >= ticket - 1:
                return
        log.warning("channel %s: an earlier message's turn did not finish in %.1f s; going on", msg.channel,
                    self.settings.order_wait)  # fmt: skip

    async def _turn(
        self, msg: InboundMessage, conversation: Conversation, started: float, ticket: int
    ) -> tuple[Turn, list[bytes]]:
        budget = self.settings.reply_deadline - (time.perf_counter() - started)
        try:
            if self.nlu.is_remote:  # only a call out can make a turn wait; the local steps never await
                async with asyncio.timeout(max(budget, 0.0)):
                    result, lang, reply = await self._understand_and_answer(msg, conversation)
            else:
                result, lang, reply = self._answer(msg, conversation, self.parse(msg.text))
        except TimeoutError:
            self.metrics.channel(msg.channel).deadline_misses.inc()
            lang = _reply_lang(msg.text, conversation.lang or msg.lang)
            reply = self.replies.render("deadline", lang)
            result = None
        replies = (
            OutboundMessage(msg.channel, msg.sender_id, reply.text, conversation.id, reply.buttons),
        )  # fmt: skip
        entries = _log_entries(msg, result, replies, time.perf_counter() - started, ticket)
        turn = Turn(conversation.id, replies, result.intent if result else None, lang, timed_out=result is None)
        return turn, entries

    async def _understand_and_answer(
        self, msg: InboundMessage, conversation: Conversation
    ) -> tuple[ParseResult, str, Reply]:
        return self._answer(msg, conversation, await asyncio.to_thread(self.parse, msg.text))

    def _answer(
        self, msg: InboundMessage, conversation: Conversation, result: ParseResult
    ) -> tuple[ParseResult, str, Reply]:
        self.metrics.intent(result.intent).inc()
        lang = _reply_lang(msg.text, conversation.lang or msg.lang)
        return result, lang, self.replies.respond(result, lang, msg.phone)

    def parse(self, text: str) -> ParseResult:
        """NLU, except that a quick-reply payload ``/intent`` names its intent directly (as in Rasa)."""
        forced = text.strip()
        if forced.startswith("/") and forced[1:] in INTENTS:
            return ParseResult(forced, forced[1:], 1.0, (Ranked(forced[1:], 1.0),), None, None,
                               "zh" if has_cjk(forced) else "en", (), 0)  # fmt: skip
        return self.nlu.parse(text)


def _log_entries(
    msg: InboundMessage, result: ParseResult | None, replies: Sequence[OutboundMessage], seconds: float, ticket: int
) -> list[bytes]:
    """The turn's entries for the conversation log: the customer's message (phone and ID
    numbers masked) with its NLU labels, then each reply with the turn's time."""
    nlu = None
    if result:
        nlu = {"intent": result.intent, "confidence": round(result.confidence, 4),
               "complaint_type": result.complaint_type, "lang": result.lang, "urgency": result.urgency}  # fmt: skip
    customer = {"kind": "customer", "channel": msg.channel, "message_id": msg.message_id, "ticket": ticket,
                "text": mask_text(msg.text, result.entities) if result else msg.text, "nlu": nlu,
                "at": msg.received_at}  # fmt: skip
    entries = [orjson.dumps(customer)]
    for reply in replies:
        entry = {"kind": reply.sender, "text": reply.text, "buttons": [b.title for b in reply.buttons],
                 "seconds": round(seconds, 4), "at": time.time()}  # fmt: skip
        entries.append(orjson.dumps(entry))
    return entries


def _reply_lang(text: str, preferred: str | None) -> str:
    """Chinese text → zh; a short Latin text ("TD", "ok") or a quick-reply payload keeps the
    conversation's language (else the UI's); longer English → en."""
    if has_cjk(text):
        return "zh"
    if preferred in {"zh", "en"} and (len(text) <= 12 or text.startswith("/")):
        return preferred
    return "en"


def _out_dict(out: OutboundMessage) -> dict[str, object]:
    return {"text": out.text, "buttons": [[b.title, b.payload] for b in out.buttons], "from": out.sender}


def _out_from_dict(data: dict[str, object], msg: InboundMessage) -> OutboundMessage:
    buttons = tuple(Button(str(t), str(p)) for t, p in data.get("buttons", []))  # type: ignore[misc, union-attr]
    return OutboundMessage(msg.channel, msg.sender_id, str(data["text"]), "", buttons, str(data.get("from", "bot")))
