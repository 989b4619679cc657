"""Weibo fan service (粉丝服务平台): signed JSON pushes of private messages and events, passive and
active replies.

* ``GET /channels/weibo`` — the URL check: ``signature = sha1(sorted(app_secret, timestamp,
  nonce))``; the ``echostr`` comes back when it matches, 403 otherwise.
* ``POST /channels/weibo`` — every push is signed the same way, with a timestamp within 5 minutes
  of now (403 otherwise); the signature does not cover the body, so each (timestamp, nonce) is
  accepted once (again with the same body: a re-delivery; with another: 403). The body is JSON
  ``{"type", "receiver_id", "sender_id", "created_at", "text", "data"}`` (``WeiboPush``); a signed
  push we cannot use is logged and answered with an empty 200, so Weibo does not push it again.
  Text goes to the pipeline; ``follow``/``subscribe`` get the welcome; ``unfollow``/``unsubscribe``
  stop sends; menu ``click`` keys map to intents (the WeChat menu file's keys); images, voice and
  positions get "text only".
* Weibo waits 5 seconds and pushes again: as on WeChat (``PassiveReplies``), the answer goes back in
  the response (``{"result": true, "receiver_id", "sender_id", "type": "text", "data": <URL-encoded
  JSON>}``) when it is ready within ``passive_budget``, else an empty 200 at once and the answer
  through ``messages/reply.json``. A push carries no id: ``sender_id`` + ``created_at`` (+ the text)
  identify it, so a retry is answered once.
* A fan binds a number with a one-time code by SMS, as on every social channel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Annotated, Any
from urllib.parse import quote

import aiohttp
import msgspec
import redis.asyncio as aioredis
from aiohttp import web
from msgspec import Meta

from gateway import edge
from gateway.channels.authn import Replays, same, signed_time
from gateway.channels.base import Adapter, Host, as_text, queue_parts, read_body
from gateway.channels.passive import PassiveChannel, PassiveReplies, param, routes
from gateway.channels.wechat import load_menu
from gateway.edge import decode
from gateway.errors import BadRequest, Forbidden
from gateway.models import InboundMessage, OutboundMessage
from gateway.outbox import Job, PermanentFailure, RetryLater
from gateway.rkeys import UNSUBSCRIBED_TTL
from gateway.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "weibo"
MAX_BODY = 64 * 1024
MAX_TEXT = 300  # characters per message
TOKEN_ERRORS = {21301, 21327, 21332}
RATE_ERRORS = {10022, 10023, 10024}
WEIBO: web.AppKey[WeiboChannel] = web.AppKey("weibo_channel")


def signature(secret: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([secret, timestamp, nonce])).encode()).hexdigest()


def chunks(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split at line or sentence ends where possible; never more than ``limit`` characters."""
    out, current = [], ""
    for piece in text.splitlines(keepends=True):
        while len(piece) > limit:
            out.append(piece[:limit])
            piece = piece[limit:]
        if len(current) + len(piece) > limit:
            out.append(current.rstrip())
            current = ""
        current += piece
    if current.strip():
        out.append(current.rstrip())
    return out or [""]


class WeiboData(msgspec.Struct):
    """What we read of a push's ``data`` (an event's subtype and menu key; media ids are not used)."""

    subtype: Annotated[str, Meta(max_length=64)] = ""
    key: Annotated[str, Meta(max_length=1024)] = ""


class WeiboPush(msgspec.Struct):
    """A push's JSON body. ``sender_id`` is a uid: a number, or its digits as text."""

    type: Annotated[str, Meta(pattern=r"^[a-z_]{1,32}$")]
    sender_id: Annotated[int, Meta(ge=1)] | Annotated[str, Meta(pattern=r"^[0-9]{1,20}$")]
    created_at: Annotated[str, Meta(max_length=64)] = ""
    text: Annotated[str, Meta(max_length=20_000)] = ""
    receiver_id: int | str | None = None
    data: WeiboData | None = None


