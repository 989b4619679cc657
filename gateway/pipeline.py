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
import dataclasses
import hashlib
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bots.context import Ctx, Reply, forced_result
from bots.engine import Bot, reply_lang
from bots.state import BotState, FlowId
from gateway import redisconn, security, tasks, turnlog
from gateway import turn_scripts as scripts
from gateway.errors import TooManyRequests, Unavailable
from gateway.fastredis import FastRedis, FastRedisError, Lean
from gateway.metrics import Metrics
from gateway.models import InboundMessage, OutboundMessage, Turn
from gateway.rkeys import Keys
from gateway.settings import PipelineSettings
from handoff.reports.recorder import TurnStats
from nlu import NLU, ParseResult, Ranked
from nlu.normalize import has_cjk, validate

log = logging.getLogger(__name__)
HEARTBEAT_TTL = 3  # seconds: a process silent this long is dead, and its turns are taken over


class Busy(Unavailable):
    """A duplicate of a message whose first delivery is still being handled (503, Retry-After)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    new: bool
    lang: str | None = None  # the language the bot last answered in


Pusher = Callable[[OutboundMessage], Awaitable[object]]


class People(Protocol):
    """The human side, as the pipeline sees it (``handoff.service.HandoffService``)."""

    async def customer_message(self, chat_id: str, text: str, at: float) -> None: ...

    async def customer_typing(self, chat_id: str) -> None: ...

    async def system_note(self, chat_id: str, author: str, text: str) -> None: ...


class Pipeline:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, nlu: NLU, settings: PipelineSettings, metrics: Metrics,
        bot: Bot, fast: FastRedis | None = None, late_answer_timeout: float = 30.0, handoff: People | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.nlu = nlu
        self.settings = settings
        self.metrics = metrics
        self.bot = bot
        self.fast = fast
        self.lean = Lean(redis, fast)
        self.late_answer_timeout = late_answer_timeout
        self.pushers: dict[str, Pusher] = {}  # channel → deliver a message outside a reply (late answers)
        self.handoff = handoff  # the human side, when it runs
        # a channel's own commands (``InboundMessage.command``), answered instead of the bot
        # but deduplicated, ordered and logged like any turn
        self.commands: dict[str, Callable[[Ctx], Awaitable[None]]] = {}
        self._accept = redis.register_script(scripts.ACCEPT)
        self._serve = redis.register_script(scripts.SERVE)
        self._finish = redis.register_script(scripts.FINISH)
        self._late_script = redis.register_script(scripts.LATE)
        self._take_over = redis.register_script(scripts.TAKE_OVER)
        # this process's turns mark their dedupe keys with its instance id; a heartbeat key says it is alive
        self.instance = os.urandom(8).hex()
        self._heartbeat: asyncio.Task[None] | None = None
        self._late: set[asyncio.Task[None]] = set()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._pending_ttl = int(settings.order_wait + settings.reply_deadline) + 5
        self.observe: Callable[[ParseResult], None] | None = None  # the NLU learning loop (gateway/nlu_review.py)
        self.stats = TurnStats(redis, keys)  # reports: conversations, automated answers within 5 s (added each second)

    # ---- public --------------------------------------------------------------------------
    async def handle(self, msg: InboundMessage) -> Turn:
        """Handle one customer message. A turn cut short (its caller cancelled) releases its
        dedupe mark and its place in the sender's order, so the channel's retry is handled; a turn
        whose process died is taken over by the retry. A duplicate gets the recorded replies —
        never an empty answer: while the first delivery is still being handled past the deadline, it
        gets ``Busy`` (503, retry shortly)."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        self._active += 1
        self._idle.clear()
        try:
            for _ in range(3):
                turn = await self._handle(msg)
                if turn is not None:
                    return turn
            raise Busy("this message is being handled; retry shortly", zh="消息正在处理，请稍后重试",
                       headers={"Retry-After": "1"})  # fmt: skip
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Wait for in-flight turns and late answers (graceful shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._late:
            await asyncio.wait(self._late, timeout=timeout)
        await self.stats.close()  # the last second of turn counts (reports)
        await tasks.stop(self._heartbeat)

    async def _beat(self) -> None:
        """Say every second that this process lives (its turns' marks are not to be taken over)."""
        key = self.keys.instance(self.instance)
        while True:
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self.redis.set(key, "1", ex=HEARTBEAT_TTL)
            await asyncio.sleep(1.0)

    async def _alive(self, instance: str) -> bool:
        if instance == self.instance:
            return True
        return bool(await self.redis.exists(self.keys.instance(instance)))

    def validate_text(self, text: object) -> str:
        return validate(text, self.settings.max_message_chars)

    # ---- the steps ---------------------------------------------------------------------------
    async def _handle(self, msg: InboundMessage) -> Turn | None:
        """The turn; None when a retry took over a dead turn's mark (or found it released): handle again."""
        started = time.perf_counter()
        counters = self.metrics.channel(msg.channel)
        counters.messages.inc()
        sender_key = self.keys.sender(msg.channel, msg.sender_id)
        dedupe_key = self.keys.dedupe(msg.channel, msg.sender_id, msg.message_id)
        accepted = await self._script(
            self._accept,
            [dedupe_key, sender_key, self.keys.binding(msg.channel, msg.sender_id),
             self.keys.late(msg.channel, msg.sender_id)],
            [self._pending_ttl, self.settings.conversation_idle_timeout, os.urandom(16).hex(), self.instance,
             self.settings.sender_rate, self.settings.sender_burst],
        )  # fmt: skip
        if accepted[0] == 2:  # over the sender's rate: not accepted (nothing stored); the client may send it again
            counters.throttled.inc()
            wait = max(1, math.ceil(float(accepted[1])))
            raise TooManyRequests(
                f"too many messages from this sender: at most {self.settings.sender_burst} at once, then one every "
                f"{1 / self.settings.sender_rate:g} s; send it again in {wait} s",
                zh=f"消息发送过于频繁，请 {wait} 秒后再发送", headers={"Retry-After": str(wait)},
            )  # fmt: skip
        if not accepted[0]:
            turn = await self._duplicate(msg, dedupe_key, sender_key, accepted[1], accepted[2].decode())
            if turn is not None:
                counters.duplicates.inc()
            return turn
        _, ticket, served, conv_id, new, conv_lang, raw_state, bound, late, human = accepted
        conversation = Conversation(conv_id.decode(), bool(new), conv_lang.decode() or None)
        state = BotState.load(self.keys.unseal(raw_state) if raw_state else raw_state, conversation.id)
        try:
            if served < ticket - 1:
                await self._wait_turn(msg, sender_key, ticket)
            if human and self.handoff is not None:  # a person holds the conversation: no bot, straight to them
                turn, entries, new_state = await self._to_human(msg, conversation, human.decode(), ticket)
            else:
                turn, entries, new_state = await self._turn(msg, conversation, state,
                                                            self.keys.unseal(bound) or None, started,
                                                            ticket)  # fmt: skip
            if late:
                earlier = tuple(
                    turnlog.out_from_dict(d, msg, conversation.id)
                    for raw in late
                    for d in orjson.loads(self.keys.unseal(raw))
                )
                turn = dataclasses.replace(turn, replies=earlier + turn.replies)
            # a turn that issued a binding session keeps no replies for duplicates: whoever repeats its
            # (client-chosen) sender and message id must not receive the account data it answered with
            payload = self.keys.seal_bytes(
                orjson.dumps([] if turn.session else [turnlog.out_dict(r) for r in turn.replies])
            )
            log_key = self.keys.conversation_log(msg.channel, msg.sender_id, conversation.id)
            if conversation.new:  # about one message in ten; the meta hash has its own slot, so not in the script
                meta = {"channel": msg.channel, "sender": self.keys.seal(msg.sender_id),
                        "started_at": msg.received_at,
                        "log": log_key}  # fmt: skip
                await self._command("HSET", self.keys.conversation(conversation.id), *itertools.chain(*meta.items()))
            state_json = self._stored_state(new_state) if new_state else b""
            await self._script(  # durable: on a cluster, answered once the replicas have it (redis.wait_replicas)
                self._finish,
                [dedupe_key, sender_key, log_key],
                [payload, ticket, self.settings.dedupe_ttl, turn.lang, state_json, new_state.rev if new_state else 0,
                 *entries], durable=True,
            )  # fmt: skip
            self.stats.record(msg.channel, msg.received_at, time.perf_counter() - started, conversation.new, not human,
                              turn.timed_out)  # fmt: skip
        except BaseException:
            await self._release(msg, dedupe_key, sender_key, ticket, late)
            raise
        counters.reply_seconds.observe(time.perf_counter() - started)
        return turn

    async def _release(self, msg: InboundMessage, dedupe_key: str, sender_key: str, ticket: int,
                       late: list[bytes]) -> None:  # fmt: skip
        """A turn that did not finish lets go of its message (unless the finish did land and only its answer was
        lost): the channel's retry is handled, later messages need not wait, late answers are kept."""
        mark = f"pending:{self.instance}:{ticket}"
        try:
            await self._take_over(keys=[dedupe_key, sender_key], args=[mark, ticket])
            if late:
                await self.redis.lpush(self.keys.late(msg.channel, msg.sender_id), *reversed(late))
        except (aioredis.RedisError, OSError, FastRedisError) as exc:  # Redis is away: the mark expires by itself
            log.warning("channel %s: could not release an unfinished turn (%s)", msg.channel, type(exc).__name__)

    def _stored_state(self, state: BotState) -> bytes:
        """The bot's state as stored: encrypted when a flow holds data (a number being bound, a pending order);
        the bare bookkeeping of most turns (conversation id, revision, counters) names no one and stays clear."""
        raw = state.to_json()
        return self.keys.seal_bytes(raw) if state.slot is not None or state.pending is not None else raw

    async def _command(self, *args: Any) -> Any:
        return await (self.fast.execute(*args) if self.fast else self.redis.execute_command(*args))

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any], durable: bool = False) -> Any:
        """Run a registered script on the lean connection (redis-py when there is none; ``durable``: on a cluster,
        with ``WAIT`` for its replicas, ``redisconn.durable_evalsha``)."""
        if durable and self.fast is None:
            return await redisconn.durable_evalsha(self.redis, script, keys, args)
        return await self.lean.script(script, keys, args)

    async def _duplicate(self, msg: InboundMessage, key: str, sender_key: str, stored: bytes,
                         conversation: str) -> Turn | None:  # fmt: skip
        """The first delivery's recorded replies. While it is still being handled, wait for it (up to the
        reply deadline; then ``Busy``); if its process died, take its turn over (None: handle it again)."""
        deadline = time.monotonic() + self.settings.reply_deadline
        while stored.startswith(b"pending"):
            _, _, mark = stored.decode().partition(":")
            instance, _, ticket = mark.partition(":")
            if ticket and not await self._alive(instance):
                await self._take_over(keys=[key, sender_key], args=[stored, ticket])
                log.warning("channel %s: a message whose turn died with its process is handled again", msg.channel)
                return None
            if time.monotonic() >= deadline:
                raise Busy("this message is still being handled; retry shortly", zh="消息正在处理，请稍后重试",
                           headers={"Retry-After": "1"})  # fmt: skip
            await asyncio.sleep(0.02)
            stored = await self.redis.get(key) or b""
        if not stored:  # the first handling was cut short and let go of the message: handle it now
            return None
        replies = tuple(turnlog.out_from_dict(d, msg, conversation)
                        for d in orjson.loads(self.keys.unseal(stored)))  # fmt: skip
        return Turn(conversation, replies, None, duplicate=True)

    async def _wait_turn(self, msg: InboundMessage, sender_key: str, ticket: int) -> None:
        """Wait for the sender's earlier tickets; one whose process died (``o<ticket>`` names the process
        that holds it) is skipped at once instead of after ``order_wait``."""
        deadline = time.monotonic() + self.settings.order_wait
        delay = 0.001
        checked = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
            served = int(await self.redis.hget(sender_key, "served") or 0)
            if served >= ticket - 1:
                return
            if time.monotonic() - checked > 0.5:
                checked = time.monotonic()
                holder = await self.redis.hget(sender_key, f"o{served + 1}")
                if holder and not await self._alive(holder.decode()):
                    await self._script(self._serve, [sender_key], [served + 1])
        log.warning("channel %s: an earlier message's turn did not finish in %.1f s; going on", msg.channel,
                    self.settings.order_wait)  # fmt: skip

    async def _turn(
        self, msg: InboundMessage, conversation: Conversation, state: BotState, bound: str | None, started: float,
        ticket: int,
    ) -> tuple[Turn, list[bytes], BotState | None]:  # fmt: skip
        """The bot's answer within the reply deadline; past it, "checking…" now and the answer
        later (pushed, or in front of the next reply on channels that cannot push)."""
        rev = state.rev
        # REST: a turn that may complete a binding gets its session secret up front, so that the client
        # receives it even when the answer comes after the deadline (and that answer waits in the session)
        session = None
        if msg.issue_session and state.slot is not None and state.slot.flow == FlowId.BINDING:
            session = security.new_session()
        task = asyncio.get_running_loop().create_task(self._answer(msg, conversation, state, bound, session))
        await _at_most(task, self.settings.reply_deadline - (time.perf_counter() - started))
        if task.done():
            ctx = task.result()
            replies = self._outbound(msg, conversation, ctx.replies)
            entries = turnlog.log_entries(
                msg, ctx.result, replies, ctx.events, time.perf_counter() - started, ticket, seal=self.keys.seal_bytes
            )
            ctx.state.rev = rev + 1
            turn = Turn(conversation.id, replies, ctx.result.intent, ctx.lang, session=ctx.issued_session)
            return turn, entries, ctx.state
        self.metrics.channel(msg.channel).deadline_misses.inc()
        lang = reply_lang(msg.text, _preferred_lang(msg, conversation))
        text = self.bot.svc.renderer.text("common", "checking", lang, msg.channel)
        replies = (OutboundMessage(msg.channel, msg.sender_id, text, conversation.id),)
        entries = turnlog.log_entries(msg, None, replies, [{"kind": "event", "event": "deadline"}],
                                      time.perf_counter() - started, ticket, seal=self.keys.seal_bytes)  # fmt: skip
        late = asyncio.ensure_future(self._deliver_late(task, msg, conversation, rev, lang, started))
        self._late.add(late)
        late.add_done_callback(self._late.discard)
        return Turn(conversation.id, replies, None, lang, timed_out=True, session=session), entries, None

    async def _answer(self, msg: InboundMessage, conversation: Conversation, state: BotState,
                      bound: str | None, session: str | None = None) -> Ctx:  # fmt: skip
        lang = reply_lang(msg.text, _preferred_lang(msg, conversation))
        command = msg.command
        handler = self.commands.get(command) if command else None
        if handler is not None:  # a channel's own command (an SMS opt-out, Telegram's /start)
            result = ParseResult(msg.text, command, 1.0, (Ranked(command, 1.0),), None, None, lang, (), 0)
        elif command:  # a channel's keyword naming an intent: ``/query_balance``
            result = self.parse(command)
        elif self.nlu.is_remote:  # a call out: keep the loop free
            result = await asyncio.to_thread(self.parse, msg.text)
        else:
            result = self.parse(msg.text)
        if self.observe is not None and handler is None and not command:  # no I/O: unsure ones are kept for review
            self.observe(result)
        self.metrics.intent(result.intent).inc()
        turn_id = hashlib.sha1(f"{msg.channel}|{msg.sender_id}|{msg.message_id}".encode()).hexdigest()[:16]
        new_session = None
        if session:  # the sender is the client's own string (REST): a binding goes to this secret session

            def new_session() -> tuple[str, str]:
                return session, security.session_sender(msg.sender_id, session)

        ctx = Ctx(self.bot.svc, channel=msg.channel, sender=msg.sender_id, conversation_id=conversation.id,
                  turn_id=turn_id, text=msg.text, result=result, state=state, lang=lang, proven_phone=msg.phone,
                  bound_phone=bound, new_session=new_session, public=msg.public)  # fmt: skip
        await (handler(ctx) if handler is not None else self.bot.respond(ctx))
        if not ctx.replies:
            ctx.say("common", "reask")
        return ctx

    async def _deliver_late(
        self, task: asyncio.Future[Ctx], msg: InboundMessage, conversation: Conversation, rev: int, lang: str,
        started: float,
    ) -> None:  # fmt: skip
        state: BotState | None = None
        try:
            async with asyncio.timeout(self.late_answer_timeout):
                ctx = await task
            replies = self._outbound(msg, conversation, ctx.replies)
            result, events, state = ctx.result, ctx.events, ctx.state
        except Exception as exc:  # the back end failed or never answered: say so, offer a human
            task.cancel()
            log.warning("channel %s: a late answer failed: %s", msg.channel, type(exc).__name__)
            renderer = self.bot.svc.renderer
            text = renderer.text("common", "late_failed", lang, msg.channel)
            replies = (OutboundMessage(msg.channel, msg.sender_id, text, conversation.id,
                                       (renderer.button("request_human", lang),)),)  # fmt: skip
            result, events = None, [{"kind": "event", "event": "late_failed"}]
        seconds = time.perf_counter() - started
        self.metrics.channel(msg.channel).late_answer_seconds.observe(seconds)
        entries = turnlog.log_entries(msg, result, replies, events, seconds, 0, seal=self.keys.seal_bytes)[1:]
        pusher = self.pushers.get(msg.channel)
        keep = b"" if pusher else self.keys.seal_bytes(orjson.dumps([turnlog.out_dict(r) for r in replies]))
        late_key = self.keys.late(msg.channel, msg.sender_id)
        if not pusher and state is not None and ctx.issued_session:  # bound late: the answer waits in the session
            late_key = self.keys.late(msg.channel, security.session_sender(msg.sender_id, ctx.issued_session))
            # (the same hash tag as the sender's keys: one Cluster slot)
        if state is not None:
            state.rev = rev + 1
        expected = rev if state is not None else -1  # a failed answer leaves the state as it was
        await self._late_script(
            keys=[self.keys.sender(msg.channel, msg.sender_id),
                  self.keys.conversation_log(msg.channel, msg.sender_id, conversation.id), late_key],
            args=[expected, self._stored_state(state) if state else b"{}", rev + 1, keep,
                  *entries],
        )  # fmt: skip
        if pusher:
            for reply in replies:
                await pusher(reply)

    async def _to_human(self, msg: InboundMessage, conversation: Conversation, chat_id: str,
                        ticket: int) -> tuple[Turn, list[bytes], None]:  # fmt: skip
        await self.handoff.customer_message(chat_id, msg.display or msg.text, msg.received_at)  # what they clicked
        entries = turnlog.log_entries(msg, None, (), [], 0.0, ticket, seal=self.keys.seal_bytes)
        return Turn(conversation.id, (), None, reply_lang(msg.text, _preferred_lang(msg, conversation))), entries, None

    async def deliver(self, message: OutboundMessage) -> None:
        """A message outside a reply (an agent's, a queue notice): pushed where the channel can push,
        else kept for the sender's next reply."""
        pusher = self.pushers.get(message.channel)
        if pusher:
            await pusher(message)
        elif message.kind != "typing":
            key = self.keys.late(message.channel, message.recipient_id)
            await self.redis.rpush(key, self.keys.seal_bytes(orjson.dumps([turnlog.out_dict(message)])))
            await self.redis.expire(key, 86400)

    async def set_slot(self, channel: str, sender: str, conversation_id: str, slot: Any) -> None:
        """Give the conversation back to the bot, waiting for ``slot`` (e.g. the survey)."""
        key = self.keys.sender(channel, sender)
        raw, rev = await self.redis.hmget(key, "bot", "botrev")
        state = BotState.load(self.keys.unseal(raw) if raw else raw, conversation_id)
        state.slot, state.pending, state.options = slot, None, []
        state.rev = int(rev or 0) + 1
        await self.redis.hset(key, mapping={"bot": self._stored_state(state),
                                            "botrev": state.rev})  # fmt: skip

    async def customer_typing(self, channel: str, sender: str) -> None:
        if self.handoff is None:
            return
        chat_id = await self.redis.hget(self.keys.sender(channel, sender), "human")
        if chat_id:
            await self.handoff.customer_typing(chat_id.decode())

    async def note(self, channel: str, sender: str, text: str) -> bool:
        """A note on the chat a person holds with this sender (False when none)."""
        if self.handoff is None:
            return False
        chat_id = await self.redis.hget(self.keys.sender(channel, sender), "human")
        if not chat_id:
            return False
        await self.handoff.system_note(chat_id.decode(), channel, text)
        return True

    def render(self, group: str, key: str, lang: str, channel: str, **values: Any) -> str:
        """A template text for a channel (its footers and notices)."""
        return self.bot.svc.renderer.text(group, key, lang, channel, **values)

    def _outbound(self, msg: InboundMessage, conversation: Conversation,
                  replies: Sequence[Reply]) -> tuple[OutboundMessage, ...]:  # fmt: skip
        return tuple(OutboundMessage(msg.channel, msg.sender_id, r.text, conversation.id, r.buttons, private=r.private)
                     for r in replies)  # fmt: skip

    def parse(self, text: str) -> ParseResult:
        """NLU, except that a quick-reply payload ``/intent`` or ``/intent{"entity": value}`` names
        its intent directly (as in Rasa)."""
        stripped = text.strip()
        if stripped.startswith("/"):
            forced = forced_result(stripped, "zh" if has_cjk(stripped) else "en")
            if forced:
                return forced
        return self.nlu.parse(text)


async def _at_most(task: asyncio.Future[Any], seconds: float) -> None:
    """Wait until ``task`` is done or ``seconds`` have passed, whichever comes first; the task goes on either way
    (``asyncio.wait`` with one task and a timeout, at half its cost: one per turn)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(max(seconds, 0.0), wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)


def _preferred_lang(msg: InboundMessage, conversation: Conversation) -> str | None:
    """A channel command's own language (an SMS keyword: "HELP" is English, "YE" Chinese) comes first,
    then the language the conversation was answered in, then the channel's UI language."""
    return msg.reply_lang or conversation.lang or msg.lang
