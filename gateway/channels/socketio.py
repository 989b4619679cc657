"""rasa-webchat's protocol: Rasa's Socket.IO channel, served by the gateway at ``/socket.io/``.

The widget (npm ``rasa-webchat``, socket.io-client 3) speaks Rasa Open Source's ``socketio`` channel: on connect
it emits ``session_request {session_id}`` (the id it keeps in the browser's storage, or null) and waits for
``session_confirm <session_id>``; a customer's message is ``user_uttered {message, session_id, customData}``; the
answers are ``bot_uttered {text}`` and, with buttons, ``{text, quick_replies: [{content_type, title, payload}]}``
(Rasa's ``SocketIOOutput``: a text's paragraphs, split at blank lines, are separate messages and the quick
replies go with the last). The widget shows a message only when its keys are exactly those, so nothing else is
added to them.

Where the gateway differs from Rasa, for safety (README "Embed with rasa-webchat"):

* a session id is issued and signed by the server (``<32 hex>.<20 hex>``, HMAC with the server key): a
  ``session_request`` naming an id this gateway did not issue is given a new one, so a client cannot pick
  another customer's conversation; a ``user_uttered`` belongs to the session its socket was confirmed for,
  never to the ``session_id`` it writes (a different one is refused with an ``error`` event);
* the pipeline's sender is the id's random part (not a bearer secret: the console may show it);
* ``customData.token`` is a customer JWT (``webchat.token_secret``), ``customData.language`` zh | en.

Delivery across processes: a message for a session is published on its pub/sub channel (``Keys.visitor_channel``
of ``sio:<sender>``) by one Lua script that, when no process listens (no socket open: a reload, a network drop),
keeps it in the session's stream (``Keys.visitor_outbox``, MAXLEN ``socketio.pending_limit``, EX 30 days) instead.
A process that subscribes for a session empties that stream to its socket once Redis confirms the subscription,
so an agent's message sent while the page reloads arrives after the reload, once. (On Redis Cluster PUBLISH
counts the listeners of one node: a message may then also be kept and shown again after the next reconnect.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import socketio
from aiohttp import web

from gateway import websec
from gateway.channels.base import NO_COMMANDS, Adapter, Capabilities, Host
from gateway.channels.socketio_relay import Relay
from gateway.errors import BadRequest, Forbidden, GatewayError, Unauthorized, Unavailable, is_outage
from gateway.keys import SERVER_KEY
from gateway.models import InboundMessage, OutboundMessage
from gateway.rkeys import Keys
from gateway.security import verify_customer_token
from gateway.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "socketio"
PENDING_TTL = 30 * 86400  # a session's undelivered messages wait this long for the widget to come back
MAX_QUEUED = 20  # a socket's messages waiting for their turn; more are refused with an error event
MAX_TITLES = 64  # quick-reply payloads remembered per socket (to show the title in the transcript)
_SESSION = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{20}$")
Handle = Callable[[], Awaitable[web.StreamResponse]]
_SORRY = {"zh": "抱歉，出了点问题，请重新发送。", "en": "Sorry, something went wrong; please send it again."}

_PUBLISH = """
local n = redis.call('PUBLISH', ARGV[1], ARGV[2])
if n == 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return n
"""


# ---- sessions: issued and signed by the server ------------------------------------------------------------
def new_session(key: bytes) -> str:
    raw = secrets.token_hex(16)
    return f"{raw}.{_mac(key, raw)}"


def check_session(value: object, key: bytes) -> str | None:
    """The sender (the random part) of a session id this server issued, else None."""
    if not isinstance(value, str) or not _SESSION.match(value):
        return None
    raw, mac = value.split(".")
    return raw if hmac.compare_digest(mac, _mac(key, raw)) else None


def _mac(key: bytes, raw: str) -> str:
    return hmac.new(key, f"socketio:{raw}".encode(), hashlib.sha256).hexdigest()[:20]


# ---- what Rasa's SocketIOOutput emits ---------------------------------------------------------------------
def rasa_payloads(message: OutboundMessage) -> list[dict[str, Any]]:
    """``bot_uttered`` bodies: a paragraph each; the quick replies with the last."""
    parts = [p for p in message.text.strip().split("\n\n") if p.strip()] or [message.text]
    out: list[dict[str, Any]] = [{"text": p} for p in parts]
    if message.buttons:
        out[-1]["quick_replies"] = [{"content_type": "text", "title": b.title, "payload": b.payload}
                                    for b in message.buttons]  # fmt: skip
    return out


def _lang(value: object) -> str | None:
    if isinstance(value, str) and value[:2].lower() in {"zh", "en"}:
        return value[:2].lower()
    return None


# ---- delivery through Redis ---------------------------------------------------------------------------------
class SocketHub:
    """This process's sockets by session, fed from Redis pub/sub; what no process could take waits in Redis."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, sio: socketio.AsyncServer, event: str, limit: int) -> None:
        self.redis, self.keys, self.sio, self.event, self.limit = redis, keys, sio, event, limit
        self.local: dict[str, set[str]] = defaultdict(set)  # sender → sids here
        self.titles: dict[str, dict[str, str]] = {}  # sid → quick-reply payload → title
        self._pubsub = redis.pubsub()  # subscribe confirmations wanted: one drains what waited
        self._script = redis.register_script(_PUBLISH)
        self._reader: asyncio.Task[None] | None = None

    def _name(self, sender: str) -> str:
        return f"sio:{sender}"

    async def start(self) -> None:
        await self._pubsub.subscribe(self.keys.visitor_channel("_sio"))  # keeps the connection listening
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()

    async def publish(self, sender: str, payloads: list[dict[str, Any]]) -> None:
        name = self._name(sender)
        data = self.keys.seal(json.dumps({"m": payloads}, ensure_ascii=False))  # kept while away: encrypted at rest
        await self._script(keys=[self.keys.visitor_outbox(name)],
                           args=[self.keys.visitor_channel(name), data, self.limit, PENDING_TTL])  # fmt: skip

    async def attach(self, sender: str, sid: str) -> None:
        first = not self.local[sender]
        self.local[sender].add(sid)
        await self.sio.enter_room(sid, sender)
        if first:  # Redis's confirmation of the subscription drains what waited (``_read``)
            await self._pubsub.subscribe(self.keys.visitor_channel(self._name(sender)))
        else:
            await self._drain(sender)

    async def detach(self, sender: str, sid: str) -> None:
        self.local[sender].discard(sid)
        self.titles.pop(sid, None)
        with contextlib.suppress(KeyError, ValueError):
            await self.sio.leave_room(sid, sender)
        if not self.local[sender]:
            del self.local[sender]
            with contextlib.suppress(aioredis.RedisError):
                await self._pubsub.unsubscribe(self.keys.visitor_channel(self._name(sender)))

    async def _drain(self, sender: str) -> None:
        key = self.keys.visitor_outbox(self._name(sender))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(key)
            pipe.delete(key)
            entries, _ = await pipe.execute()
        for _, fields in entries:
            await self._emit(sender, fields[b"f"])

    async def _emit(self, sender: str, data: bytes | str) -> None:
        sids = self.local.get(sender)
        if not sids:  # the socket left between the publish and now: kept for the next connection
            key = self.keys.visitor_outbox(self._name(sender))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(key, {"f": data}, maxlen=self.limit, approximate=True)
                pipe.expire(key, PENDING_TTL)
                await pipe.execute()
            return
        for payload in json.loads(self.keys.unseal(data))["m"]:
            for reply in payload.get("quick_replies", ()):
                for sid in sids:
                    titles = self.titles.setdefault(sid, {})
                    titles[reply["payload"]] = reply["title"]
                    while len(titles) > MAX_TITLES:
                        titles.pop(next(iter(titles)))
            await self.sio.emit(self.event, payload, room=sender)

    async def _read(self) -> None:
        prefix = self.keys.visitor_channel("sio:")
        while True:
            try:
                async for message in self._pubsub.listen():
                    channel = message["channel"].decode()
                    if not channel.startswith(prefix):
                        continue
                    sender = channel[len(prefix) :]
                    if message["type"] == "subscribe":
                        await self._drain(sender)
                    elif message["type"] == "message":
                        await self._emit(sender, message["data"])
            except asyncio.CancelledError:
                raise
            except (aioredis.ConnectionError, OSError):
                log.warning("socket.io pub/sub connection lost; reconnecting")
                await asyncio.sleep(0.5)
            except Exception:  # one bad frame must not stop delivery to every socket of this process
                log.exception("socket.io pub/sub reader failed; going on")
                await asyncio.sleep(0.1)


