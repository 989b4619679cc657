"""Web chat: Rasa-compatible REST channel, WebSocket ``/ws/chat`` and the widget page.

Frames for a visitor go through Redis: each gets a per-visitor ``seq``, is kept in the
visitor's outbox stream (replayed after a reconnect) and published on the visitor's pub/sub
channel, so whichever gateway process holds the visitor's WebSocket delivers it. One script
numbers, keeps and publishes a turn's frames, so frames are published in the order of their seqs
even when two processes publish to one visitor at once (a socket is sent a frame only when its seq
is above the last it was sent, and the page does the same). A new socket is sent the replay once
Redis confirmed its subscription, then what arrived live meanwhile: nothing published while it
connects is missed or sent before the hello. No subscriber count is used (on a Redis Cluster
``PUBLISH`` counts one node's subscribers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import orjson
import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from gateway import edge, tasks, websec
from gateway.channels.base import NO_COMMANDS, Adapter, Capabilities, Host
from gateway.channels.webchat_greeting import Greeting
from gateway.errors import BadRequest, Forbidden, GatewayError, is_outage, log_failure, warn_outage
from gateway.keys import METRICS, SERVER_KEY, SETTINGS
from gateway.models import InboundMessage, OutboundMessage
from gateway.pages import PAGES, TEMPLATES, ui_lang
from gateway.rkeys import Keys
from gateway.security import SESSION, check_visitor, new_visitor, session_sender, verify_customer_token
from gateway.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "webchat"
REST_CHANNEL = "rest"
MAX_SENDER = 128
# a sender or message id names Redis keys: printable, no hash-tag braces, no control characters
ID_PATTERN = r"^[^{}\x00-\x1f\x7f]+$"
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SENDER, pattern=ID_PATTERN)]
# "~" is kept for the gateway's own session namespaces (``<sender>~<hash>``)
Sender = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SENDER, pattern=r"^[^{}~\x00-\x1f\x7f]+$")]


class RestMetadata(msgspec.Struct):
    """What the REST channel reads of ``metadata`` (other keys are the client's own and ignored)."""

    token: str | None = None  # a customer JWT (webchat.token_secret)
    session: str | None = None  # the secret a one-time-code binding issued
    message_id: Id | int | None = None
    lang: str | None = None  # zh | en; anything else is ignored


class RestBody(msgspec.Struct):
    """``POST /webhooks/rest/webhook``: Rasa's REST channel body."""

    sender: Sender
    message: str
    metadata: RestMetadata | None = None


class ChatFrame(msgspec.Struct):
    """A customer's WebSocket frame: ``message`` (text, client_id, display, lang), ``typing`` or ``lang``."""

    type: str
    text: str | None = None
    client_id: Id | int | None = None
    display: str | None = None
    lang: str | None = None


# A visitor's frames: numbered, kept and published in one step. KEYS: the visitor's seq counter, outbox. ARGV: channel,
# MAXLEN, n, then each frame's JSON up to its seq's value (it ends '"seq": '), then each frame sealed (its seq in the
# entry's field s). Returns the last seq.
_PUBLISH = """
local n = tonumber(ARGV[3])
if KEYS[3] and not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4 + 2 * n]) then return 0 end
local last = redis.call('INCRBY', KEYS[1], n)
local parts = {}
for i = 1, n do
  local seq = last - n + i
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 's', seq, 'f', ARGV[3 + n + i])
  parts[i] = ARGV[3 + i] .. seq .. '}'
end
if n == 1 then
  redis.call('PUBLISH', ARGV[1], parts[1])
else
  redis.call('PUBLISH', ARGV[1], '[' .. table.concat(parts, ',') .. ']')
end
return last
"""
SUBSCRIBE_WAIT = 10.0  # seconds a new socket waits for Redis to confirm its visitor's subscription
PUBLISHED_TTL = 7 * 86400  # a message's "frames published" mark: longer than the page keeps it to send again


class WebchatHub:
    """This process's customer WebSockets, fed from Redis pub/sub."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, replay_limit: int) -> None:
        self.redis = redis
        self.keys = keys
        self.replay_limit = replay_limit
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.sent: dict[web.WebSocketResponse, int] = {}
        self.held: dict[web.WebSocketResponse, list[dict[str, Any]]] = {}  # live frames of a socket being replayed to
        self._confirmed: dict[str, asyncio.Future[None]] = {}  # visitor → its subscription's confirmation, awaited
        self._pubsub = redis.pubsub()  # subscribe confirmations wanted: a new socket's replay waits for one
        self._script = redis.register_script(_PUBLISH)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._pubsub.subscribe(self.keys.visitor_channel("_hub"))  # keeps the connection listening
        self._reader = asyncio.create_task(self._read())

    async def close_all(self) -> None:
        """Close every customer WebSocket (graceful shutdown: clients reconnect and replay)."""
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001, message=b"server shutting down")

    async def stop(self) -> None:
        await self.close_all()
        await tasks.stop(self._reader)
        for waiter in self._confirmed.values():  # no confirmation will come: a socket still connecting closes
            if not waiter.done():
                waiter.set_exception(aioredis.ConnectionError("the web chat hub stopped"))
                waiter.exception()  # retrieved: asyncio logs none when no socket was waiting
        await self._pubsub.aclose()

    async def publish(self, visitor: str, frame: dict[str, Any]) -> int:
        return (await self.publish_many(visitor, [frame]))[-1]

    async def publish_many(self, visitor: str, frames: list[dict[str, Any]], once: str | None = None) -> list[int]:
        """A visitor's frames in order (a message's echo and its replies): numbered, kept (encrypted at rest: the
        replay) and published as one pub/sub message (a JSON list when there are several) by one script — one round
        trip and one delivery per turn. ``once``: the message's client id — its frames are published once, however
        often this is called for it (a turn handled again as a duplicate publishes what its first handling could
        not); [] when they were published already."""
        texts = [json.dumps({**{k: v for k, v in f.items() if k != "seq"}, "seq": 0}, ensure_ascii=False)
                 for f in frames]  # fmt: skip
        keys = [self.keys.visitor_seq(visitor), self.keys.visitor_outbox(visitor)]
        args: list[Any] = [self.keys.visitor_channel(visitor), self.replay_limit, len(texts),
                           *(t[:-2] for t in texts), *(self.keys.seal(t) for t in texts)]  # fmt: skip
        if once is not None:
            keys.append(self.keys.visitor_published(visitor, once))
            args.append(PUBLISHED_TTL)
        last = int(await self._script(keys=keys, args=args))
        if not last:
            return []
        return list(range(last - len(frames) + 1, last + 1))

    async def replay(self, visitor: str, after: int) -> list[dict[str, Any]]:
        """The kept frames after seq ``after`` (at most ``replay_limit``), oldest first: read newest first, a few
        at a time when ``after`` is given (a reconnect usually missed few), up to the first one at or below it."""
        key, frames, end, left = self.keys.visitor_outbox(visitor), [], "+", self.replay_limit
        count = min(16, left) if after else left
        while left > 0:
            entries = await self.redis.xrevrange(key, max=end, count=count)
            for entry_id, fields in entries:
                seq = fields.get(b"s")  # beside the frame (entries kept before the script: only in the frame)
                if seq is not None and int(seq) <= after:
                    return sorted(frames, key=lambda f: f["seq"])
                frame = json.loads(self.keys.unseal(fields[b"f"]))
                if seq is not None:
                    frame["seq"] = int(seq)
                if frame["seq"] > after:
                    frames.append(frame)
                end = f"({entry_id.decode()}"
            left -= len(entries)
            if len(entries) < count:
                break
            count = min(left, self.replay_limit)
        return sorted(frames, key=lambda f: f["seq"])

    async def _resync(self, visitor: str) -> None:
        """The visitor's channel subscribed again (the pub/sub connection was re-made): what was published while it
        was away, to the visitor's sockets here."""
        sockets = list(self.sockets.get(visitor, ()))
        if sockets:
            for frame in await self.replay(visitor, min(self.sent.get(ws, 0) for ws in sockets)):
                for ws in sockets:
                    await self.deliver(ws, frame)

    async def attach(self, visitor: str, ws: web.WebSocketResponse, last_seq: int) -> None:
        """The socket listens for the visitor's frames once Redis confirmed the subscription; until ``release``,
        what arrives for it is held."""
        self.held[ws] = []
        self.sent[ws] = last_seq
        first = not self.sockets[visitor]
        self.sockets[visitor].add(ws)
        if first:
            self._confirmed[visitor] = asyncio.get_running_loop().create_future()
            await self._pubsub.subscribe(self.keys.visitor_channel(visitor))
        if visitor in self._confirmed:
            try:
                await asyncio.wait_for(asyncio.shield(self._confirmed[visitor]), SUBSCRIBE_WAIT)
            except TimeoutError:
                raise aioredis.ConnectionError("no confirmation of the web chat subscription") from None

    async def release(self, ws: web.WebSocketResponse, history: list[dict[str, Any]]) -> None:
        """The replay to a new socket, then what arrived live meanwhile (each frame once, by seq)."""
        for frame in history:
            await self._send(ws, frame)
        while held := self.held.get(ws):
            self.held[ws] = []
            for frame in sorted(held, key=lambda f: f.get("seq", 0)):
                await self._send(ws, frame)
        self.held.pop(ws, None)

    async def detach(self, visitor: str, ws: web.WebSocketResponse) -> None:
        self.sockets[visitor].discard(ws)
        self.sent.pop(ws, None)
        self.held.pop(ws, None)
        if not self.sockets[visitor]:
            del self.sockets[visitor]
            with contextlib.suppress(aioredis.RedisError):
                await self._pubsub.unsubscribe(self.keys.visitor_channel(visitor))

    async def publish_ephemeral(self, visitor: str, frame: dict[str, Any]) -> None:
        """A frame that is not kept for replay (an agent typing)."""
        data = json.dumps({**frame, "ephemeral": True}, ensure_ascii=False)
        await self.redis.publish(self.keys.visitor_channel(visitor), data)

    async def deliver(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        held = self.held.get(ws)
        if held is not None:  # the socket's replay is being sent: after it
            held.append(frame)
            return
        await self._send(ws, frame)

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        if frame.get("ephemeral"):
            if not ws.closed:
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(json.dumps(frame, ensure_ascii=False))
            return
        if frame.get("seq", 0) <= self.sent.get(ws, 0) or ws.closed:
            return
        self.sent[ws] = frame["seq"]
        with contextlib.suppress(ConnectionResetError):
            await ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def _read(self) -> None:
        prefix = self.keys.visitor_channel("")
        while True:
            try:
                async for message in self._pubsub.listen():
                    visitor = message["channel"].decode()[len(prefix) :]
                    if message["type"] == "subscribe":
                        waiter = self._confirmed.pop(visitor, None)
                        if waiter is None:
                            await self._resync(visitor)
                        elif not waiter.done():
                            waiter.set_result(None)
                        continue
                    if message["type"] != "message":
                        continue
                    payload = orjson.loads(message["data"])
                    for frame in payload if isinstance(payload, list) else (payload,):  # a turn's frames: a list
                        for ws in list(self.sockets.get(visitor, ())):
                            await self.deliver(ws, frame)
            except asyncio.CancelledError:
                raise
            except (aioredis.ConnectionError, OSError):
                log.warning("web chat pub/sub connection lost; reconnecting")
                await asyncio.sleep(0.5)
            except Exception:  # one bad frame must not stop delivery to every socket of this process
                log.exception("web chat pub/sub reader failed; going on")
                await asyncio.sleep(0.1)
                # a reconnect replays nothing by itself: clients ask for what they missed on reconnect


# ---- helpers ------------------------------------------------------------------------------------
def _identity(token: str | None, settings: Settings) -> str | None:
    if not token:
        return None
    return verify_customer_token(token, settings.webchat.token_secret, settings.webchat.max_token_age)


def _session(request: web.Request, meta: RestMetadata, settings: Settings) -> str | None:
    """The REST client's binding session: ``metadata.session``, the ``X-Chat-Session`` header or the cookie."""
    cookie = request.cookies.get(settings.webchat.session_cookie)
    value = meta.session or request.headers.get("X-Chat-Session") or cookie
    if not value:
        return None
    if not SESSION.match(value):
        raise BadRequest("'session' is not a session this gateway issued", zh="会话标识无效", field="session")
    return value


def _origin_allowed(request: web.Request, settings: Settings) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser (curl, a server-side client): nothing to protect against
    allowed = {URL(o).origin() for o in settings.webchat.allowed_origins if o}
    allowed.add(URL(settings.public_url).origin())
    allowed.add(URL.build(scheme=request.scheme, host=request.host.rsplit(":", 1)[0], port=request.url.port).origin())
    with contextlib.suppress(ValueError):
        return URL(origin).origin() in allowed
    return False


# ---- handlers -----------------------------------------------------------------------------------
async def rest_webhook(request: web.Request) -> web.Response:
    """Rasa REST channel: ``{"sender", "message", "metadata"?}`` → ``[{"recipient_id", "text", "buttons"?}]``."""
    settings = request.config_dict[SETTINGS]
    body = await edge.json_body(request, RestBody, settings.webchat.max_body_bytes)
    if not body.sender.strip():
        raise BadRequest("'sender' is required and must be a non-empty string", field="sender")
    meta = body.metadata or RestMetadata()
    channel = request.config_dict[WEBCHAT]
    text = channel.host.check_text(body.message, "message")
    phone = _identity(meta.token, settings)
    session = None if phone else _session(request, meta, settings)
    # a sender is the client's own string: only a session (or a token) carries an account binding
    sender = session_sender(body.sender, session) if session else body.sender
    message_id = str(meta.message_id) if meta.message_id is not None else uuid.uuid4().hex
    if len(message_id) > MAX_SENDER:
        raise BadRequest(f"'metadata.message_id' is longer than {MAX_SENDER} characters", field="metadata.message_id")
    lang = meta.lang if meta.lang in {"zh", "en"} else None
    # without a token or a session, a one-time-code binding here must hand out a session
    inbound = InboundMessage(REST_CHANNEL, sender, sender, text, message_id, time.time(), {"message_id": message_id},
                             phone, lang, issue_session=not phone and not session)  # fmt: skip
    turn = await channel.host.handle(inbound)
    replies = [{**r.to_rasa(), "recipient_id": body.sender} for r in turn.replies]
    if turn.session:  # just bound: the session goes back as a custom payload, a header and an HttpOnly cookie
        replies.append({"recipient_id": body.sender, "custom": {"session": turn.session}})
    response = web.Response(body=orjson.dumps(replies), content_type="application/json")
    if turn.session:
        response.headers["X-Chat-Session"] = turn.session
        age = settings.bots.binding_ttl_days * 86400
        response.set_cookie(settings.webchat.session_cookie, turn.session, max_age=age, httponly=True, samesite="Lax",
                            secure=websec.is_secure(request))  # fmt: skip
    return response


async def widget_page(request: web.Request) -> web.Response:
    settings = request.config_dict[SETTINGS]
    token = edge.text(request.query.get("token"), "token", 4096, required=False)
    html = PAGES.get_template("pages/widget.html").render(lang=ui_lang(request), token=token, static_prefix="/static",
                                                        max_chars=settings.pipeline.max_message_chars)  # fmt: skip
    response = web.Response(text=html, content_type="text/html")
    key = request.config_dict[SERVER_KEY]
    if not check_visitor(request.cookies.get(settings.webchat.cookie_name), key):
        response.set_cookie(settings.webchat.cookie_name, new_visitor(key), max_age=30 * 86400, httponly=True,
                            samesite="Lax", secure=websec.is_secure(request))  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


async def widget_js(request: web.Request) -> web.FileResponse:
    return web.FileResponse(TEMPLATES / "static" / "widget.js", headers={"Cache-Control": "max-age=300"})


async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    settings = request.config_dict[SETTINGS]
    if not _origin_allowed(request, settings):
        raise Forbidden(f"origin {request.headers.get('Origin')!r} is not allowed to open the chat")
    phone = _identity(edge.text(request.query.get("token"), "token", 4096, required=False), settings)
    # a visitor id is one this server issued (signed): the cookie, else the query (a client without cookies)
    key = request.config_dict[SERVER_KEY]
    visitor = check_visitor(request.cookies.get(settings.webchat.cookie_name), key) or check_visitor(
        request.query.get("visitor_id"), key) or new_visitor(key)  # fmt: skip
    last_seq = edge.integer(request.query.get("last_seq", "0"), "last_seq", 0, 2**53)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=settings.webchat.max_body_bytes)
    await ws.prepare(request)
    session = _Session(request, ws, visitor, phone, ui_lang(request))
    hub, metrics = request.config_dict[WEBCHAT].hub, request.config_dict[METRICS]
    metrics.websockets.inc()
    try:  # past the upgrade nothing may escape as an HTTP response: the socket says what went wrong and closes
        await hub.attach(visitor, ws, last_seq)
        history = await hub.replay(visitor, last_seq)
        hello: dict[str, Any] = {"type": "hello", "visitor_id": visitor, "last_seq": last_seq}
        if not last_seq and not history:  # an empty conversation: the greeting and its starters (not kept)
            hello["greeting"] = request.config_dict[WEBCHAT].greeting.frame(phone)
        await ws.send_json(hello, dumps=lambda o: json.dumps(o, ensure_ascii=False))
        await hub.release(ws, history)
        async with session.worker():
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await session.on_frame(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await session.error("frames are JSON text, not binary", "消息须为 JSON 文本")
                elif msg.type == WSMsgType.ERROR:
                    break
    except Exception as exc:
        if not is_outage(exc):
            log.exception("web chat socket failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
        else:  # Redis is away: the widget reconnects (and replays) once it is back
            warn_outage("web chat socket closed", exc)
            with contextlib.suppress(ConnectionResetError):
                await session.error("the chat is unavailable for a moment; reconnecting", "服务暂时不可用，正在重连")
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"store unavailable")
    finally:
        with contextlib.suppress(aioredis.RedisError, OSError):
            await hub.detach(visitor, ws)
        metrics.websockets.dec()
    return ws


class _Session:
    """One customer WebSocket: frames in, one worker handling messages in order."""

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, visitor: str, phone: str | None, lang: str
    ) -> None:
        self.app = request.config_dict
        self.ws, self.visitor, self.phone, self.lang = ws, visitor, phone, lang
        self.queue: asyncio.Queue[InboundMessage] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._work())
        try:
            yield
        finally:
            if not task.done():  # the socket closed: finish what the customer already sent (nothing lost)
                await self.queue.join()
            await tasks.stop(task)

    async def error(self, message: str, zh: str = "") -> None:
        if not self.ws.closed:
            await self.ws.send_json({"type": "error", "error": message, "error_zh": zh or "消息格式有误"},
                                    dumps=lambda o: json.dumps(o, ensure_ascii=False))  # fmt: skip

    async def on_frame(self, data: str) -> None:
        try:
            frame = edge.decode(data, ChatFrame, "frame")
        except GatewayError as exc:
            return await self.error(exc.message, exc.zh)
        kind = frame.type
        if kind == "message":
            return await self._message(frame)
        if kind == "lang" and frame.lang in {"zh", "en"}:
            self.lang = frame.lang
            return None
        if kind == "typing":  # reaches the agent when a person holds the conversation
            with contextlib.suppress(Exception):
                await self.app[WEBCHAT].host.customer_typing(CHANNEL, self.visitor)
            return None
        return await self.error(f"unknown frame type {kind!r}; expected message, typing or lang")

    async def _message(self, frame: ChatFrame) -> None:
        try:
            text = self.app[WEBCHAT].host.check_text(frame.text)
        except BadRequest as exc:
            return await self.error(f"message not sent: {exc.message}", "消息未发送：内容为空、过长或含无效字符")
        client_id = str(frame.client_id)[:64] if frame.client_id is not None else uuid.uuid4().hex
        lang = frame.lang if frame.lang in {"zh", "en"} else self.lang
        display = frame.display or text
        inbound = InboundMessage(CHANNEL, self.visitor, self.visitor, text, client_id, time.time(), {}, self.phone,
                                 lang, display=display[:200])  # fmt: skip
        await self.queue.put(inbound)
        return None

    async def _work(self) -> None:
        channel = self.app[WEBCHAT]
        hub = channel.hub
        while True:
            inbound = await self.queue.get()
            try:
                turn = await channel.host.handle(inbound)
                echo = {"type": "message", "from": "customer", "text": inbound.display or inbound.text,
                        "client_id": inbound.message_id}  # fmt: skip
                mine = [r.to_dict() for r in turn.replies if r.recipient_id == self.visitor]
                # once per client id: a page sending a message again whose turn finished but whose frames were never
                # published (the handling failed in between) gets them now, from the turn's record; otherwise nothing
                published = await hub.publish_many(self.visitor, [echo, *mine], once=inbound.message_id)
                if published and not turn.duplicate:
                    for reply in turn.replies:
                        if reply.recipient_id != self.visitor:
                            await publish_outbound(hub, reply)
            except GatewayError as exc:
                await self.error(exc.message, exc.zh)
            except Exception as exc:
                log_failure(log, "web chat turn failed", exc)
                await self.error("sorry, something went wrong; please send it again", "抱歉，出了点问题，请重新发送")
            finally:
                self.queue.task_done()


