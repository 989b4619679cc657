"""A fake WeChat Official Account platform (公众号) for end-to-end tests — both directions of the real wire format.

1. **The API server** (what ``https://api.weixin.qq.com/cgi-bin/`` does), on 127.0.0.1:<random port>; ``api_base``
   replaces the real base URL:

   * ``GET token?grant_type=client_credential&appid=..&secret=..`` → ``{"access_token": "...", "expires_in": 7200}``.
     Every successful call issues a NEW token and invalidates the earlier ones (→ 40001), as WeChat does.
   * ``POST message/custom/send?access_token=T`` with a JSON body (the customer-service message API) and
     ``POST message/custom/typing?access_token=T`` (``{"touser", "command": "Typing"|"CancelTyping"}``).

   Answers are always HTTP 200 with ``{"errcode": n, "errmsg": "..."}`` (0 / "ok" on success), except when ``down``
   (HTTP 502 with nginx's HTML page). Errors are keyed by ``errcode``: the real service appends ``" rid: ..."`` (and
   sometimes hints) to ``errmsg``, so a client must never compare ``errmsg``.

2. **The push side**: what WeChat's servers send to the official account's URL (the gateway). ``verify_query`` builds
   the GET URL check, ``text_xml``/``event_xml``/… the message XML, ``push`` signs it (plaintext mode) or encrypts it
   with wechatpy's own ``WeChatCrypto`` (safe mode, ``encrypt_type=aes``), ``post``/``post_like_wechat`` deliver it,
   and ``decrypt_reply``/``reply_text`` read the gateway's passive reply (verifying ``MsgSignature`` in safe mode).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.messages import BaseMessage, TextMessage
from wechatpy.utils import WeChatSigner

# The EncodingAESKey of WeChat's own encryption sample code (any 43 chars of [A-Za-z0-9] are a valid key).
DEFAULT_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_JSON_HEADERS = {"Content-Type": "application/json; encoding=utf-8"}  # what api.weixin.qq.com sends
_PUSH_HEADERS = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0", "Accept": "*/*", "Pragma": "no-cache"}

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40066: "invalid url",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    44004: "empty content",
    45002: "content size out of limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
}
MAX_TEXT_BYTES = 2048  # text.content of a customer-service message, in UTF-8 bytes
_MSGTYPES = {
    "text",
    "image",
    "voice",
    "video",
    "music",
    "news",
    "mpnews",
    "mpnewsarticle",
    "msgmenu",
    "wxcard",
    "miniprogrampage",
}


def openid(seed: int | str) -> str:
    """A realistic, stable openid for ``seed``: 28 chars of [A-Za-z0-9_-] starting with "o" (what WeChat issues)."""
    digest = base64.urlsafe_b64encode(hashlib.sha1(f"openid:{seed}".encode()).digest()).decode().rstrip("=")
    return "o" + digest[:27]


def new_aes_key() -> str:
    """A random EncodingAESKey: 43 chars of [A-Za-z0-9], as the 公众平台 console generates."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))


def _valid_aes_key(key: str) -> bool:
    try:
        return len(key) == 43 and len(base64.b64decode(key + "=", validate=True)) == 32
    except ValueError:
        return False


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it over two, as XML writers do.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: list[tuple[str, str | int | float]]) -> str:
    """WeChat's push layout: strings in CDATA, numbers bare, one element per line."""
    nodes = [f"<{name}>{_cdata(value) if isinstance(value, str) else value}</{name}>" for name, value in fields]
    return "<xml>" + "\n".join(nodes) + "\n</xml>"