# ---- one socket --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Client:
    sid: str
    key: bytes
    lang: str
    sender: str | None = None
    queue: asyncio.Queue[tuple[InboundMessage, str]] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))
    worker: asyncio.Task[None] | None = None


class SocketIOChannel:
    """Rasa's Socket.IO channel for the rasa-webchat widget (and any Socket.IO client speaking it)."""

    name = CHANNEL
    capabilities = Capabilities(push=True, buttons=True)
    commands = NO_COMMANDS
    outbox = None

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host, self.settings, self.section = host, settings, settings.socketio
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=lambda _origin, environ: websec.origin_allowed(environ["aiohttp.request"]),
            max_http_buffer_size=settings.webchat.max_body_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.relay = Relay(self.serve, settings.webchat.max_body_bytes)  # --workers: a sid's own process
        self.sio.eio.generate_id = self.relay.generate_id  # type: ignore[method-assign]
        self.hub = SocketHub(host.redis, host.keys, self.sio, self.section.bot_message_evt, self.section.pending_limit)
        self.clients: dict[str, _Client] = {}
        self.draining = False  # the gateway is stopping: new connections go elsewhere (503)
        self.requests: dict[int, web.Request] = {}  # Engine.IO requests in flight (WebSockets, long polls)
        self._closing: set[asyncio.Task[None]] = set()
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("session_request", self._session_request)
        self.sio.on(self.section.user_message_evt, self._user_uttered)

    def state(self) -> str:
        return "ready"

    async def start(self) -> None:
        await self.relay.start(self.settings)
        await self.hub.start()

    async def shutdown(self) -> None:
        """Let the sockets go first (the widget reconnects, to another process, and its session continues)."""
        self.draining = True
        # dropped, not closed with a Socket.IO disconnect: a client told "server disconnect" does not come back
        for request in list(self.requests.values()):
            if request.transport is not None:
                request.transport.close()

    async def close(self) -> None:
        await self.shutdown()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self.sio.shutdown()
        await self.hub.stop()
        await self.relay.close()

    async def push(self, message: OutboundMessage) -> None:
        """An agent's message, a queue notice, the survey: to whichever process holds the session's socket."""
        if message.kind == "typing":  # the widget has no way to show someone else typing
            return
        await self.hub.publish(message.recipient_id, rasa_payloads(message))

    async def serve(self, request: web.Request, handle: Handle | None = None) -> web.StreamResponse:
        """An Engine.IO request, kept in ``requests`` while it runs (a stopping process drops them)."""
        self.requests[id(request)] = request
        try:
            response: web.StreamResponse = await (handle() if handle else self.sio.handle_request(request))
        finally:
            self.requests.pop(id(request), None)
        return response

    # ---- events ----
    async def _connect(self, sid: str, environ: dict[str, Any], _auth: Any = None) -> None:
        request: web.Request = environ["aiohttp.request"]
        accept = request.headers.get("Accept-Language", "zh")
        self.clients[sid] = _Client(sid, request.config_dict[SERVER_KEY], "en" if accept.lower()[:2] == "en" else "zh")

    async def _disconnect(self, sid: str, *_reason: Any) -> None:
        client = self.clients.pop(sid, None)
        if client is None:
            return
        task = asyncio.create_task(self._finish(client))  # what the customer sent is still handled
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _finish(self, client: _Client) -> None:
        if client.worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await client.queue.join()
            client.worker.cancel()
        if client.sender:
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self.hub.detach(client.sender, client.sid)

    async def _error(self, sid: str, message: str, zh: str, field_: str = "") -> None:
        body = {"error": message, "error_zh": zh, **({"field": field_} if field_ else {})}
        with contextlib.suppress(Exception):
            await self.sio.emit("error", body, to=sid)

    async def _session_request(self, sid: str, data: Any = None) -> None:
        client = self.clients.get(sid)
        if client is None:
            return
        asked = data.get("session_id") if isinstance(data, dict) else None
        sender = check_session(asked, client.key) if self.section.session_persistence else None
        session = asked if sender else new_session(client.key)
        sender = sender or session.split(".")[0]
        try:
            if client.sender and client.sender != sender:
                await self.hub.detach(client.sender, sid)
            await self.sio.emit("session_confirm", session, to=sid)
            if client.sender != sender:
                client.sender = sender
                await self.hub.attach(sender, sid)
        except Exception as exc:
            self._log(exc, "session_request")
            await self._error(
                sid, "the chat is unavailable for a moment; please reconnect", "服务暂时不可用，请重新连接"
            )

    async def _user_uttered(self, sid: str, data: Any = None) -> None:
        client = self.clients.get(sid)
        if client is None:
            return
        if not isinstance(data, dict):
            return await self._error(sid, "user_uttered takes an object {message, session_id, customData}",
                                     "消息格式有误", "data")  # fmt: skip
        if client.sender is None:
            return await self._error(sid, "send session_request first", "请先发送 session_request", "session_id")
        said = data.get("session_id")
        if said is not None and check_session(said, client.key) != client.sender:
            return await self._error(sid, "session_id is not this socket's session", "会话标识与本连接不符",
                                     "session_id")  # fmt: skip
        custom = data.get("customData") if isinstance(data.get("customData"), dict) else {}
        lang = _lang(custom.get("language")) or client.lang
        phone = await self._phone(sid, custom.get("token"))
        text, command = data.get("message"), None
        if not isinstance(text, str) or not text.strip():
            return await self._error(sid, "'message' must be a non-empty string", "消息内容不能为空", "message")
        try:
            text = self.host.check_text(text, "message")
            display = self.hub.titles.get(sid, {}).get(text)  # a quick reply's title, for the transcript
        except BadRequest:  # too long (or not valid Unicode): the channel's notice, in the customer's language
            display = text[:200].encode("utf-8", "replace").decode() + "…"
            command, text = "channel.too_long", "[too long]"
        inbound = InboundMessage(CHANNEL, client.sender, client.sender, text, uuid.uuid4().hex, time.time(), {},
                                 phone, lang, command=command, display=display,
                                 reply_lang=lang if command else None)  # fmt: skip
        try:
            client.queue.put_nowait((inbound, lang))
        except asyncio.QueueFull:
            return await self._error(sid, "too many messages at once; wait for the answers", "消息太多，请稍候再发",
                                     "message")  # fmt: skip
        if client.worker is None:
            client.worker = asyncio.create_task(self._work(client))
        return None

    async def _phone(self, sid: str, token: object) -> str | None:
        if not token:
            return None
        try:
            return verify_customer_token(token, self.settings.webchat.token_secret,  # type: ignore[arg-type]
                                         self.settings.webchat.max_token_age)  # fmt: skip
        except Unauthorized as exc:  # answered without the identity; the page may renew its token
            await self._error(sid, exc.message, exc.zh, "customData.token")
            return None

    async def _work(self, client: _Client) -> None:
        while True:
            inbound, lang = await client.queue.get()
            try:
                turn = await self.host.handle(inbound)
                if not turn.duplicate:
                    for reply in turn.replies:
                        await self.hub.publish(reply.recipient_id, rasa_payloads(reply))
            except GatewayError as exc:
                await self._error(client.sid, exc.message, exc.zh)
            except Exception as exc:
                self._log(exc, "turn")
                with contextlib.suppress(Exception):
                    await self.sio.emit(self.section.bot_message_evt, {"text": _SORRY[lang]}, to=client.sid)
            finally:
                client.queue.task_done()

    @staticmethod
    def _log(exc: Exception, what: str) -> None:
        if is_outage(exc):
            log.warning("socket.io %s failed: Redis unavailable (%s)", what, type(exc).__name__)
        else:
            log.exception("socket.io %s failed", what)


