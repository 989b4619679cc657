"""WeChat official account (公众号): URL check, signed (plaintext or AES) pushes, the 5-second window.

* ``GET /channels/wechat`` — WeChat's URL verification (``signature``, ``timestamp``, ``nonce``,
  ``echostr``): the echo string comes back when the signature is right, 403 otherwise.
* ``POST /channels/wechat`` — every push is signature-checked: plaintext mode ``signature``; safe
  mode (``encrypt_type=aes``) ``msg_signature`` and AES with the EncodingAESKey, with the previous
  key still accepted during a rotation. Messages are parsed by ``wechatpy``.
* Text goes to the pipeline; ``subscribe`` gets the welcome and the menu of what the bot can do;
  ``unsubscribe`` stops every send to the follower; menu ``CLICK`` keys map to intents
  (``config/wechat_menu.yml``); images, voice, locations… get a polite "text only".
* The 5-second rule (``PassiveReplies``): the answer goes back passively (XML, encrypted in safe
  mode) when ready within ``passive_budget``; otherwise "success" at once and the answer through
  the customer-service message API. A retry (same ``MsgId``, or ``FromUserName`` + ``CreateTime``
  for events) never produces a second answer.
* The customer-service API: the access token is cached in Redis, shared by all processes, and
  refreshed before it expires (one process fetches, under a lock). Sends respect the 48-hour
  window and the per-window quota: the last message a window allows asks the customer to write
  again, and what is left is held until they do. Agents' replies go out the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import xmltodict
import yaml
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from gateway.channels import base
from gateway.channels.base import as_text, queue_parts, read_body
from gateway.channels.passive import PassiveReplies, check_fresh, mount
from gateway.errors import BadRequest, Forbidden
from gateway.keys import METRICS, PIPELINE, REDIS
from gateway.metrics import Metrics
from gateway.models import InboundMessage, OutboundMessage
from gateway.outbox import Job, Outbox, PermanentFailure, RetryLater, random_id
from gateway.settings import Settings
from nlu import INTENTS, NLUInputError
from nlu.normalize import has_cjk

log = logging.getLogger(__name__)
CHANNEL = "wechat"
MENU = Path(__file__).resolve().parents[2] / "config" / "wechat_menu.yml"
MAX_BODY = 64 * 1024
MAX_BYTES = 2048  # a customer-service text message


def success() -> web.Response:
    """WeChat's "received; nothing to say now" (a Response object cannot be sent twice)."""
    return web.Response(text="success", content_type="text/plain")


TOKEN_ERRORS = {40001, 40014, 42001}  # invalid, malformed, expired access_token
HOLD_ERRORS = {45015: "window closed", 45047: "window quota used"}
MEDIA = {"image", "voice", "video", "shortvideo", "location", "link", "file"}
WECHAT: web.AppKey[WeChatChannel] = web.AppKey("wechat_channel")


def load_menu(path: Path | str | None = None) -> dict[str, str]:
    path = Path(path) if path else MENU
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    menu = {str(k): str(v) for k, v in (data.get("menu") or {}).items()}
    for key, target in menu.items():
        if target != "welcome" and target not in INTENTS:
            raise ValueError(f"{path}: menu key {key!r} names an unknown intent {target!r}")
    return menu


