"""Telegram: python-telegram-bot's ``Application`` without its Updater, inside the aiohttp app.

* ``POST /channels/telegram/webhook`` (the channel's sub-application) takes Telegram's updates.
  ``X-Telegram-Bot-Api-Secret-Token`` is compared in constant time (403 otherwise). The parts of an
  update our handlers read are checked against declared types (``TgUpdate``) before PTB parses it;
  an update we cannot use (malformed, wrong types, a handler failing on it) is logged and answered
  200, so Telegram does not deliver it forever. Each update is dispatched by PTB's handlers *before*
  the response, so a 200 means the message was handled and its replies queued; a Redis outage
  answers 503 and Telegram delivers the update again. The ``update_id`` is the message id the
  pipeline de-duplicates on: a redelivery is answered once.
* Commands ``/start`` and ``/help`` (what the bot can do, with buttons), ``/human``, ``/bind``,
  ``/unbind``; any other text goes through the NLU. Quick replies are inline keyboards;
  callback queries are answered. Photos, stickers, voice, locations… get a polite "text only".
  Group chats are ignored: customer service happens in private chats.
* Replies, late answers and agents' messages go through the Telegram outbox: one message a
  second per chat, 30 a second overall (all processes), 429 ``retry_after`` honoured, outages
  retried with back-off; a user who blocked the bot is given up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
import redis.asyncio as aioredis
from aiohttp import web
from msgspec import Meta
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest as TgBadRequest
from telegram.error import Forbidden as TgForbidden
from telegram.error import RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from gateway import tasks
from gateway.channels.authn import same
from gateway.channels.base import NO_COMMANDS, Adapter, Capabilities, Host, queue_parts, read_body
from gateway.channels.telegram_request import AiohttpRequest
from gateway.edge import decode
from gateway.errors import BadRequest, Forbidden, GatewayError, Unavailable, is_outage
from gateway.models import InboundMessage, OutboundMessage
from gateway.outbox import Job, Outbox, PermanentFailure, RetryLater, job_id
from gateway.rkeys import TELEGRAM_CALLBACK_TTL
from gateway.settings import Settings

# PTB 22 reads durations (RetryAfter.retry_after…) as timedelta only with this set; without it, each read warns
os.environ.setdefault("PTB_TIMEDELTA", "1")
log = logging.getLogger(__name__)
# httpx (PTB's default HTTP client, not used for our requests) logs every request URL at INFO — and the Bot API's
# URLs carry the bot token
logging.getLogger("httpx").setLevel(logging.WARNING)
CHANNEL = "telegram"
MAX_BODY = 256 * 1024
MAX_TEXT = 4096
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts
MEDIA = ("photo", "voice", "video", "sticker", "location", "document", "contact", "audio", "video_note",
         "animation", "venue", "poll", "dice")  # fmt: skip
TELEGRAM: web.AppKey[TelegramChannel] = web.AppKey("telegram_channel")
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def retry_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def ui_lang(code: str | None) -> str | None:
    if not code:
        return None
    code = code.lower()
    return "zh" if code.startswith("zh") else "en" if code.startswith("en") else None


class TelegramChannel:
    name = CHANNEL

    capabilities = Capabilities(push=True, buttons=True, max_chars=MAX_TEXT)
    commands = NO_COMMANDS

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.settings = settings
        self.t = settings.telegram
        self.outbox: Outbox = host.outbox(CHANNEL, self.t, self.t.per_chat_interval)
        self.keys = host.keys
        self.failures: dict[int, BaseException] = {}
        self.ready = asyncio.Event()
        self.application = self._build()
        self._init_task: asyncio.Task[None] | None = None

    @property
    def redis(self) -> aioredis.Redis:
        return self.host.redis

    def _build(self) -> Application:  # type: ignore[type-arg]
        # PTB's Bot API model over aiohttp (telegram_request.py), not httpx: a third of the CPU per send; one
        # kept-alive connection per send the outbox has in flight
        request = AiohttpRequest(pool_size=self.outbox.policy.concurrency)
        application = (
            ApplicationBuilder().token(self.t.token).base_url(self.t.api_base_url).updater(None)
            .request(request).get_updates_request(AiohttpRequest(pool_size=1)).build()
        )  # fmt: skip
        private = filters.ChatType.PRIVATE
        application.add_handler(CommandHandler(["start", "help"], self.on_start, filters=private))
        application.add_handler(CommandHandler("human", self.on_human, filters=private))
        application.add_handler(MessageHandler(private & filters.TEXT, self.on_text))
        application.add_handler(CallbackQueryHandler(self.on_callback))
        application.add_handler(MessageHandler(private & ~filters.TEXT, self.on_media))
        application.add_error_handler(self.on_error)
        return application

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._init_task = asyncio.create_task(self._initialize())
        self.outbox.start(self.send_job)

    def state(self) -> str:
        return "ready" if self.ready.is_set() else "starting"

    async def close(self) -> None:
        await self.outbox.stop(self.settings.server.shutdown_timeout)
        await self.stop()

    async def _initialize(self) -> None:
        """getMe (PTB's initialize), then setWebhook when configured; retried while Telegram is away,
        so a Telegram outage never stops the gateway from starting."""
        delay = 1.0
        while True:
            try:
                await self.application.initialize()
                await self.application.start()
                break
            except TelegramError as exc:
                log.warning("telegram: cannot reach the Bot API (%s); retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
        self.ready.set()
        log.info("telegram: bot @%s ready", self.application.bot.username)
        if self.t.set_webhook:
            url = self.settings.public_url.rstrip("/") + "/channels/telegram/webhook"
            try:
                await self.application.bot.set_webhook(url, secret_token=self.t.webhook_secret or None,
                                                       allowed_updates=["message", "callback_query"])  # fmt: skip
                for lang, commands in COMMANDS.items():
                    await self.application.bot.set_my_commands(
                        [BotCommand(c, d) for c, d in commands], language_code=lang or None
                    )
            except TelegramError as exc:
                log.warning("telegram: setWebhook failed (%s); set it by hand or restart", type(exc).__name__)

    async def stop(self) -> None:
        await tasks.stop(self._init_task)
        if self.application.running:
            await self.application.stop()
        with contextlib.suppress(TelegramError):
            await self.application.shutdown()

    # ---- inbound ---------------------------------------------------------------------------------
    async def process(self, update: Update) -> None:
        """Dispatch one update through PTB's handlers; re-raise what a handler raised (→ 500, redelivery)."""
        if not self.ready.is_set():
            raise Unavailable("the Telegram channel is starting (Bot API not reached yet)")
        await self.application.process_update(update)
        failure = self.failures.pop(update.update_id, None)
        if failure is not None:
            raise failure

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update) and context.error is not None:
            self.failures[update.update_id] = context.error

    async def _turn(self, update: Update, text: str, command: str | None = None, display: str | None = None) -> None:
        chat = update.effective_chat
        user = update.effective_user
        assert chat is not None
        lang = ui_lang(user.language_code if user else None)
        try:
            text = self.host.check_text(text)
        except BadRequest:
            limit = self.settings.pipeline.max_message_chars
            command, text = "channel.too_long", f"[{min(len(text), 99999)} chars > {limit}]"
        metadata: dict[str, Any] = {"update_id": update.update_id}
        sender = str(chat.id)
        message_id = str(update.update_id)
        inbound = InboundMessage(CHANNEL, sender, sender, text, message_id, time.time(), metadata, None, lang,
                                 command=command, display=display)  # fmt: skip
        turn = await self.host.handle(inbound)
        for i, reply in enumerate(turn.replies):  # a redelivery queues the same ids again: ignored
            await self.queue(reply, job_id(CHANNEL, sender, message_id, str(i)))

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._turn(update, update.effective_message.text or "/start", command="channel.welcome")  # type: ignore[union-attr]

    async def on_human(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._turn(update, update.effective_message.text or "/human", command="/request_human")  # type: ignore[union-attr]

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = update.effective_message.text or ""  # type: ignore[union-attr]
        if text.startswith("/"):  # "/bind@MyBot" → "/bind" (the bot's rules know /bind and /unbind)
            word, _, rest = text.partition(" ")
            text = (word.split("@", 1)[0] + (" " + rest if rest else "")).strip()
        await self._turn(update, text)

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        kind = next((k for k in MEDIA if getattr(message, k, None)), "other")
        caption = message.caption
        if caption:  # a photo with a caption: the caption is the question
            await self._turn(update, caption)
            return
        await self._turn(update, f"[{kind}]", command="channel.text_only")

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        with contextlib.suppress(TelegramError):  # only stops the button's spinner: never worth a retry
            await query.answer()
        data = query.data or ""
        if data.startswith("h:"):
            stored = await self.redis.get(self.keys.telegram_callback(data[2:]))
            if stored is None:
                return  # a button from a keyboard older than its mapping: nothing to do
            data = stored.decode()
        if update.effective_chat is None or update.effective_chat.type != "private":
            return
        await self._turn(update, data)

    # ---- outbound --------------------------------------------------------------------------------
    async def queue(self, message: OutboundMessage, id_: str = "") -> bool:
        return await queue_parts(self.outbox, message, [message.text], id_)

    async def push(self, message: OutboundMessage) -> None:
        if message.kind == "typing":  # an agent typing: shown now or never
            if self.ready.is_set():
                with contextlib.suppress(TelegramError, ValueError):
                    await self.application.bot.send_chat_action(int(message.recipient_id), "typing")
            return
        await self.queue(message)

    async def _callback_data(self, payload: str) -> str:
        if len(payload.encode()) <= CALLBACK_LIMIT:
            return payload
        digest = hashlib.sha1(payload.encode()).hexdigest()[:24]
        await self.redis.set(self.keys.telegram_callback(digest), payload, ex=TELEGRAM_CALLBACK_TTL)
        return "h:" + digest

    async def send_job(self, job: Job) -> str | None:
        if not self.ready.is_set():
            raise RetryLater("telegram channel not initialised (Bot API unreachable)")
        markup = None
        if job.buttons:
            rows = [[InlineKeyboardButton(title, callback_data=await self._callback_data(payload))]
                    for title, payload in job.buttons]  # fmt: skip
            markup = InlineKeyboardMarkup(rows)
        chunks = [job.text[i : i + MAX_TEXT] for i in range(0, len(job.text), MAX_TEXT)] or [""]
        message_id = None
        try:
            for i, chunk in enumerate(chunks):
                sent = await self.application.bot.send_message(
                    int(job.to), chunk, reply_markup=markup if i == len(chunks) - 1 else None
                )
                message_id = str(sent.message_id)
        except RetryAfter as exc:
            raise RetryLater("telegram 429", retry_seconds(exc)) from None
        except TgForbidden as exc:
            raise PermanentFailure(f"telegram forbidden: {exc.message}") from None
        except TgBadRequest as exc:
            raise PermanentFailure(f"telegram bad request: {exc.message}") from None
        except TelegramError as exc:  # NetworkError, TimedOut, a 5xx
            raise RetryLater(f"telegram {type(exc).__name__}") from None
        return message_id


COMMANDS = {
    "": [("start", "What I can do"), ("help", "Help"), ("human", "Talk to a person"),
         ("bind", "Link your phone number"), ("unbind", "Unlink your phone number")],
    "zh": [("start", "我能做什么"), ("help", "帮助"), ("human", "转人工客服"), ("bind", "绑定手机号"),
           ("unbind", "解除绑定")],
}  # fmt: skip


# ---- HTTP --------------------------------------------------------------------------------------------
# The shape of the parts of an update our handlers read, checked before PTB's ``Update.de_json`` (which trusts
# its input): a field of the wrong type makes the update unusable instead of failing inside a handler.
class TgUser(msgspec.Struct):
    id: int
    is_bot: bool = False
    first_name: Annotated[str, Meta(max_length=256)] = ""
    language_code: Annotated[str, Meta(max_length=35)] | None = None


class TgChat(msgspec.Struct):
    id: int
    type: Annotated[str, Meta(max_length=32)]


class TgEntity(msgspec.Struct):
    type: Annotated[str, Meta(max_length=64)]
    offset: Annotated[int, Meta(ge=0, le=1 << 20)]
    length: Annotated[int, Meta(ge=0, le=1 << 20)]


class TgMessage(msgspec.Struct):
    message_id: int
    date: int
    chat: TgChat
    from_: TgUser | None = msgspec.field(name="from", default=None)
    text: Annotated[str, Meta(max_length=MAX_TEXT * 4)] | None = None
    caption: Annotated[str, Meta(max_length=MAX_TEXT * 4)] | None = None
    entities: list[TgEntity] | None = None
    caption_entities: list[TgEntity] | None = None


class TgCallbackQuery(msgspec.Struct):
    id: Annotated[str, Meta(max_length=128)]
    from_: TgUser = msgspec.field(name="from")
    data: Annotated[str, Meta(max_length=256)] | None = None
    message: TgMessage | None = None


class TgUpdate(msgspec.Struct):
    update_id: Annotated[int, Meta(ge=0, lt=1 << 53)]
    message: TgMessage | None = None
    edited_message: TgMessage | None = None
    channel_post: TgMessage | None = None
    edited_channel_post: TgMessage | None = None
    callback_query: TgCallbackQuery | None = None


def _unusable(reason: str) -> web.Response:
    """An update we cannot use: 200, so Telegram does not deliver it again and again (logged, no content)."""
    log.warning("telegram: an update we cannot use (%s); answered 200", reason[:160])
    return web.json_response({"ok": True, "handled": False, "reason": reason[:160]})


async def webhook(request: web.Request) -> web.Response:
    channel = request.config_dict[TELEGRAM]
    secret = channel.t.webhook_secret
    if secret and not same(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), secret):
        raise Forbidden("X-Telegram-Bot-Api-Secret-Token is missing or wrong", field="X-Telegram-Bot-Api-Secret-Token")
    body = await read_body(request, MAX_BODY)
    try:
        data = decode(body, dict[str, Any], "update")
        decode(body, TgUpdate, "update")  # the parts our handlers read, typed
    except BadRequest as exc:
        return _unusable(exc.message)
    try:
        update = Update.de_json(data, channel.application.bot)
    except Exception as exc:  # PTB's own parsing of the parts we do not read
        return _unusable(f"not a Telegram Update: {type(exc).__name__}")
    try:
        await channel.process(update)
    except GatewayError:
        raise  # the channel is starting (503): Telegram delivers it again
    except Exception as exc:
        if is_outage(exc):
            raise  # Redis is away: JSON 503 + Retry-After, and Telegram delivers the update again
        channel.host.metrics.errors.inc()
        log.error("telegram: update %s failed in a handler (%s)", update.update_id, type(exc).__name__,
                  exc_info=exc)  # fmt: skip
        return _unusable(f"a handler failed: {type(exc).__name__}")
    return web.json_response({"ok": True})


def _enabled(settings: Settings) -> bool:
    t = settings.telegram
    if t.enabled and t.token and not t.webhook_secret:
        log.warning("telegram: TELEGRAM_WEBHOOK_SECRET is not set; anyone who finds the webhook URL can post updates")
    return bool(t.enabled and t.token)


ADAPTER = Adapter(CHANNEL, TELEGRAM, _enabled, TelegramChannel, lambda _s: [web.post("/webhook", webhook)],
                  prefix="/channels/telegram/")  # fmt: skip