class WeiboChannel(PassiveChannel):
    name = CHANNEL

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.settings = settings
        self.wb = settings.weibo
        self.outbox = host.outbox(CHANNEL, self.wb)
        self.menu = load_menu(self.wb.menu or None, host.intents)
        self.keys = host.keys
        self.replays = Replays(self.redis, self.keys, CHANNEL)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.passive = PassiveReplies(self.redis, self.keys, CHANNEL, self.wb.passive_budget,
                                      self.queue, host.handle)  # fmt: skip

    @property
    def redis(self) -> aioredis.Redis:
        return self.host.redis

    def _signed(self, query: Any) -> tuple[str, str]:
        """(timestamp, nonce) of a request signed with the app secret, timestamp within 5 minutes; 403 otherwise."""
        timestamp, nonce, sent = param(query, "timestamp", 20), param(query, "nonce"), param(query, "signature", 64)
        signed_time(timestamp)
        if not same(sent, signature(self.wb.app_secret, timestamp, nonce)):
            raise Forbidden("signature does not match (check WEIBO_APP_SECRET)", field="signature")
        return timestamp, nonce

    async def verify(self, query: Any) -> str:
        """The URL check: the ``echostr`` when signed. A (timestamp, nonce) is used once."""
        timestamp, nonce = self._signed(query)
        echo = edge.text(query.get("echostr"), "echostr", 512)
        await self.replays.once(f"{timestamp}:{nonce}", b"GET " + echo.encode())
        return echo

    async def on_push(self, request: web.Request) -> web.Response:
        """403 for anything not signed (or replayed with another body: the signature covers the timestamp and
        nonce only, so each pair is accepted once); a signed push we cannot use is logged and answered with an
        empty 200, as a push we have nothing to say to, so Weibo does not push the garbage again."""
        raw = await read_body(request, MAX_BODY)
        timestamp, nonce = self._signed(request.query)
        await self.replays.once(f"{timestamp}:{nonce}", raw)
        try:
            push = decode(raw, WeiboPush, "push")
        except BadRequest as exc:
            log.warning("weibo: a signed push we cannot use (%s); answered with an empty 200", exc.message[:120])
            return web.Response(text="")
        fan = str(push.sender_id)
        text = push.text
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        key = f"{fan}:{push.created_at}:{push.type}:{digest}"
        if await self.passive.answered(key):
            return web.Response(text="")
        inbound = await self._inbound(push, fan, text, key)
        if inbound is None:
            return web.Response(text="")
        reply = await self.passive.answer(inbound, key)
        if reply is None:
            return web.Response(text="")
        first, *rest = chunks(as_text(reply))
        if rest:  # a passive reply carries one message of 300 characters; the rest through the API
            await queue_parts(self.outbox, reply, rest, f"{key}:p")
        body = {"result": True, "receiver_id": int(fan),
                "sender_id": int(self.wb.uid) if self.wb.uid.isdecimal() else self.wb.uid, "type": "text",
                "data": quote(json.dumps({"text": first}, ensure_ascii=False), safe="")}  # fmt: skip
        return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _inbound(self, push: WeiboPush, fan: str, text: str, key: str) -> InboundMessage | None:
        kind = push.type
        data = push.data or WeiboData()
        metadata: dict[str, Any] = {}
        if kind == "event":
            subtype = data.subtype
            if subtype in ("unfollow", "unsubscribe"):
                await self.redis.set(self.keys.weibo_unsubscribed(fan), "1", ex=UNSUBSCRIBED_TTL)
                return None
            if subtype in ("follow", "subscribe"):
                await self.redis.delete(self.keys.weibo_unsubscribed(fan))
                text, metadata["command"] = "[follow]", "channel.welcome"
            elif subtype == "click":
                target = self.menu.get(data.key, "welcome")
                text, metadata["menu"] = "[menu]", data.key
                metadata["command"] = "channel.welcome" if target == "welcome" else f"/{target}"
            else:
                return None
        elif kind == "text":
            pass
        elif kind == "mention":
            return None  # a public @mention: answered (if at all) in public by people, not privately by the bot
        else:
            text, metadata["command"] = f"[{kind}]", "channel.text_only"
        try:
            text = self.host.check_text(text)
        except BadRequest:
            text, metadata["command"] = f"[{len(text)} chars]", "channel.too_long"
        command = metadata.pop("command", None)
        return InboundMessage(CHANNEL, fan, fan, text, key, time.time(), metadata, lang="zh", command=command)

    # ---- active replies --------------------------------------------------------------------------------
    async def queue(self, message: OutboundMessage, id_: str = "") -> bool:
        return await queue_parts(self.outbox, message, chunks(as_text(message)), id_)

    async def push(self, message: OutboundMessage) -> None:
        if message.kind != "typing":
            await self.queue(message)

    async def send_job(self, job: Job) -> str | None:
        if await self.redis.exists(self.keys.weibo_unsubscribed(job.to)):
            raise PermanentFailure("the fan unfollowed")
        form = {"access_token": self.wb.access_token, "type": "text", "receiver_id": job.to, "save_sender_box": "1",
                "data": json.dumps({"text": job.text}, ensure_ascii=False)}  # fmt: skip
        url = f"{self.wb.api_base_url.rstrip('/')}/messages/reply.json"
        try:
            async with self.session.post(url, data=form) as resp:
                status = resp.status
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RetryLater(f"weibo unreachable: {type(exc).__name__}") from None
        if status == 200 and isinstance(data, dict) and data.get("result") in (True, "true"):
            return None
        code = int(data.get("error_code", 0)) if isinstance(data, dict) else 0
        if code in RATE_ERRORS:
            raise RetryLater(f"weibo rate limit {code}", 60.0)
        if code in TOKEN_ERRORS:
            log.warning("weibo: the access token was refused (%s); renew WEIBO_ACCESS_TOKEN", code)
            raise RetryLater(f"weibo token refused {code}", 60.0)
        if status >= 500 or code in (10001, 10002):
            raise RetryLater(f"weibo HTTP {status} error {code}")
        raise PermanentFailure(f"weibo HTTP {status} error {code}")


ADAPTER = Adapter(CHANNEL, WEIBO, lambda s: bool(s.weibo.enabled and s.weibo.app_secret), WeiboChannel,
                  lambda _s: routes(WEIBO), prefix="/channels/weibo")  # fmt: skip
