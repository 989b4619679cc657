"""SMS: the channel (keyword commands, opt-outs, receipts, broadcasts) and its inbound webhooks (generic JSON +
HMAC, Twilio). Keywords are matched by ``sms_keywords.py``; texts leave through a provider (``sms_providers.py``).

The sender's number is the customer's identity. Routes live in the ``/channels/sms/`` sub-application:

* ``POST /channels/sms/webhook`` — generic JSON ``{"from", "to", "text", "id", "timestamp"}`` with
  ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (``SMS_WEBHOOK_SECRET``).
* ``POST /channels/sms/status`` — generic delivery receipt ``{"id", "status", "timestamp"}``, signed the
  same way. The signed ``timestamp`` must be within 5 minutes of now, and the same signed request again
  gets the recorded answer unhandled (``authn.Replays``): a captured request cannot be replayed.
* ``POST /channels/sms/twilio`` and ``/channels/sms/twilio/status`` — Twilio's form webhooks,
  checked with ``X-Twilio-Signature`` by the ``twilio`` package's request validator; a ``MessageSid``
  is answered once for a week (Twilio signs no time).
* SMPP (``gateway/channels/smpp.py``, ``smpp_inbox.py``) hands its messages to the same ``SmsChannel.receive``.

Replies never go out inside the request: they are queued in the SMS outbox (``gateway/outbox.py``)
and sent by the configured provider with retries, per-number rate limits and delivery receipts.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from aiohttp import web
from msgspec import Meta
from twilio.request_validator import RequestValidator

from gateway import consent, edge
from gateway import sms_units as sms_sizes
from gateway.channels.authn import LONG_TTL, REPLAY_TTL, Replays, digest, hmac_sha256, same, signed_time
from gateway.channels.base import (
    Adapter,
    Capabilities,
    Command,
    CommandContext,
    Host,
    as_text,
    job_kind,
    queue_parts,
    read_body,
)
from gateway.channels.smpp import SmppProvider
from gateway.channels.smpp_inbox import SmppInbound
from gateway.channels.sms_keywords import Keywords
from gateway.channels.sms_providers import Provider, make_provider
from gateway.edge import decode
from gateway.errors import BadRequest, Forbidden
from gateway.fastredis import FastRedis
from gateway.keys import FAST_REDIS, SETTINGS
from gateway.metrics import Metrics
from gateway.models import InboundMessage, OutboundMessage, Turn
from gateway.outbox import Job, Outbox, job_id, random_id
from gateway.privacy import mask_phone
from gateway.rkeys import SMS_RECEIPT_TTL
from gateway.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "sms"
MAX_BODY = 64 * 1024
BROADCAST_MAX_PARTS = 4
FINAL_STATUSES = {  # provider words → delivered | failed | expired | rejected
    "delivered": "delivered", "delivrd": "delivered", "read": "delivered",
    "undelivered": "failed", "undeliv": "failed", "failed": "failed", "unknown": "failed",
    "expired": "expired", "rejectd": "rejected", "rejected": "rejected", "deleted": "failed",
}  # fmt: skip
SMS_CHANNEL: web.AppKey[SmsChannel] = web.AppKey("sms_channel")
_SID = re.compile(r"[A-Za-z0-9]{2,64}")  # Twilio's ids: SM/MM + 32 hex
T = TypeVar("T")


# ---- numbers ---------------------------------------------------------------------------
def normalise_number(raw: object, country_code: str) -> str:
    """A national number for the home country (``13800138000``), ``+<digits>`` for others."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("'from' is required and must be a phone number")
    text = unicodedata.normalize("NFKC", raw).strip()
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+?[0-9]{3,16}", digits):  # full-width digits were folded by NFKC; no other script's digits
        raise BadRequest("'from' is not a phone number")
    if digits.startswith("+" + country_code):
        return digits[1 + len(country_code) :]
    if digits.startswith("+"):
        return digits
    if country_code == "86" and len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