async def publish_outbound(hub: WebchatHub, message: OutboundMessage) -> int:
    return await hub.publish(message.recipient_id, message.to_dict())


class WebChat:
    """The web chat channel: customer WebSockets (fed through Redis, so any process can deliver) and, without
    a pusher of its own, the Rasa REST channel, whose late answers wait for the sender's next request."""

    name = CHANNEL
    capabilities = Capabilities(push=True, buttons=True)
    commands = NO_COMMANDS
    outbox = None

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.hub = WebchatHub(host.redis, host.keys, settings.webchat.replay_limit)
        self.greeting = Greeting(host, settings.source)

    def state(self) -> str:
        return "ready"

    async def start(self) -> None:
        self.greeting.check()
        await self.hub.start()

    async def shutdown(self) -> None:
        """Close every customer WebSocket first (they reconnect to another process and replay)."""
        await self.hub.close_all()

    async def close(self) -> None:
        await self.hub.stop()

    async def push(self, message: OutboundMessage) -> int:
        """A late answer or an agent's message reaches the visitor; typing is not kept for replay."""
        if message.kind == "typing":
            await self.hub.publish_ephemeral(message.recipient_id, message.to_dict())
            return 0
        return await publish_outbound(self.hub, message)


WEBCHAT: web.AppKey[WebChat] = web.AppKey("webchat_channel")


def _routes(_settings: Settings) -> list[web.RouteDef]:
    return [
        web.post("/webhooks/rest/webhook", rest_webhook),
        web.get("/ws/chat", chat_socket),
        web.get("/", widget_page),
        web.get("/widget.js", widget_js),
        web.static("/static", TEMPLATES / "static"),  # type: ignore[list-item]
    ]


ADAPTER = Adapter(CHANNEL, WEBCHAT, lambda _s: True, WebChat, _routes)
