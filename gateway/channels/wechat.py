"""WeChat official account (公众号): URL check, signed (plaintext or AES) pushes, the 5-second window.

* ``GET /channels/wechat`` — WeChat's URL verification (``signature``, ``timestamp``, ``nonce``,
  ``echostr``): the echo string comes back when the signature is right, 403 otherwise.
* ``POST /channels/wechat`` — every push is signature-checked (403 otherwise): ``signature`` and a
  timestamp within 5 minutes of now; in safe mode (``encrypt_type=aes``) also ``msg_signature`` and
  AES with the EncodingAESKey, with the previous key still accepted during a rotation. Once
  ``WECHAT_AES_KEY`` is set, a plaintext push is refused. The signatures do not cover a plaintext
  body, so each (timestamp, nonce) is accepted once (``authn.Replays``): again with the same body it
  is a re-delivery, with another body it is refused. The XML is read against a declared schema
  (``WxMessage``); a signed push we cannot use is logged and answered "success" (WeChat would
  otherwise deliver the garbage again).
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
from typing import Annotated, Any

import aiohttp
import msgspec
import redis.asyncio as aioredis
import xmltodict
import yaml
from aiohttp import web
from msgspec import Meta
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from gateway import edge
from gateway.channels.authn import Replays, signed_time
from gateway.channels.base import Adapter, Host, as_text, queue_parts, read_body
from gateway.channels.passive import PassiveChannel, PassiveReplies, param, routes
from gateway.errors import BadRequest, Forbidden
from gateway.models import InboundMessage, OutboundMessage
from gateway.outbox import Job, PermanentFailure, RetryLater, random_id
from gateway.rkeys import UNSUBSCRIBED_TTL, WECHAT_HELD_TTL, WECHAT_TOKEN_LOCK_TTL, WECHAT_WINDOW_SPARE
from gateway.settings import Settings

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


def load_menu(path: Path | str | None, intents: frozenset[str]) -> dict[str, str]:
    path = Path(path) if path else MENU
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    menu = {str(k): str(v) for k, v in (data.get("menu") or {}).items()}
    for key, target in menu.items():
        if target != "welcome" and target not in intents:
            raise ValueError(f"{path}: menu key {key!r} names an unknown intent {target!r}")
    return menu


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


_ID = r"^[A-Za-z0-9_\-]{1,128}$"  # openids (o…, base64url) and original ids (gh_…)


class WxMessage(msgspec.Struct):
    """The fields of a push we use (xmltodict's view of ``<xml>``: text, or None for an empty element). Integers
    arrive as text and are checked as integers: not digits, too long or out of range → unusable."""

    ToUserName: Annotated[str, Meta(pattern=_ID)]
    FromUserName: Annotated[str, Meta(pattern=_ID)]
    CreateTime: Annotated[int, Meta(ge=0, le=2**40)]
    MsgType: Annotated[str, Meta(min_length=1, max_length=32)]
    MsgId: Annotated[int, Meta(ge=0)] | None = None
    Content: Annotated[str, Meta(max_length=20_000)] | None = None
    Event: Annotated[str, Meta(max_length=64)] | None = None
    EventKey: Annotated[str, Meta(max_length=1024)] | None = None


def _xml_root(raw: str | bytes) -> Any:
    """``<xml>…</xml>`` as xmltodict's dict (entities refused), or None."""
    try:
        doc = xmltodict.parse(raw, disable_entities=True)
    except Exception:  # expat errors, entities, an unknown encoding declaration…
        return None
    root = doc.get("xml") if isinstance(doc, dict) else None
    return root if isinstance(root, dict) else None


def _envelope(body: bytes) -> dict[str, Any] | None:
    root = _xml_root(body)
    encrypted = root.get("Encrypt") if root else None
    if not isinstance(encrypted, str) or not 0 < len(encrypted) <= 2 * MAX_BODY:
        return None
    return {**root, "Encrypt": encrypted}


def parse(xml: str) -> WxMessage | None:
    """The push's message, or None (logged) when the XML is not a WeChat message we can read."""
    root = _xml_root(xml)
    if root is None:
        log.warning("wechat: a signed push whose body is not WeChat XML; answered success")
        return None
    try:
        msg = msgspec.convert(root, WxMessage, strict=False)
        edge.clean_strings([msg.Content, msg.Event, msg.EventKey, msg.MsgType])
    except (msgspec.ValidationError, BadRequest) as exc:
        log.warning("wechat: a signed push with an unusable message (%s); answered success", str(exc)[:120])
        return None
    return msg


class WeChatChannel(PassiveChannel):
    name = CHANNEL

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.settings = settings
        self.w = settings.wechat
        self.outbox = host.outbox(CHANNEL, self.w)
        self.menu = load_menu(self.w.menu or None, host.intents)
        keys = [k for k in (self.w.aes_key, self.w.previous_aes_key) if k]
        self.replays = Replays(self.redis, host.keys, CHANNEL)
        self.cryptos = [WeChatCrypto(self.w.token, k, self.w.appid) for k in keys]
        self.keys = host.keys
        self.token_key, self.lock_key = self.keys.wechat_token(), self.keys.wechat_token_lock()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.passive = PassiveReplies(self.redis, self.keys, CHANNEL, self.w.passive_budget,
                                      self.queue, host.handle)  # fmt: skip

    @property
    def redis(self) -> aioredis.Redis:
        return self.host.redis

    # ---- verification ------------------------------------------------------------------------------
    def _signed(self, query: Any) -> tuple[str, str]:
        """(timestamp, nonce) of a request whose ``signature`` (token, timestamp, nonce) is right and whose
        timestamp is within 5 minutes of now; 403 otherwise."""
        timestamp, nonce, sent = param(query, "timestamp", 20), param(query, "nonce"), param(query, "signature", 64)
        signed_time(timestamp)
        try:
            check_signature(self.w.token, sent, timestamp, nonce)
        except InvalidSignatureException:
            raise Forbidden("signature does not match (check WECHAT_TOKEN)", field="signature") from None
        return timestamp, nonce

    async def verify(self, query: Any) -> str:
        """WeChat's URL check: the ``echostr`` when signed. A (timestamp, nonce) is used once."""
        timestamp, nonce = self._signed(query)
        echo = edge.text(query.get("echostr"), "echostr", 512)
        await self.replays.once(f"{timestamp}:{nonce}", b"GET " + echo.encode())
        return echo

    def decrypt(self, query: Any, envelope: dict[str, Any], timestamp: str, nonce: str) -> tuple[str, WeChatCrypto]:
        """The push's XML and the key that opened it (the current one, else the previous one); 403 when
        ``msg_signature`` (token, timestamp, nonce, ciphertext) does not match or no key opens it."""
        msg_signature = param(query, "msg_signature", 64)
        for crypto in self.cryptos:
            try:
                xml = crypto.decrypt_message(envelope, msg_signature, timestamp, nonce)
                return str(xml), crypto
            except InvalidSignatureException:
                raise Forbidden("msg_signature does not match (check WECHAT_TOKEN)", field="msg_signature") from None
            except Exception:  # a wrong key fails in several ways (struct.error, InvalidAppIdException…)
                continue  # the previous key, during a rotation
        raise Forbidden("cannot decrypt the push with the current or the previous EncodingAESKey")

    # ---- inbound -----------------------------------------------------------------------------------
    async def on_push(self, request: web.Request) -> web.Response:
        """403 for anything not signed by WeChat (or replayed with another body); a signed push whose body we
        cannot use is logged and answered "success", so WeChat does not deliver the garbage again."""
        query = request.query
        body = await read_body(request, MAX_BODY)
        timestamp, nonce = self._signed(query)
        mode = query.get("encrypt_type", "")
        if self.cryptos and mode != "aes":  # safe mode: WeChat encrypts every push, a plaintext one is forged
            raise Forbidden("a plaintext push, but this account is in safe mode (WECHAT_AES_KEY): pushes must be "
                            "encrypted (encrypt_type=aes)", field="encrypt_type")  # fmt: skip
        if mode not in ("", "raw", "aes"):
            raise Forbidden("'encrypt_type' must be aes (safe mode) or raw (plaintext)", field="encrypt_type")
        if mode == "aes" and not self.cryptos:
            raise Forbidden("an encrypted push, but WECHAT_AES_KEY is not set", field="encrypt_type")
        crypto: WeChatCrypto | None = None
        if mode == "aes":
            envelope = _envelope(body)
            if envelope is None:
                log.warning("wechat: a signed push that is not an <xml><Encrypt> envelope; answered success")
                return success()
            xml, crypto = self.decrypt(query, envelope, timestamp, nonce)
        else:
            xml = body.decode("utf-8", errors="replace")
        # the signatures cover the timestamp and nonce (and, in safe mode, the ciphertext), not what a plaintext
        # body says: a (timestamp, nonce) comes once; again with the same body, it is a re-delivery
        await self.replays.once(f"{timestamp}:{nonce}", body)
        msg = parse(xml)
        if msg is None:
            return success()
        openid = msg.FromUserName
        kind = msg.MsgType.lower()
        event = (msg.Event or "").lower() if kind == "event" else None
        key = str(msg.MsgId) if kind != "event" and msg.MsgId else f"{openid}:{msg.CreateTime}:{event}"
        if await self.passive.answered(key):
            return success()  # WeChat's retry of a message already answered or being answered
        inbound = await self._inbound(msg, kind, key, event)
        if inbound is None:
            return success()
        reply = await self.passive.answer(inbound, key)
        if reply is None:
            return success()
        content = self.text_of(reply).replace("]]>", "]] >")  # would end wechatpy's CDATA section
        xml_reply = TextReply(source=msg.ToUserName, target=openid, content=content).render()
        if crypto is not None:
            xml_reply = crypto.encrypt_message(xml_reply, nonce)
        return web.Response(text=xml_reply, content_type="application/xml")

    async def _inbound(self, msg: WxMessage, kind: str, key: str, event: str | None) -> InboundMessage | None:
        openid = msg.FromUserName
        metadata: dict[str, Any] = {}
        text = ""
        if event is not None:
            if event == "unsubscribe":
                await self.redis.set(self.keys.wechat_unsubscribed(openid), "1", ex=UNSUBSCRIBED_TTL)
                return None
            if event == "subscribe":
                await self.redis.delete(self.keys.wechat_unsubscribed(openid))
                text, metadata["command"] = "[subscribe]", "channel.welcome"
            elif event == "click":
                menu_key = msg.EventKey or ""
                target = self.menu.get(menu_key, "welcome")
                text, metadata["menu"] = "[menu]", menu_key
                metadata["command"] = "channel.welcome" if target == "welcome" else f"/{target}"
            else:
                return None  # VIEW, LOCATION reports, template-send results…: nothing to answer
        elif kind == "text":
            text = msg.Content or ""
        else:
            text, metadata["command"] = f"[{kind if kind in MEDIA else 'other'}]", "channel.text_only"
        await self.customer_wrote(openid)
        try:
            text = self.host.check_text(text)
        except BadRequest:
            text, metadata["command"] = f"[{len(text)} chars]", "channel.too_long"
        # WeChat has no UI language to tell: Chinese, unless the customer writes English
        command = metadata.pop("command", None)
        return InboundMessage(CHANNEL, openid, openid, text, key, time.time(), metadata, lang="zh", command=command)

    async def customer_wrote(self, openid: str) -> None:
        """The customer wrote: a new 48-hour window; what was held for them goes out now."""
        window, held_key = self.keys.wechat_window(openid), self.keys.wechat_held(openid)
        async with self.redis.pipeline(transaction=True) as pipe:  # one round trip; held messages taken once
            pipe.hset(window, mapping={"last_in": time.time(), "sent": 0})
            pipe.expire(window, int(self.w.window_hours * 3600) + WECHAT_WINDOW_SPARE)
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
        if await self.redis.exists(self.keys.wechat_unsubscribed(job.to)):
            raise PermanentFailure("the follower unsubscribed")
        if job.kind == "template":  # a template message (text: its JSON body): outside the 48-hour window too
            return await self._send_template(job)
        window = await self.redis.hgetall(self.keys.wechat_window(job.to))
        last_in, sent = float(window.get(b"last_in", 0)), int(window.get(b"sent", 0))
        if time.time() - last_in > self.w.window_hours * 3600 - 60:
            return await self._hold(job, "48-hour window closed")
        if sent >= self.w.window_quota:
            return await self._hold(job, "window quota used")
        text = job.text
        if sent == self.w.window_quota - 1:  # the last message this window allows: more may follow
            lang = "zh" if has_cjk(text) else "en"
            text += "\n\n" + self.host.text("channel", "write_again", lang, CHANNEL)
        body = {"touser": job.to, "msgtype": "text", "text": {"content": text}}
        data = await self._api_post("message/custom/send", body)
        code = int(data.get("errcode", 0))
        if code == 0:
            await self.redis.hincrby(self.keys.wechat_window(job.to), "sent", 1)
            return None
        if code in HOLD_ERRORS:
            return await self._hold(job, HOLD_ERRORS[code])
        if code == -1 or code == 45009:  # system busy; daily API limit
            raise RetryLater(f"wechat errcode {code}")
        raise PermanentFailure(f"wechat errcode {code}: {str(data.get('errmsg', ''))[:80]}")

    async def _send_template(self, job: Job) -> str | None:
        """``message/template/send``: ``{"template_id", "url"?, "data": {"first": {"value"}, …}}`` to the follower;
        43004 (not following) and 40037 (no such template) are permanent."""
        body = {**json.loads(job.text), "touser": job.to}
        data = await self._api_post("message/template/send", body)
        code = int(data.get("errcode", 0))
        if code == 0:
            return str(data.get("msgid", "")) or None
        if code == -1 or code == 45009:
            raise RetryLater(f"wechat errcode {code}")
        raise PermanentFailure(f"wechat errcode {code}: {str(data.get('errmsg', ''))[:80]}")

    async def _hold(self, job: Job, reason: str) -> None:
        """Kept until the customer writes again (WeChat allows no more now); never dropped."""
        key = self.keys.wechat_held(job.to)
        await self.redis.rpush(key, job.dumps())
        await self.redis.expire(key, WECHAT_HELD_TTL)
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
        if await self.redis.set(self.lock_key, os.getpid(), nx=True, ex=WECHAT_TOKEN_LOCK_TTL):
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


ADAPTER = Adapter(CHANNEL, WECHAT, lambda s: bool(s.wechat.enabled and s.wechat.token), WeChatChannel,
                  lambda _s: routes(WECHAT), prefix="/channels/wechat")  # fmt: skip