# ---- the channel ------------------------------------------------------------------------------------
class SmsChannel:
    name = CHANNEL
    # the sender's number is proven by the network; replies are sized for SMS
    capabilities = Capabilities(push=True, buttons=False, proven_identity=True, variant="sms")

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.settings = settings
        self.s = settings.sms
        self.outbox = outbox_of(host, settings)
        self.keywords = Keywords.load(self.s.keywords or None, host.intents)
        self.keys = host.keys
        self.provider: Provider | None = None
        self.inbound: SmppInbound | None = None
        self.commands: dict[str, Command] = {"sms.opt_out": self.cmd_opt_out, "sms.opt_in": self.cmd_opt_in,
                                             "sms.help": self.cmd_help}  # fmt: skip

    @property
    def redis(self) -> aioredis.Redis:
        return self.host.redis

    @property
    def metrics(self) -> Metrics:
        return self.host.metrics

    @property
    def replays(self) -> Replays:
        return Replays(self.redis, self.host.keys, CHANNEL)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await consent.migrate_sms_optout(self.redis, self.keys)  # clear numbers of older versions → consent records
        self.provider = make_provider(self.settings)
        if isinstance(self.provider, SmppProvider):
            self.inbound = SmppInbound(self.redis, self.keys, self)
            await self.inbound.start(self.provider)
        self.outbox.start(self.send_job, self.sent_record)

    async def close(self) -> None:
        await self.outbox.stop(self.settings.server.shutdown_timeout)
        if self.inbound:
            await self.inbound.stop()
        if self.provider:
            await self.provider.close()

    # ---- inbound ---------------------------------------------------------------------------
    async def receive(self, raw_from: object, text: object, message_id: str, received_at: float | None = None,
                      provider: str = "", record: Callable[[Turn], tuple[str, bytes, int]] | None = None,
                      fast: FastRedis | None = None) -> Turn:  # fmt: skip
        """One text from a customer: keyword or NLU, then the replies queued for sending — with ``record(turn)``
        (key, value, TTL: the webhook's recorded answer) set in the same step, on ``fast`` when given."""
        number = normalise_number(raw_from, self.s.country_code)
        text = self.host.check_text(text)
        keyword = self.keywords.match(text)
        metadata: dict[str, Any] = {"provider": provider}
        lang = command = reply_lang = None
        if keyword:
            command = f"/{keyword.intent}" if keyword.intent else f"sms.{keyword.action}"
            metadata["keyword"] = keyword.word
            lang = reply_lang = keyword.lang
        elif not any(ch.isalpha() for ch in text):
            lang = self.s.default_lang  # "1", "?!", a code: no language of its own
        inbound = InboundMessage(CHANNEL, number, number, text, message_id, received_at or time.time(), metadata,
                                 number, lang, command=command, reply_lang=reply_lang)  # fmt: skip
        turn = await self.host.handle(inbound)
        # a duplicate delivery re-queues the same job ids, which the outbox ignores: answered once, even
        # when the first handling crashed between its turn and its queueing
        if record is not None:
            ids = [job_id(CHANNEL, number, message_id, str(i)) for i in range(len(turn.replies))]
            jobs = [self.job(reply, id_) for reply, id_ in zip(turn.replies, ids, strict=True)]
            await self.outbox.put_all(jobs, record(turn), fast)
            return turn
        for i, reply in enumerate(turn.replies):
            await self.queue(reply, job_id(CHANNEL, number, message_id, str(i)))
        return turn

    # ---- outbound --------------------------------------------------------------------------
    def text_of(self, message: OutboundMessage) -> str:
        text = as_text(message)
        if message.sender == "bot" and sms_sizes.segments(text) > self.settings.bots.sms_max_parts:
            text = sms_sizes.fit(text, self.settings.bots.sms_max_parts)
        return text

    def job(self, message: OutboundMessage, id_: str) -> Job:
        """``message`` as the one outbox job ``queue`` makes of it."""
        return Job(to=message.recipient_id, text=self.text_of(message), id=id_ or random_id(), kind=job_kind(message),
                   buttons=[[b.title, b.payload] for b in message.buttons],
                   conversation_id=message.conversation_id)  # fmt: skip

    async def queue(self, message: OutboundMessage, id_: str = "") -> bool:
        return await queue_parts(self.outbox, message, [self.text_of(message)], id_)

    async def push(self, message: OutboundMessage) -> None:
        """A late answer, an agent's message, a queue notice: texted."""
        if message.kind == "typing":
            return
        await self.queue(message)

    def state(self) -> str:
        provider = self.provider
        if provider is not None and provider.name == "smpp":
            return "bound" if provider.link.bound.is_set() else "not bound"  # type: ignore[attr-defined]
        return f"ready ({provider.name if provider else '?'})"

    async def opted_out(self, number: str) -> bool:
        """Marketing and broadcasts to ``number`` withdrawn (TD, the console, the API): gateway/consent.py."""
        policy = self.settings.privacy.marketing_default
        return not await consent.may_market(self.redis, self.keys, number, CHANNEL, policy)

    async def send_job(self, job: Job) -> str | None:
        """The outbox's sender: marketing to an opted-out number is skipped here, at the last moment."""
        assert self.provider is not None
        if job.kind == "marketing" and await self.opted_out(job.to):
            log.info("SMS: a marketing text to %s skipped (opted out)", mask_phone(job.to))
            return None
        provider_id = await self.provider.send(job.to, job.text, job.id)
        self.metrics.sms_parts.inc(max(sms_sizes.segments(job.text), 1))
        return provider_id

    def sent_record(self, job: Job, provider_id: str) -> tuple[str, dict[str, str | int | float], int]:
        """The send's record, matched by its delivery receipts (kept 7 days); the outbox writes it with the
        send's settle."""
        fields = {"job": job.id, "kind": job.kind, "status": "sent", "sent_at": time.time(),
                  "parts": sms_sizes.segments(job.text)}  # fmt: skip
        return self.keys.sms_receipt(provider_id), fields, SMS_RECEIPT_TTL

    async def receipt(self, provider_id: str, status: str, error: str = "") -> bool:
        """A delivery receipt: recorded on the send's record (kept 7 days) and counted when final."""
        key = self.keys.sms_receipt(provider_id)
        if not provider_id or not await self.redis.exists(key):
            return False
        word = status.strip().lower()
        final = FINAL_STATUSES.get(word)
        previous = await self.redis.hget(key, "status")
        if previous is not None and previous.decode() in FINAL_STATUSES.values():
            return True  # settled: a repeated or late receipt changes nothing and is not counted again
        await self.redis.hset(key, mapping={"status": final or word, "updated": time.time(), "error": error[:40]})
        if final:
            self.metrics.sms_receipts.labels(final).inc()
        return True

    # ---- commands (answered instead of the bot, logged like any turn) ------------------------
    async def cmd_opt_out(self, ctx: CommandContext) -> None:
        await consent.record(self.redis, self.keys, ctx.sender, CHANNEL, False, f"sms:{_word(ctx.text)}")
        ctx.event("sms_opt_out")
        ctx.say("channel", "opted_out")

    async def cmd_opt_in(self, ctx: CommandContext) -> None:
        await consent.record(self.redis, self.keys, ctx.sender, CHANNEL, True, f"sms:{_word(ctx.text)}")
        ctx.event("sms_opt_in")
        ctx.say("channel", "opted_in")

    async def cmd_help(self, ctx: CommandContext) -> None:
        ctx.say("channel", "sms_help", items=self.keywords.help_items(ctx.lang))

    # ---- broadcasts ------------------------------------------------------------------------
    async def broadcast(self, numbers: list[str], text: str, lang: str) -> dict[str, int]:
        """Queue a marketing text to each number that has not opted out, with the opt-out footer."""
        footer = self.host.text("channel", "marketing_footer", lang, CHANNEL)
        if footer not in text:
            text = f"{text}{'' if lang == 'zh' else ' '}{footer}"
        counts = {"queued": 0, "opted_out": 0, "duplicates": 0}
        batch = random_id()
        for number in numbers:
            if await self.opted_out(number):
                counts["opted_out"] += 1
                continue
            added = await self.outbox.put(Job(to=number, text=text, id=job_id("broadcast", batch, number),
                                              kind="marketing"))  # fmt: skip
            counts["queued" if added else "duplicates"] += 1
        return counts