SOCKETIO: web.AppKey[SocketIOChannel] = web.AppKey("socketio_channel")


async def endpoint(request: web.Request) -> web.StreamResponse:
    """Engine.IO's polling and WebSocket transports; a page of a site not allowed is refused here (403)."""
    if not websec.origin_allowed(request):
        raise Forbidden(f"origin {request.headers.get('Origin')!r} is not allowed to open the chat",
                        zh="该网站不允许打开客服对话", field="Origin")  # fmt: skip
    channel = request.config_dict[SOCKETIO]
    if channel.draining and "sid" not in request.query:
        raise Unavailable("this gateway process is stopping; connect again", zh="服务正在重启，请重新连接",
                          headers={"Retry-After": "1"})  # fmt: skip
    channel.relay.key = request.config_dict[SERVER_KEY]
    sid = request.query.get("sid")
    port = channel.relay.owner(sid) if sid and sid not in channel.sio.eio.sockets else None
    if port is not None:  # another process's session (--workers): relayed to it
        return await channel.serve(request, lambda: channel.relay.forward(request, port))
    return await channel.serve(request)


def _routes(settings: Settings) -> list[web.RouteDef]:
    path = "/" + settings.socketio.path.strip("/") + "/"
    return [web.get(path, endpoint), web.post(path, endpoint), web.route("OPTIONS", path, endpoint)]


ADAPTER = Adapter(CHANNEL, SOCKETIO, lambda s: s.socketio.enabled, SocketIOChannel, _routes)
