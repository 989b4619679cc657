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

Delivery across processes, exactly once on one Redis and on a Redis Cluster: a message for a session is kept in
the session's stream (``Keys.visitor_outbox`` of ``sio:<sender>``, MAXLEN ``socketio.pending_limit``, EX 30 days) and
published with its stream id on the session's pub/sub channel (``Keys.visitor_channel``), by one Lua script. The
process holding the session's socket emits it and then deletes it from the stream (the stream key goes with its last
entry); a process that (re)subscribes for a session, once Redis confirms the subscription, emits what the stream still
holds. So what no socket took (none open: a reload, a network drop; the socket left while the message was on its way;
the pub/sub connection was being re-made) waits for the next connection, and what a socket took is not shown again;
an id already emitted to a session's sockets here is not emitted again (the stream and the live message may both
carry it). No subscriber count is used: on a Redis Cluster ``PUBLISH`` reaches every node's subscribers but counts
only those of the node that ran it (a message kept only when that count was 0 was shown live, and again after the next
reconnect). Not covered: a message emitted into a socket whose connection was already broken (the widget does not
acknowledge what it shows), and one emitted just before its process died, before it was deleted (shown again).
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

from gateway import tasks, websec
from gateway.channels.base import NO_COMMANDS, Adapter, Capabilities, Host
from gateway.channels.socketio_relay import Relay
from gateway.errors import BadRequest, Forbidden, GatewayError, Unauthorized, Unavailable, log_failure
from gateway.keys import SERVER_KEY
from gateway.models import InboundMessage, OutboundMessage
from gateway.pages import ui_lang
from gateway.rkeys import Keys
from gateway.security import verify_customer_token
from gateway.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "socketio"
PENDING_TTL = 30 * 86400  # a session's undelivered messages wait this long for the widget to come back
MAX_QUEUED = 20  # a socket's messages waiting for their turn; more are refused with an error event
MAX_TITLES = 64  # quick-reply payloads remembered per socket (to show the title in the transcript)
_SESSION = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{20}$")
_STREAM_ID = re.compile(rb"^[0-9]+-[0-9]+$")
Handle = Callable[[], Awaitable[web.StreamResponse]]
_SORRY = {"zh": "抱歉，出了点问题，请重新发送。", "en": "Sorry, something went wrong; please send it again."}