def _word(text: str) -> str:
    """The keyword a customer texted (``TD``, ``STOP``), as a consent record's source."""
    word = re.sub(r"[^A-Za-z0-9_-]", "", unicodedata.normalize("NFKC", text).strip().upper())[:20]
    return word or "keyword"


class OutboxSms:
    """``bots.ports.SmsSender`` over the SMS outbox: one-time codes are texted like any reply."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def send(self, phone: str, text: str) -> None:
        await self.outbox.put(Job(to=phone, text=text, id=random_id(), kind="otp"))


def outbox_of(host: Host, settings: Settings) -> Outbox:
    """The SMS outbox (one per deployment): the channel's replies and the bot's one-time codes share it."""
    s = settings.sms
    return host.outbox(CHANNEL, s, s.per_number_interval, lease=max(30.0, s.smpp_submit_timeout * 2))


# ---- HTTP handlers ----------------------------------------------------------------------------------
# The bodies, as declared schemas (``gateway/edge.py``): a field of the wrong type is a 400 naming it.
MessageId = Annotated[str, Meta(min_length=1, max_length=128)] | Annotated[int, Meta(ge=0)]
SignedTime = Annotated[float, Meta(ge=0, lt=1e14)]  # Unix seconds (or milliseconds)


class SmsIn(msgspec.Struct):
    """``POST /channels/sms/webhook``: an incoming text."""

    id: MessageId
    from_: Annotated[str, Meta(max_length=64)] = msgspec.field(name="from")
    text: Annotated[str, Meta(max_length=10_000)]
    timestamp: SignedTime
    to: Annotated[str, Meta(max_length=64)] = ""


class SmsReceipt(msgspec.Struct):
    """``POST /channels/sms/status``: a delivery receipt."""

    id: Annotated[str, Meta(min_length=1, max_length=128)]
    status: Annotated[str, Meta(min_length=1, max_length=32)]
    timestamp: SignedTime
    error: Annotated[str, Meta(max_length=200)] | None = None


async def _body(request: web.Request) -> bytes:
    return await read_body(request, MAX_BODY)


def _check_hmac(request: web.Request, body: bytes, secret: str) -> None:
    sent = request.headers.get("X-Signature", "")
    if not sent:
        raise Forbidden("missing X-Signature header", field="X-Signature")
    if not same(sent.strip().lower(), hmac_sha256(secret, body)):
        raise Forbidden("X-Signature does not match the body", field="X-Signature")


async def _signed(request: web.Request, type_: type[T]) -> tuple[bytes, T]:
    """A generic provider request: signature (403), schema (400), signed timestamp within 5 minutes (403)."""
    body = await _body(request)
    _check_hmac(request, body, request.config_dict[SMS_CHANNEL].s.webhook_secret)
    data = decode(body, type_)
    signed_time(data.timestamp)  # type: ignore[attr-defined]
    return body, data


async def _once(request: web.Request, request_id: bytes, ttl: int, handle: Callable[[], Awaitable[bytes]],
                duplicate: Callable[[bytes], bytes]) -> bytes:  # fmt: skip
    """``handle()``'s answer, recorded; the same signed request again gets ``duplicate(recorded answer)``,
    unhandled — even after the pipeline's dedupe window (recorded after handling: a delivery whose handling
    died is handled again)."""
    replays = request.config_dict[SMS_CHANNEL].replays
    recorded = await replays.recorded(request_id)
    if recorded is not None:
        return duplicate(recorded)
    answer = await handle()
    await replays.record(request_id, answer, ttl)
    return answer


def _fast(request: web.Request) -> FastRedis | None:
    """The lean Redis connection of the message path (``gateway/fastredis.py``; None on a Cluster)."""
    return request.config_dict.get(FAST_REDIS)


async def generic_webhook(request: web.Request) -> web.Response:
    """As ``_once`` does, in fewer round trips: the same signed request again gets the recorded answer, unhandled;
    the answer is recorded in the same script that queues the replies (a delivery whose handling died before
    that is handled again)."""
    channel = request.config_dict[SMS_CHANNEL]
    body, data = await _signed(request, SmsIn)
    key = channel.keys.webhook_seen(CHANNEL, digest(b"in:" + body))  # as authn.Replays names it
    fast = _fast(request)
    recorded = await (fast.execute("GET", key) if fast is not None else channel.redis.get(key))
    if recorded is not None:
        answer = json.dumps({**json.loads(recorded), "duplicate": True}).encode()
        return web.Response(body=answer, content_type="application/json")
    answer = b""

    def record(turn: Turn) -> tuple[str, bytes, int]:
        nonlocal answer
        answer = json.dumps({"status": "accepted", "duplicate": turn.duplicate, "replies": len(turn.replies)}).encode()
        return key, answer, REPLAY_TTL

    await channel.receive(data.from_, data.text, str(data.id), provider="http", record=record, fast=fast)
    return web.Response(body=answer, content_type="application/json")


async def generic_status(request: web.Request) -> web.Response:
    channel = request.config_dict[SMS_CHANNEL]
    body, data = await _signed(request, SmsReceipt)

    async def handle() -> bytes:
        known = await channel.receipt(data.id, data.status, data.error or "")
        return json.dumps({"status": "recorded" if known else "unknown id"}).encode()

    answer = await _once(request, b"receipt:" + body, REPLAY_TTL, handle, lambda recorded: recorded)
    return web.Response(body=answer, content_type="application/json")


async def _twilio_form(request: web.Request) -> dict[str, str]:
    channel = request.config_dict[SMS_CHANNEL]
    settings = request.config_dict[SETTINGS]
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("expected an application/x-www-form-urlencoded body (Twilio's webhook)")
    try:  # UTF-8 whatever charset the Content-Type names (Twilio's is UTF-8): an unknown one cannot break this
        form = dict(urllib.parse.parse_qsl((await _body(request)).decode(), keep_blank_values=True,
                                           max_num_fields=200))  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("form body is not UTF-8 form data") from None
    signature = request.headers.get("X-Twilio-Signature", "")
    url = settings.public_url.rstrip("/") + request.path_qs
    try:
        valid = bool(signature) and RequestValidator(channel.s.twilio_auth_token).validate(url, form, signature)
    except Exception:  # a URL or value the validator cannot encode: not signed by Twilio
        valid = False
    if not valid:
        raise Forbidden("X-Twilio-Signature does not match (check server.public_url is the URL Twilio calls)",
                        field="X-Twilio-Signature")  # fmt: skip
    return form


def _sid(form: dict[str, str], name: str) -> str:
    value = edge.text(form.get(name), name, 64)
    if not _SID.fullmatch(value):
        raise BadRequest(f"'{name}' is not a Twilio id", field=name)
    return value


async def twilio_webhook(request: web.Request) -> web.Response:
    channel = request.config_dict[SMS_CHANNEL]
    form = await _twilio_form(request)
    sid = _sid(form, "MessageSid" if form.get("MessageSid") else "SmsSid")
    sender = edge.text(form.get("From"), "From", 64)
    body = edge.text(form.get("Body"), "Body", 10_000, required=False)

    async def handle() -> bytes:
        await channel.receive(sender, body, sid, provider="twilio")
        return b"handled"

    # Twilio signs no time: a replay is the same MessageSid, answered once for a week (the pipeline's dedupe
    # window may be shorter)
    await _once(request, f"twilio:{sid}".encode(), LONG_TTL, handle, lambda recorded: recorded)
    # replies go through the Messages API (retried, receipts), so the TwiML answer is empty
    return web.Response(text='<?xml version="1.0" encoding="UTF-8"?><Response></Response>', content_type="text/xml")


async def twilio_status(request: web.Request) -> web.Response:
    channel = request.config_dict[SMS_CHANNEL]
    form = await _twilio_form(request)
    sid = _sid(form, "MessageSid")
    status = edge.text(form.get("MessageStatus"), "MessageStatus", 32)
    await channel.receipt(sid, status, edge.text(form.get("ErrorCode"), "ErrorCode", 40, required=False))
    return web.Response(status=204)


def _routes(settings: Settings) -> list[web.RouteDef]:
    s = settings.sms
    routes = []
    if s.webhook_secret:
        routes += [web.post("/webhook", generic_webhook), web.post("/status", generic_status)]
    if s.twilio_auth_token:
        routes += [web.post("/twilio", twilio_webhook), web.post("/twilio/status", twilio_status)]
    return routes


ADAPTER = Adapter(CHANNEL, SMS_CHANNEL, lambda s: s.sms.enabled, SmsChannel, _routes, prefix="/channels/sms/")