class WeChatChannel:
    name = CHANNEL

    def __init__(self, app: web.Application, settings: Settings, outbox: Outbox, menu: dict[str, str]) -> None:
        self.app = app
        self.settings = settings
        self.w = settings.wechat
        self.outbox = outbox
        self.menu = menu
        keys = [k for k in (self.w.aes_key, self.w.previous_aes_key) if k]
        self.cryptos = [WeChatCrypto(self.w.token, k, self.w.appid) for k in keys]
        base = f"{settings.redis.key_prefix}{{wechat}}:"
        self.token_key, self.lock_key, self.base = base + "token", base + "token:lock", base
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.passive = PassiveReplies(self.redis, settings.redis.key_prefix, CHANNEL, self.w.passive_budget,
                                      self.queue, self.app[PIPELINE].handle)  # fmt: skip

    @property
    def redis(self) -> aioredis.Redis:
        return self.app[REDIS]

    # ---- verification ------------------------------------------------------------------------------
    def check(self, query: Any) -> None:
        check_fresh(query.get("timestamp", ""))
        try:
            check_signature(self.w.token, query.get("signature", ""), query.get("timestamp", ""),
                            query.get("nonce", ""))  # fmt: skip
        except InvalidSignatureException:
            raise Forbidden("signature does not match (check WECHAT_TOKEN)") from None

    def decrypt(self, query: Any, body: bytes) -> tuple[str, WeChatCrypto]:
        """The push's XML and the key that opened it (the current one, else the previous one)."""
        if not self.cryptos:
            raise Forbidden("an encrypted push, but WECHAT_AES_KEY is not set")
        check_fresh(query.get("timestamp", ""))
        try:
            envelope = xmltodict.parse(body)["xml"]
            if not isinstance(envelope, dict) or not envelope.get("Encrypt"):
                raise ValueError
        except Exception:
            raise BadRequest("encrypted push is not a WeChat <xml><Encrypt> envelope") from None
        for crypto in self.cryptos:
            try:
                xml = crypto.decrypt_message(envelope, query.get("msg_signature", ""), query.get("timestamp", ""),
                                             query.get("nonce", ""))  # fmt: skip
                return str(xml), crypto
            except InvalidSignatureException:
                raise Forbidden("msg_signature does not match (check WECHAT_TOKEN)") from None
            except Exception:  # a wrong key fails in several ways (struct.error, InvalidAppIdException…)
                continue  # the previous key, during a rotation
        raise Forbidden("cannot decrypt the push with the current or the previous EncodingAESKey")

    # ---- inbound -----------------------------------------------------------------------------------
    async def on_push(self, request: web.Request) -> web.Response:
        query = request.query
        body = await read_body(request, MAX_BODY)
        safe = query.get("encrypt_type") == "aes"
        crypto: WeChatCrypto | None = None
        if safe:
            xml, crypto = self.decrypt(query, body)
        else:
            self.check(query)
            xml = body.decode("utf-8", errors="replace")
        try:
            msg = parse_message(xml)
        except Exception:
            raise BadRequest("body is not a WeChat XML message") from None
        if msg is None or not getattr(msg, "source", None):
            raise BadRequest("body is not a WeChat XML message (no FromUserName)")
        openid = str(msg.source)
        event = getattr(msg, "event", None) if msg.type == "event" else None
        key = str(msg.id) if msg.type != "event" and msg.id else f"{openid}:{msg.create_time}:{event}"
        if await self.passive.answered(key):
            return success()  # WeChat's retry of a message already answered or being answered
        inbound = await self._inbound(msg, openid, key, event)
        if inbound is None:
            return success()
        reply = await self.passive.answer(inbound, key)
        if reply is None:
            return success()
        content = self.text_of(reply).replace("]]>", "]] >")  # would end wechatpy's CDATA section
        xml_reply = TextReply(source=msg.target, target=msg.source, content=content).render()
        if crypto is not None:
            xml_reply = crypto.encrypt_message(xml_reply, query.get("nonce", os.urandom(8).hex()))
        return web.Response(text=xml_reply, content_type="application/xml")

    async def _inbound(self, msg: Any, openid: str, key: str, event: str | None) -> InboundMessage | None:
        metadata: dict[str, Any] = {}
        text = ""
        if event is not None:
            if event == "unsubscribe":
                await self.redis.set(self.base + f"unsub:{openid}", "1", ex=365 * 86400)
                return None
            if event == "subscribe":
                await self.redis.delete(self.base + f"unsub:{openid}")
                text, metadata["command"] = "[subscribe]", "channel.welcome"
            elif event == "click":
                target = self.menu.get(str(msg.key), "welcome")
                text, metadata["menu"] = "[menu]", str(msg.key)
                metadata["command"] = "channel.welcome" if target == "welcome" else f"/{target}"
            else:
                return None  # VIEW, LOCATION reports, template-send results…: nothing to answer
        elif msg.type == "text":
            text = str(msg.content or "")
        else:
            text, metadata["command"] = f"[{msg.type if msg.type in MEDIA else 'other'}]", "channel.text_only"
        await self.customer_wrote(openid)
        pipeline = self.app[PIPELINE]
        try:
            text = pipeline.validate_text(text)
        except NLUInputError:
            text, metadata["command"] = f"[{len(text)} chars]", "channel.too_long"
        # WeChat has no UI language to tell: Chinese, unless the customer writes English
        return InboundMessage(CHANNEL, openid, openid, text, key, time.time(), metadata, lang="zh")

    async def customer_wrote(self, openid: str) -> None:
        """The customer wrote: a new 48-hour window; what was held for them goes out now."""
        window, held_key = self.base + f"win:{openid}", self.base + f"held:{openid}"
        async with self.redis.pipeline(transaction=True) as pipe:  # one round trip; held messages taken once
            pipe.hset(window, mapping={"last_in": time.time(), "sent": 0})
            pipe.expire(window, int(self.w.window_hours * 3600) + 86400)
            pipe.lrange(held_key, 0, -1)
            pipe.delete(held_key)
            *_, held, _ = await pipe.execute()
        for raw in held:
            job = Job.loads(raw)
            job.id, job.attempts = random_id(), 0
            await self.outbox.put(job)

    # ---- outbound ----------------------------------------------------------------------------------
    def text_of(self, message: OutboundMessage) -> str:
        return as_text(message)

    async def queue(self, message: OutboundMessage, id_: str = "") -> bool:
        return await queue_parts(self.outbox, message, _byte_chunks(self.text_of(message), MAX_BYTES), id_)

    async def push(self, message: OutboundMessage) -> None:
        if message.kind != "typing":  # WeChat has a "typing" API, but it costs a quota slot: not worth it
            await self.queue(message)

    async def send_job(self, job: Job) -> str | None:
        if await self.redis.exists(self.base + f"unsub:{job.to}"):
            raise PermanentFailure("the follower unsubscribed")
        window = await self.redis.hgetall(self.base + f"win:{job.to}")
        last_in, sent = float(window.get(b"last_in", 0)), int(window.get(b"sent", 0))
        if time.time() - last_in > self.w.window_hours * 3600 - 60:
            return await self._hold(job, "48-hour window closed")
        if sent >= self.w.window_quota:
            return await self._hold(job, "window quota used")
        text = job.text
        if sent == self.w.window_quota - 1:  # the last message this window allows: more may follow
            lang = "zh" if has_cjk(text) else "en"
            text += "\n\n" + self.app[PIPELINE].bot.svc.renderer.text("channel", "write_again", lang, CHANNEL)
        body = {"touser": job.to, "msgtype": "text", "text": {"content": text}}
        data = await self._api_post("message/custom/send", body)
        code = int(data.get("errcode", 0))
        if code == 0:
            await self.redis.hincrby(self.base + f"win:{job.to}", "sent", 1)
            return None
        if code in HOLD_ERRORS:
            return await self._hold(job, HOLD_ERRORS[code])
        if code == -1 or code == 45009:  # system busy; daily API limit
            raise RetryLater(f"wechat errcode {code}")
        raise PermanentFailure(f"wechat errcode {code}: {str(data.get('errmsg', ''))[:80]}")

    async def _hold(self, job: Job, reason: str) -> None:
        """Kept until the customer writes again (WeChat allows no more now); never dropped."""
        key = self.base + f"held:{job.to}"
        await self.redis.rpush(key, job.dumps())
        await self.redis.expire(key, 7 * 86400)
        log.info("wechat: a message held until the follower writes again (%s)", reason)
        return None

    async def _api_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(2):
            token = await self.access_token()
            url = f"{self.w.api_base_url.rstrip('/')}/{path}"
            try:
                async with self.session.post(url, params={"access_token": token},
                                             data=json.dumps(body, ensure_ascii=False).encode()) as resp:  # fmt: skip
                    if resp.status >= 500:
                        raise RetryLater(f"wechat HTTP {resp.status}")
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
                raise RetryLater(f"wechat unreachable: {type(exc).__name__}") from None
            if int(data.get("errcode", 0)) in TOKEN_ERRORS and attempt == 0:
                await self._forget_token(token)
                continue
            return dict(data)
        raise RetryLater("wechat access_token refused twice")

    # ---- the access token, shared by every process ------------------------------------------------
    async def access_token(self) -> str:
        cached = await self.redis.hgetall(self.token_key)
        if cached and float(cached[b"expires"]) - time.time() > 300:
            return str(cached[b"token"].decode())
        if await self.redis.set(self.lock_key, os.getpid(), nx=True, ex=10):
            try:
                return await self._fetch_token()
            finally:
                await self.redis.delete(self.lock_key)
        for _ in range(100):  # another process is fetching it
            await asyncio.sleep(0.05)
            cached = await self.redis.hgetall(self.token_key)
            if cached and float(cached[b"expires"]) - time.time() > 300:
                return str(cached[b"token"].decode())
        raise RetryLater("wechat access_token not available")

    async def _fetch_token(self) -> str:
        params = {"grant_type": "client_credential", "appid": self.w.appid, "secret": self.w.app_secret}
        try:
            async with self.session.get(f"{self.w.api_base_url.rstrip('/')}/token", params=params) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise RetryLater(f"wechat token endpoint unreachable: {type(exc).__name__}") from None
        if "access_token" not in data:
            raise RetryLater(f"wechat token refused: errcode {data.get('errcode')}")
        expires = time.time() + int(data.get("expires_in", 7200))
        await self.redis.hset(self.token_key, mapping={"token": data["access_token"], "expires": expires})
        await self.redis.expireat(self.token_key, int(expires))
        return str(data["access_token"])

    async def _forget_token(self, token: str) -> None:
        cached = await self.redis.hget(self.token_key, "token")
        if cached is not None and cached.decode() == token:  # not one another process just fetched
            await self.redis.delete(self.token_key)

    async def close(self) -> None:
        await self.session.close()


def _byte_chunks(text: str, limit: int) -> list[str]:
    if len(text.encode()) <= limit:
        return [text]
    chunks, current = [], ""
    for ch in text:
        if len((current + ch).encode()) > limit:
            chunks.append(current)
            current = ""
        current += ch
    return [*chunks, current] if current else chunks


def make_outbox(redis: aioredis.Redis, settings: Settings, metrics: Metrics) -> Outbox:
    return base.make_outbox(redis, settings.redis.key_prefix, CHANNEL, metrics, settings.wechat)


def setup(app: web.Application, settings: Settings) -> None:
    w = settings.wechat
    if not (w.enabled and w.token):
        return
    menu = load_menu(w.menu or None)

    def build(app: web.Application) -> WeChatChannel:
        return WeChatChannel(app, settings, make_outbox(app[REDIS], settings, app[METRICS]), menu)

    mount(app, settings, "/channels/wechat", WECHAT, build)