# Keep a message for a session and publish it with its id. KEYS: the outbox. ARGV: channel, sealed data, MAXLEN, TTL.
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
"""
# Messages emitted to the session's socket: out of its outbox, and the key gone with its last entry. KEYS: the outbox.
# ARGV: stream ids.
_ACK = """
redis.call('XDEL', KEYS[1], unpack(ARGV))
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
"""
RECENT = 256  # stream ids remembered per session (emitted here): the stream and the live message may both carry one


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
    """This process's sockets by session, fed from Redis pub/sub; a message leaves its session's outbox in Redis only
    once emitted to a socket of the session."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, sio: socketio.AsyncServer, event: str, limit: int) -> None:
        self.redis, self.keys, self.sio, self.event, self.limit = redis, keys, sio, event, limit
        self.local: dict[str, set[str]] = defaultdict(set)  # sender → sids here
        self.titles: dict[str, dict[str, str]] = {}  # sid → quick-reply payload → title
        self.recent: dict[str, dict[bytes, None]] = {}  # sender → stream ids emitted here lately (oldest first)
        self.delivering = True  # False once the process stops: what arrives stays for the next connection
        self._pubsub = redis.pubsub()  # subscribe confirmations wanted: one drains what waited
        self._script = redis.register_script(_PUBLISH)
        self._ack = redis.register_script(_ACK)
        self._reader: asyncio.Task[None] | None = None

    def _name(self, sender: str) -> str:
        return f"sio:{sender}"

    async def start(self) -> None:
        await self._pubsub.subscribe(self.keys.visitor_channel("_sio"))  # keeps the connection listening
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        self.delivering = False
        await tasks.stop(self._reader)
        await self._pubsub.aclose()

    async def publish(self, sender: str, payloads: list[dict[str, Any]]) -> bytes:
        """Kept in the session's outbox and published; returns its stream id."""
        name = self._name(sender)
        data = self.keys.seal(json.dumps({"m": payloads}, ensure_ascii=False))  # kept while away: encrypted at rest
        return await self._script(keys=[self.keys.visitor_outbox(name)],  # type: ignore[no-any-return]
                                  args=[self.keys.visitor_channel(name), data, self.limit, PENDING_TTL])  # fmt: skip

    async def ack(self, sender: str, ids: list[bytes]) -> None:
        """Messages emitted to the session's socket: out of its outbox."""
        if ids:
            await self._ack(keys=[self.keys.visitor_outbox(self._name(sender))], args=ids)

    async def attach(self, sender: str, sid: str) -> None:
        first = not self.local[sender]
        self.local[sender].add(sid)
        await self.sio.enter_room(sid, sender)
        if first:  # Redis's confirmation of the subscription drains what waited (``_read``)
            await self._pubsub.subscribe(self.keys.visitor_channel(self._name(sender)))
        else:
            await self._drain(sender)

    def leave(self, sender: str, sid: str) -> bool:
        """The socket is gone (no await: nothing is emitted to it, nor counted as delivered, from here on); True when
        it was the session's last one here."""
        sids = self.local.get(sender)
        if sids is not None:
            sids.discard(sid)
        self.titles.pop(sid, None)
        if sids:
            return False
        self.local.pop(sender, None)
        self.recent.pop(sender, None)
        return True

    async def detach(self, sender: str, sid: str) -> None:
        last = self.leave(sender, sid)
        with contextlib.suppress(KeyError, ValueError):
            await self.sio.leave_room(sid, sender)
        if last:
            with contextlib.suppress(aioredis.RedisError):
                await self._pubsub.unsubscribe(self.keys.visitor_channel(self._name(sender)))

    async def _drain(self, sender: str) -> None:
        """What the session's outbox holds, to its sockets here (in order), then out of the outbox."""
        if not self.local.get(sender):
            return
        entries = await self.redis.xrange(self.keys.visitor_outbox(self._name(sender)))
        emitted = [entry_id for entry_id, fields in entries if await self._emit(sender, entry_id, fields[b"f"])]
        await self.ack(sender, emitted)

    async def _emit(self, sender: str, entry_id: bytes, data: bytes | str) -> bool:
        """Emit a message to the session's sockets here; False when there is none (it stays in the outbox for the
        next connection). An id emitted here already is not emitted again (True: it may be deleted)."""
        sids = self.local.get(sender)
        if not sids or not self.delivering:
            return False
        seen = self.recent.setdefault(sender, {})
        if entry_id in seen:
            return True
        seen[entry_id] = None
        if len(seen) > RECENT:
            del seen[next(iter(seen))]
        for payload in json.loads(self.keys.unseal(data))["m"]:
            for reply in payload.get("quick_replies", ()):
                for sid in sids:
                    titles = self.titles.setdefault(sid, {})
                    titles[reply["payload"]] = reply["title"]
                    while len(titles) > MAX_TITLES:
                        titles.pop(next(iter(titles)))
            await self.sio.emit(self.event, payload, room=sender)
        return True

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
                        entry_id, _, data = message["data"].partition(b" ")
                        if not _STREAM_ID.match(entry_id):  # a process of the version before: no id, not kept
                            await self._emit(sender, uuid.uuid4().bytes, message["data"])
                        elif await self._emit(sender, entry_id, data):
                            await self.ack(sender, [entry_id])
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
        self.hub.delivering = False  # what arrives from now on waits in Redis for the socket's next connection
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
        self.clients[sid] = _Client(sid, request.config_dict[SERVER_KEY], ui_lang(request))

    async def _disconnect(self, sid: str, *_reason: Any) -> None:
        client = self.clients.pop(sid, None)
        if client is None:
            return
        if client.sender:  # at once: what arrives for the session from now on waits for its next connection
            self.hub.leave(client.sender, sid)
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
        log_failure(log, f"socket.io {what} failed", exc)


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