def _sign(*parts: str) -> str:
    """sha1 of the sorted, concatenated parts — wechatpy's WeChatSigner (what utils.check_signature uses)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


class FakeWeChat:
    """The WeChat API server and WeChat's push side for one official account; see the module docstring."""

    def __init__(
        self,
        appid: str = "wx1234567890abcdef",
        secret: str = "wechat-app-secret",
        token: str = "wechat-token",
        encoding_aes_key: str = DEFAULT_AES_KEY,
        old_aes_key: str | None = None,
        *,
        original_id: str = "gh_3f8a2c9d1e7b",
    ) -> None:
        for key in (encoding_aes_key, old_aes_key):
            if key is not None and not _valid_aes_key(key):
                raise ValueError(f"not a valid EncodingAESKey (43 base64 chars): {key!r}")
        self.appid = appid
        self.secret = secret
        self.token = token  # the "Token" configured for the server URL (signatures), not an access_token
        self.encoding_aes_key = encoding_aes_key
        self.old_aes_key = old_aes_key
        self.original_id = original_id  # the account's 原始ID: ToUserName of pushes, FromUserName of replies
        self.expires_in = 7200
        self.url = ""  # http://127.0.0.1:<port>
        self.api_base = ""  # http://127.0.0.1:<port>/cgi-bin/
        # API server state and controls
        self.token_requests = 0  # every GET /cgi-bin/token, failed ones included
        self.tokens_issued: list[str] = []
        self.sent: list[dict] = []  # accepted message/custom/send bodies (parsed JSON)
        self.typing: list[dict] = []  # accepted message/custom/typing bodies
        self.calls: list[dict] = []  # every API call: {"path", "query", "body", "response"}; not when down
        self.down = False
        self.window_closed: set[str] = set()  # openids outside the 48-hour window → 45015
        self.quota: dict[str, int] = {}  # openid → sends left in its window (→ 45047 at 0); absent = unlimited
        self._tokens: dict[str, str] = {}  # access_token → "valid" | "expired" | "revoked"
        self._failures: list[list[Any]] = []  # [endpoint, remaining, errcode, errmsg]
        self._msg_ids = itertools.count(24_347_000_000_000_001)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/{path:.*}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.url}/cgi-bin/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeChat:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ API controls and inspection

    @property
    def access_token(self) -> str | None:
        """The latest token issued (valid unless ``expire_tokens`` was called since)."""
        return self.tokens_issued[-1] if self.tokens_issued else None

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001 "access_token expired"."""
        for token in self._tokens:
            self._tokens[token] = "expired"

    def fail(
        self, times: int, errcode: int = -1, errmsg: str = "system error", *, endpoint: str = "message/custom/send"
    ) -> None:
        """The next ``times`` calls of ``endpoint`` ("token", "message/custom/send", "*") answer that error JSON.

        For the message endpoints the failure comes after the access_token check (a bad token still gives 40001)."""
        self._failures.append([endpoint, times, errcode, errmsg])

    def texts_to(self, openid: str) -> list[str]:
        return [m["text"]["content"] for m in self.sent if m.get("touser") == openid and m.get("msgtype") == "text"]

    def sent_to(self, openid: str) -> list[dict]:
        return [m for m in self.sent if m.get("touser") == openid]

    async def wait_sent(self, count: int, timeout: float = 5.0, openid: str | None = None) -> list[dict]:
        """Waits until ``count`` messages (to ``openid``) were accepted; returns all of them.

        Raises AssertionError (listing the API calls) on timeout."""

        def matching() -> list[dict]:
            return [m for m in self.sent if openid is None or m.get("touser") == openid]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := matching()) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(c["path"], c["body"], c["response"]) for c in self.calls]
                raise AssertionError(f"expected {count} custom message(s), got {len(found)}; API calls: {seen!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return found

    def reset(self) -> None:
        self.sent.clear()
        self.typing.clear()
        self.calls.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ API server

    async def _not_found(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        return web.Response(status=404, text="404 Not Found", content_type="text/plain")

    @staticmethod
    def _error(errcode: int, errmsg: str | None = None) -> dict:
        return {"errcode": errcode, "errmsg": errmsg if errmsg is not None else ERRMSG.get(errcode, "system error")}

    async def _handle(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        path = request.match_info["path"].strip("/")
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = raw.decode("utf-8", "replace")
        if path == "token":
            answer = self._token(request)
        elif path == "message/custom/send":
            answer = self._custom(request, path, body, raw, self._check_send)
        elif path == "message/custom/typing":
            answer = self._custom(request, path, body, raw, self._check_typing)
        else:
            answer = self._error(40066)
        self.calls.append({"path": path, "query": dict(request.query), "body": body, "response": answer})
        self._changed.set()
        return web.Response(body=json.dumps(answer, ensure_ascii=False).encode("utf-8"), headers=_JSON_HEADERS)

    def _injected(self, endpoint: str) -> dict | None:
        for failure in self._failures:
            target, remaining, errcode, errmsg = failure
            if remaining > 0 and target in ("*", endpoint):
                failure[1] -= 1
                if failure[1] <= 0:
                    self._failures.remove(failure)
                return self._error(errcode, errmsg)
        return None

    def _token(self, request: web.Request) -> dict:
        self.token_requests += 1
        if (failure := self._injected("token")) is not None:
            return failure
        query = request.query
        if query.get("grant_type") != "client_credential":
            return self._error(40002)
        if not query.get("appid"):
            return self._error(41002)
        if query["appid"] != self.appid:
            return self._error(40013)
        if not query.get("secret"):
            return self._error(41004)
        if query["secret"] != self.secret:
            return self._error(40125)
        for token, state in self._tokens.items():
            if state == "valid":
                self._tokens[token] = "revoked"
        token = f"{len(self.tokens_issued) + 84}_" + secrets.token_urlsafe(96).replace("-", "_")[:128]
        self._tokens[token] = "valid"
        self.tokens_issued.append(token)
        return {"access_token": token, "expires_in": self.expires_in}

    def _custom(
        self, request: web.Request, path: str, body: Any, raw: bytes, check: Callable[[dict], dict | None]
    ) -> dict:
        token = request.query.get("access_token")
        if not token:
            return self._error(41001)
        state = self._tokens.get(token)
        if state == "expired":
            return self._error(42001)
        if state != "valid":
            return self._error(40001)
        if (failure := self._injected(path)) is not None:
            return failure
        if not raw or not isinstance(body, dict):
            return self._error(47001)
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return self._error(40003)
        if (error := check(body)) is not None:
            return error
        if touser in self.window_closed:
            return self._error(45015)
        if path == "message/custom/typing":
            self.typing.append(body)
            return self._error(0, "ok")
        if touser in self.quota:
            if self.quota[touser] <= 0:
                return self._error(45047)
            self.quota[touser] -= 1
        self.sent.append(body)
        return self._error(0, "ok")

    def _check_send(self, body: dict) -> dict | None:
        msgtype = body.get("msgtype")
        if msgtype not in _MSGTYPES:
            return self._error(40008)
        payload = body.get(msgtype)
        if not isinstance(payload, dict):
            return self._error(47001)
        if msgtype == "text":
            content = payload.get("content")
            if not isinstance(content, str):
                return self._error(47001)
            if not content:
                return self._error(44004)
            if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
                return self._error(45002)
        elif msgtype == "msgmenu":
            items = payload.get("list")
            if not isinstance(items, list) or not items:
                return self._error(47001)
            for item in items:
                if not isinstance(item, dict) or not item.get("id") or not isinstance(item.get("content"), str):
                    return self._error(47001)
            for field in ("head_content", "tail_content"):
                if field in payload and not isinstance(payload[field], str):
                    return self._error(47001)
        elif msgtype in ("image", "voice") and not payload.get("media_id"):
            return self._error(40007)
        return None

    def _check_typing(self, body: dict) -> dict | None:
        if body.get("command") not in ("Typing", "CancelTyping"):
            return self._error(47001)
        return None

    # ------------------------------------------------------------------ what WeChat pushes to the account's URL

    @staticmethod
    def _nonce() -> str:
        return str(secrets.randbelow(9 * 10**9) + 10**9)  # WeChat's nonces are decimal digits

    def _now(self, create_time: int | None) -> int:
        return int(time.time()) if create_time is None else create_time

    def _msg_id(self, msg_id: int | None) -> int:
        return next(self._msg_ids) if msg_id is None else msg_id

    def verify_query(
        self, echostr: str = "5838479218127813673", *, timestamp: int | None = None, nonce: str | None = None
    ) -> dict[str, str]:
        """The query of WeChat's GET URL check (the same in plaintext and safe mode for an official account):
        the gateway must check ``signature`` and answer the ``echostr`` as is (text/plain)."""
        ts = str(self._now(timestamp))
        nonce = nonce or self._nonce()
        return {"signature": _sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": echostr}

    async def verify(self, url: str, echostr: str = "5838479218127813673") -> tuple[int, str]:
        """Performs the GET URL check against ``url``; returns (HTTP status, body) — a pass is (200, echostr)."""
        async with aiohttp.ClientSession() as session, session.get(url, params=self.verify_query(echostr)) as resp:
            return resp.status, (await resp.read()).decode("utf-8", "replace")

    def text_xml(
        self,
        openid: str,
        content: str,
        msg_id: int | None = None,
        create_time: int | None = None,
        *,
        bizmsgmenuid: str | None = None,
    ) -> str:
        """A text message. ``bizmsgmenuid``: the user tapped an option of a ``msgmenu`` message — WeChat then pushes
        a text message whose Content is the option's content, with ``<bizmsgmenuid>`` = the option's id."""
        fields: list[tuple[str, str | int | float]] = [
            ("ToUserName", self.original_id),
            ("FromUserName", openid),
            ("CreateTime", self._now(create_time)),
            ("MsgType", "text"),
            ("Content", content),
        ]
        if bizmsgmenuid is not None:
            fields.append(("bizmsgmenuid", bizmsgmenuid))
        fields.append(("MsgId", self._msg_id(msg_id)))
        return _xml(fields)

    def event_xml(
        self,
        openid: str,
        event: str,
        event_key: str = "",
        create_time: int | None = None,
        *,
        ticket: str | None = None,
    ) -> str:
        """An event (no MsgId): ``subscribe``, ``unsubscribe``, ``CLICK`` (EventKey = the menu key), ``VIEW``
        (EventKey = the URL), ``SCAN``; a subscribe through a QR code has EventKey ``qrscene_<scene>`` and a Ticket."""
        fields: list[tuple[str, str | int | float]] = [
            ("ToUserName", self.original_id),
            ("FromUserName", openid),
            ("CreateTime", self._now(create_time)),
            ("MsgType", "event"),
            ("Event", event),
            ("EventKey", event_key),
        ]
        if ticket is not None:
            fields.append(("Ticket", ticket))
        return _xml(fields)

    def image_xml(self, openid: str, msg_id: int | None = None, create_time: int | None = None) -> str:
        msg_id = self._msg_id(msg_id)
        return _xml(
            [
                ("ToUserName", self.original_id),
                ("FromUserName", openid),
                ("CreateTime", self._now(create_time)),
                ("MsgType", "image"),
                ("PicUrl", f"http://mmbiz.qpic.cn/mmbiz_jpg/{msg_id:x}/0"),
                ("MsgId", msg_id),
                ("MediaId", f"media_image_{msg_id}"),
            ]
        )

    def voice_xml(
        self, openid: str, msg_id: int | None = None, create_time: int | None = None, *, recognition: str | None = None
    ) -> str:
        """A voice message (amr); ``recognition``: the speech-to-text WeChat adds when recognition is enabled."""
        msg_id = self._msg_id(msg_id)
        fields: list[tuple[str, str | int | float]] = [
            ("ToUserName", self.original_id),
            ("FromUserName", openid),
            ("CreateTime", self._now(create_time)),
            ("MsgType", "voice"),
            ("MediaId", f"media_voice_{msg_id}"),
            ("Format", "amr"),
            ("MsgId", msg_id),
        ]
        if recognition is not None:
            fields.append(("Recognition", recognition))
        return _xml(fields)

    def location_xml(
        self,
        openid: str,
        msg_id: int | None = None,
        create_time: int | None = None,
        *,
        latitude: float = 39.908722,
        longitude: float = 116.397499,
        label: str = "北京市东城区东长安街",
    ) -> str:
        return _xml(
            [
                ("ToUserName", self.original_id),
                ("FromUserName", openid),
                ("CreateTime", self._now(create_time)),
                ("MsgType", "location"),
                ("Location_X", latitude),
                ("Location_Y", longitude),
                ("Scale", 15),
                ("Label", label),
                ("MsgId", self._msg_id(msg_id)),
            ]
        )

    def push(
        self,
        xml: str,
        *,
        safe: bool = False,
        key: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """(query params, body) of the POST WeChat makes for ``xml``.

        Plaintext mode: ``signature, timestamp, nonce, openid`` and the XML itself. Safe mode (``key`` defaults to
        the current EncodingAESKey): also ``encrypt_type=aes, msg_signature`` and the body
        ``<xml><ToUserName/><Encrypt/></xml>``, Encrypt made by wechatpy's ``WeChatCrypto.encrypt_message``."""
        root = xmltodict.parse(xml)["xml"]
        ts = str(self._now(timestamp))
        nonce = nonce or self._nonce()
        params = {
            "signature": _sign(self.token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "openid": root["FromUserName"],
        }
        if not safe:
            return params, xml.encode("utf-8")
        crypto = WeChatCrypto(self.token, key or self.encoding_aes_key, self.appid)
        envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
        encrypt = envelope["Encrypt"]
        if envelope["MsgSignature"] != _sign(self.token, ts, nonce, encrypt):  # wechatpy and the fake agree
            raise AssertionError(
                "wechatpy's msg_signature differs from sha1(sorted([token, timestamp, nonce, encrypt]))"
            )
        params.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        body = (
            f"<xml>\n    <ToUserName>{_cdata(root['ToUserName'])}</ToUserName>\n"
            f"    <Encrypt>{_cdata(encrypt)}</Encrypt>\n</xml>"
        )
        return params, body.encode("utf-8")

    async def _send(self, url: str, params: dict[str, str], body: bytes, timeout: float) -> tuple[int, str, float]:
        """One POST; (status, body, seconds). No answer within ``timeout``: status 0 and body ""; a connection
        failure: status 0 and the error as the body."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.post(url, params=params, data=body, headers=_PUSH_HEADERS) as resp,
            ):
                text = (await resp.read()).decode("utf-8", "replace")
                return resp.status, text, loop.time() - start
        except TimeoutError:
            return 0, "", loop.time() - start
        except aiohttp.ClientError as exc:
            return 0, f"{type(exc).__name__}: {exc}", loop.time() - start

    async def post(
        self, url: str, xml: str, *, safe: bool = False, key: str | None = None, timeout: float = 10.0
    ) -> tuple[int, str, float]:
        """Pushes ``xml`` to the gateway once; returns (HTTP status, response body, seconds taken).
        Status 0: no answer within ``timeout`` (body "") or the connection failed (body = the error)."""
        params, body = self.push(xml, safe=safe, key=key)
        return await self._send(url, params, body, timeout)

    async def post_like_wechat(
        self,
        url: str,
        xml: str,
        *,
        safe: bool = False,
        key: str | None = None,
        wait: float = 5.0,
        retries: int = 3,
        timeout: float = 10.0,
        abandon: bool = False,
        resign: bool = False,
    ) -> list[tuple[int, str, float]]:
        """WeChat's delivery: push, and while no attempt has answered, push again every ``wait`` seconds, up to
        ``retries`` more times; returns every attempt's outcome (as ``post``), in order.

        By default the earlier requests stay open (each may take up to ``timeout``), so the gateway sees the
        duplicates while it is still handling the first. ``abandon=True`` drops each attempt after ``wait`` instead
        (its outcome is (0, "", ~wait)). Retries repeat the same request (params and body) unless ``resign=True``
        (new timestamp, nonce, signatures and, in safe mode, ciphertext). Any HTTP answer ends the retries."""
        params, body = self.push(xml, safe=safe, key=key)
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[tuple[int, str, float]]] = []

        def answered() -> bool:
            return any(task.done() and task.result()[0] != 0 for task in tasks)

        try:
            for attempt in range(retries + 1):
                if attempt and resign:
                    params, body = self.push(xml, safe=safe, key=key)
                tasks.append(asyncio.create_task(self._send(url, params, body, wait if abandon else timeout)))
                if attempt == retries:
                    break
                deadline = loop.time() + wait
                while not answered() and (remaining := deadline - loop.time()) > 0:
                    pending = {task for task in tasks if not task.done()}
                    if pending:
                        await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                    else:
                        await asyncio.sleep(remaining)
                if answered():
                    break
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    # ------------------------------------------------------------------ the gateway's passive reply

    def decrypt_reply(self, body: str | bytes, *, key: str | None = None) -> str | None:
        """The inner XML of a passive reply: plaintext XML as is; a safe-mode reply
        (``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``) after checking MsgSignature, decrypted with
        ``key`` or else the current then the old EncodingAESKey. None for "success" or "" (no reply).

        Raises AssertionError for what WeChat would reject (not XML, a bad signature, undecryptable)."""
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        stripped = text.strip()
        if stripped in ("", "success"):
            return None
        try:
            root = xmltodict.parse(stripped)["xml"]
        except Exception as exc:
            raise AssertionError(f"passive reply is not WeChat XML: {text[:300]!r}") from exc
        if not isinstance(root, dict):
            raise AssertionError(f"passive reply is not WeChat XML: {text[:300]!r}")
        if "Encrypt" not in root:
            if not root.get("MsgType"):
                raise AssertionError(f"passive reply without MsgType: {text[:300]!r}")
            return text
        for field in ("MsgSignature", "TimeStamp", "Nonce"):
            if not root.get(field):
                raise AssertionError(f"encrypted passive reply without <{field}>: {text[:300]!r}")
        keys = [key] if key else [k for k in (self.encoding_aes_key, self.old_aes_key) if k]
        errors: list[str] = []
        for aes_key in keys:
            crypto = WeChatCrypto(self.token, aes_key, self.appid)
            try:
                return crypto.decrypt_message(stripped, root["MsgSignature"], root["TimeStamp"], root["Nonce"])
            except InvalidSignatureException:
                raise AssertionError(f"encrypted passive reply: bad MsgSignature in {text[:300]!r}") from None
            except Exception as exc:  # a wrong key: struct.error, UnicodeDecodeError, InvalidAppIdException …
                errors.append(f"{aes_key[:6]}…: {type(exc).__name__}: {exc}")
        raise AssertionError(f"encrypted passive reply does not decrypt: {errors}")

    def reply_message(self, body: str | bytes, *, key: str | None = None) -> BaseMessage | None:
        """The passive reply parsed by ``wechatpy.parse_message`` (``.source`` must be the account's original id,
        ``.target`` the user's openid); None for no reply."""
        xml = self.decrypt_reply(body, key=key)
        return None if xml is None else parse_message(xml)

    def reply_text(self, body: str | bytes, *, key: str | None = None) -> str | None:
        """The <Content> of a passive text reply; None for no reply. AssertionError for another kind of reply."""
        message = self.reply_message(body, key=key)
        if message is None:
            return None
        if not isinstance(message, TextMessage):
            raise AssertionError(f"not a text reply: {message!r}")
        return message.content
