"""A fake Weibo 粉丝服务平台 (fan service platform) for end-to-end tests — both directions of the wire format.

1. **The push side**: what Weibo's message servers send to the developer's URL (the gateway).

   * URL check: ``GET <url>?signature=&timestamp=&nonce=&echostr=``; the gateway must answer ``echostr`` as is.
   * Messages and events: ``POST <url>?signature=&timestamp=&nonce=`` with a JSON body
     ``{"type", "receiver_id" (the account), "sender_id" (the fan), "created_at", "text", "data"}``.
   * ``signature = sha1("".join(sorted([app_secret, timestamp, nonce])))`` (hex). The official example
     (open.weibo.com/wiki/Messages_api_start): app secret ``xyz123xyz``, timestamp ``1397022061823`` (milliseconds),
     nonce ``57155157`` → ``139702206182357155157xyz123xyz`` → ``90e4c22c90a58f26526c2dd5b6c56c8822edeaa1``.
   * Weibo waits 5 seconds for an answer, then drops the connection and pushes again, 3 times in all; messages carry
     no id, so duplicates are recognised by ``sender_id`` + ``created_at``. The answer may be a *passive reply*
     (``parse_passive`` reads it) or an empty body (no reply, no retry).

2. **The API server** (what ``https://m.api.weibo.com/2/`` does), on 127.0.0.1:<random port>; ``api_base``
   replaces the real base URL. ``POST messages/reply.json`` (the customer-service "active" reply), form-encoded:
   ``access_token`` (or in the query string, or ``Authorization: OAuth2 <token>``), ``type`` (text|articles|position),
   ``data`` (the JSON of the message, e.g. ``{"text": "..."}``, URL-encoded as a form value), ``receiver_id`` and
   optional ``save_sender_box`` (0|1, default 1). Errors are Weibo's JSON
   ``{"error": "...", "error_code": n, "request": "/2/messages/reply.json"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import hashlib
import itertools
import json
import secrets
from typing import Any
from urllib.parse import quote, unquote_plus

import aiohttp
from aiohttp import web

_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
# The push's Content-Type is not documented; JSON is what the body is.
_PUSH_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "*/*"}

REPLY_PATH = "/2/messages/reply.json"
MAX_TEXT_CHARS = 300  # "The content should be less than 300 Chinese Characters"
REPLY_TYPES = ("text", "articles", "position")

# error_code → (error, HTTP status). Messages as Weibo's servers send them where known ("auth faild!" sic).
# HTTP statuses: 403 for 21301 and the rate limits is observed behaviour; the token errors' status is a guess.
ERRORS: dict[int, tuple[str, int]] = {
    10001: ("System error", 500),
    10002: ("Service unavailable", 503),
    10008: ("Param error, see doc for more info", 400),
    10016: ("Miss required parameter (%s) , see doc for more info", 400),
    10017: ("Parameter (%s)'s value invalid, expect (%s) , but get (%s) , see doc for more info", 400),
    10020: ("Request api not found!", 404),
    10021: ("HTTP method is not suported for this request", 405),
    10022: ("IP requests out of rate limit!", 403),
    10023: ("User requests out of rate limit!", 403),
    10024: ("User requests for (%s) out of rate limit!", 403),
    21301: ("auth faild!", 403),
    21327: ("expired_token", 401),
    21332: ("invalid_access_token", 401),
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CST = dtm.timezone(dtm.timedelta(hours=8))


def weibo_time(moment: dtm.datetime | None = None) -> str:
    """Weibo's ``created_at``: ``Mon Jul 16 18:09:20 +0800 2012`` (English names whatever the locale)."""
    moment = (moment or dtm.datetime.now(_CST)).astimezone(_CST)
    return (
        f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day:02d} {moment:%H:%M:%S} +0800 {moment.year}"
    )


def sign(app_secret: str, timestamp: str, nonce: str) -> str:
    """Weibo's push signature: sha1 of the lexicographically sorted app secret, timestamp and nonce, concatenated."""
    return hashlib.sha1("".join(sorted([app_secret, timestamp, nonce])).encode("utf-8")).hexdigest()


class FakeWeibo:
    """Weibo's push side and messages API for one verified (blue-V) account; see the module docstring."""

    def __init__(
        self,
        app_secret: str = "weibo-app-secret",
        uid: int = 1902538057,
        access_token: str = "2.00weiboFAKEtoken0123456789",
    ) -> None:
        self.app_secret = app_secret  # the App Secret of the APPKEY bound in 开发模式: signs pushes
        self.uid = uid  # the account: receiver_id of pushes, sender_id of replies
        self.access_token = access_token
        self.url = ""  # http://127.0.0.1:<port>
        self.api_base = ""  # http://127.0.0.1:<port>/2/
        # API state and controls
        self.sent: list[dict] = []  # accepted replies: receiver_id, type, data (decoded), text, save_sender_box, form
        self.calls: list[dict] = []  # every API call: {"path", "params", "status", "response"}; not when down
        self.passive: list[dict] = []  # passive replies seen by post(): {"receiver_id", "sender_id", "type", "data"}
        self.down = False
        self.expired_tokens: set[str] = set()
        self._failures: list[list[Any]] = []  # [remaining, error_code, status, error]
        self._vfids = itertools.count(821_804_459, 10)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/2/{path:.*}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self.api_base = f"{self.url}/2/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeibo:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ API controls and inspection

    def expire_token(self) -> str:
        """The current access_token now answers 21327 "expired_token"; returns the new valid one (also set as
        ``access_token``), as re-authorising in the fan-service console would."""
        self.expired_tokens.add(self.access_token)
        self.access_token = f"2.00weiboFAKE{secrets.token_hex(8)}"
        return self.access_token

    def fail(self, times: int, error_code: int = 10001, *, status: int | None = None, error: str | None = None) -> None:
        """The next ``times`` reply calls with a valid token answer Weibo's error JSON for ``error_code`` (HTTP status
        from ``ERRORS`` unless given). Token problems (21301/21332/21327) are checked before, and win."""
        known_error, known_status = ERRORS.get(error_code, ("System error", 400))
        self._failures.append([times, error_code, status or known_status, error or known_error])

    def texts_to(self, uid: int) -> list[str]:
        return [m["text"] for m in self.sent if m["receiver_id"] == uid and m["type"] == "text"]

    def sent_to(self, uid: int) -> list[dict]:
        return [m for m in self.sent if m["receiver_id"] == uid]

    async def wait_sent(self, count: int, timeout: float = 5.0, uid: int | None = None) -> list[dict]:
        """Waits until ``count`` replies (to ``uid``) were accepted; returns all of them.

        Raises AssertionError (listing the API calls) on timeout."""

        def matching() -> list[dict]:
            return [m for m in self.sent if uid is None or m["receiver_id"] == uid]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := matching()) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(c["params"], c["status"], c["response"]) for c in self.calls]
                raise AssertionError(f"expected {count} Weibo repl(ies), got {len(found)}; API calls: {seen!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return found

    def reset(self) -> None:
        self.sent.clear()
        self.calls.clear()
        self.passive.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ API server

    @staticmethod
    def error_body(error_code: int, path: str = REPLY_PATH, *args: object) -> dict:
        error = ERRORS.get(error_code, ("System error", 400))[0]
        if args:
            error = error % args
        return {"error": error, "error_code": error_code, "request": path}

    async def _not_found(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        return web.json_response(self.error_body(10020, request.path), status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        params: dict[str, str] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        if request.path != REPLY_PATH:
            status, body = 404, self.error_body(10020, request.path)
        elif request.method != "POST":
            status, body = 405, self.error_body(10021, request.path)
        else:
            status, body = self._reply(request, params)
        self.calls.append({"path": request.path, "params": params, "status": status, "response": body})
        self._changed.set()
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _token(self, request: web.Request, params: dict[str, str]) -> str:
        token = params.get("access_token", "")
        auth = request.headers.get("Authorization", "")
        if not token and auth.startswith(("OAuth2 ", "Bearer ")):
            token = auth.split(" ", 1)[1].strip()
        return token

    def _reply(self, request: web.Request, params: dict[str, str]) -> tuple[int, dict]:
        token = self._token(request, params)
        if not token:
            return 403, {"error": "auth by Null spi!", "error_code": 21301, "request": REPLY_PATH}
        if token in self.expired_tokens:
            return 401, self.error_body(21327)
        if token != self.access_token:
            return 401, self.error_body(21332)
        for failure in self._failures:
            if failure[0] > 0:
                failure[0] -= 1
                if failure[0] <= 0:
                    self._failures.remove(failure)
                return failure[2], {"error": failure[3], "error_code": failure[1], "request": REPLY_PATH}
        for name in ("type", "data", "receiver_id"):
            if not params.get(name):
                return 400, self.error_body(10016, REPLY_PATH, name)
        kind = params["type"]
        if kind not in REPLY_TYPES:
            return 400, self.error_body(10017, REPLY_PATH, "type", "text|articles|position", kind)
        try:
            receiver_id = int(params["receiver_id"])
        except ValueError:
            return 400, self.error_body(10017, REPLY_PATH, "receiver_id", "int64", params["receiver_id"])
        box = params.get("save_sender_box", "1")
        if box not in ("0", "1"):
            return 400, self.error_body(10017, REPLY_PATH, "save_sender_box", "0 or 1", box)
        raw = params["data"]
        double_encoded = raw[:3].upper() == "%7B"  # URL-encoded once more than the form encoding
        try:
            data = json.loads(unquote_plus(raw) if double_encoded else raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return 400, self.error_body(10017, REPLY_PATH, "data", "json", raw[:50])
        text = data.get("text") if kind == "text" else None
        if kind == "text":
            if not isinstance(text, str) or not text.strip():
                return 400, self.error_body(10017, REPLY_PATH, "data", "text", raw[:50])
            if len(text) > MAX_TEXT_CHARS:
                return 400, self.error_body(10017, REPLY_PATH, "data", f"text within {MAX_TEXT_CHARS}", len(text))
        self.sent.append(
            {
                "receiver_id": receiver_id,
                "type": kind,
                "data": data,
                "text": text,
                "save_sender_box": int(box),
                "double_encoded": double_encoded,
                "form": params,
            }
        )
        encoded = quote(json.dumps(data, ensure_ascii=False, separators=(",", ":")), safe="")
        return 200, {"result": True, "sender_id": self.uid, "receiver_id": receiver_id, "type": kind, "data": encoded}

    # ------------------------------------------------------------------ the push side: URL check and signatures

    def sign(self, timestamp: str, nonce: str) -> str:
        return sign(self.app_secret, timestamp, nonce)

    @staticmethod
    def _timestamp() -> str:
        return str(int(dtm.datetime.now(dtm.UTC).timestamp() * 1000))  # milliseconds, as in Weibo's example

    @staticmethod
    def _nonce() -> str:
        return str(secrets.randbelow(9 * 10**7) + 10**7)  # 8 decimal digits, as in Weibo's example

    def signed_query(self, *, forge: bool = False, timestamp: str | None = None, nonce: str | None = None) -> dict:
        """``signature, timestamp, nonce`` for a push; ``forge=True`` signs with a wrong secret."""
        ts, nonce = timestamp or self._timestamp(), nonce or self._nonce()
        secret = f"not-{self.app_secret}" if forge else self.app_secret
        return {"signature": sign(secret, ts, nonce), "timestamp": ts, "nonce": nonce}

    def verify_query(self, echostr: str = "dnPdpTZz85", *, forge: bool = False) -> dict[str, str]:
        """The query of the GET URL check; the gateway must check ``signature`` and answer ``echostr`` as is."""
        return {**self.signed_query(forge=forge), "echostr": echostr}

    async def verify(self, url: str, echostr: str = "dnPdpTZz85", *, forge: bool = False) -> tuple[int, str]:
        """Performs the GET URL check against ``url``; (HTTP status, body) — a pass is (200, echostr)."""
        params = self.verify_query(echostr, forge=forge)
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
            return resp.status, (await resp.read()).decode("utf-8", "replace")

    # ------------------------------------------------------------------ the push side: message bodies

    def push(
        self, kind: str, sender_id: int, text: str, data: dict | None = None, *, created_at: str | None = None
    ) -> dict:
        """A push body of any ``type`` (text, event, image, voice, position, mention …)."""
        return {
            "type": kind,
            "receiver_id": self.uid,
            "sender_id": sender_id,
            "created_at": created_at or weibo_time(),
            "text": text,
            "data": data if data is not None else {},
        }

    def text_push(self, sender_id: int, text: str, *, created_at: str | None = None) -> dict:
        """A private message (私信) of text: ``data`` is ``{}``."""
        return self.push("text", sender_id, text, {}, created_at=created_at)

    def event_push(self, sender_id: int, subtype: str, key: str = "", *, created_at: str | None = None) -> dict:
        """An event: ``subtype`` follow | unfollow | subscribe | unsubscribe | click | scan …; ``key`` the menu
        key (click) or the scene (scan). Weibo's default ``text`` for follow / unfollow is 关注事件消息 /
        取消关注事件消息."""
        text = {"follow": "关注事件消息", "unfollow": "取消关注事件消息"}.get(subtype, "事件消息")
        data: dict[str, Any] = {"subtype": subtype}
        if key:
            data["key"] = key
        return self.push("event", sender_id, text, data, created_at=created_at)

    def image_push(self, sender_id: int, *, created_at: str | None = None) -> dict:
        """An image: ``data`` holds ``vfid`` (the fan's copy) and ``tovfid`` (the receiver's copy), fetched through
        another API (not provided by this fake)."""
        vfid = next(self._vfids)
        return self.push("image", sender_id, "发了一张图片", {"vfid": vfid, "tovfid": vfid + 10}, created_at=created_at)

    def voice_push(self, sender_id: int, *, created_at: str | None = None) -> dict:
        vfid = next(self._vfids)
        return self.push(
            "voice", sender_id, "发了一个语音消息", {"vfid": vfid, "tovfid": vfid + 10}, created_at=created_at
        )

    def position_push(
        self,
        sender_id: int,
        longitude: str = "116.308586",
        latitude: str = "39.982525",
        *,
        created_at: str | None = None,
    ) -> dict:
        data = {"longitude": longitude, "latitude": latitude}
        return self.push("position", sender_id, "我在这里: http://t.cn/zQgLLYO", data, created_at=created_at)

    def mention_push(
        self, sender_id: int, text: str, mid: str = "3647445567063254", *, created_at: str | None = None
    ) -> dict:
        """An @mention of the account in a weibo (only for accounts Weibo enabled it for; the ``data`` layout is a
        best guess)."""
        return self.push("mention", sender_id, text, {"subtype": "status", "object_id": mid}, created_at=created_at)

    # ------------------------------------------------------------------ the push side: delivery

    async def _send(self, url: str, params: dict, body: bytes, timeout: float) -> tuple[int, str]:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.post(url, params=params, data=body, headers=_PUSH_HEADERS) as resp,
            ):
                return resp.status, (await resp.read()).decode("utf-8", "replace")
        except TimeoutError:
            return 0, ""
        except aiohttp.ClientError as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    def _remember_passive(self, status: int, text: str) -> None:
        if status != 200 or not text.strip():
            return
        with contextlib.suppress(AssertionError, ValueError, KeyError, TypeError):
            reply = json.loads(text)
            self.passive.append(
                {
                    "receiver_id": int(reply["receiver_id"]),
                    "sender_id": int(reply["sender_id"]),
                    "type": reply["type"],
                    "data": self._passive_data(reply),
                }
            )

    async def post(self, url: str, payload: dict, *, forge: bool = False, timeout: float = 5.0) -> tuple[int, str]:
        """Pushes ``payload`` (a ``*_push`` dict) to the gateway once, signed (or forged); (HTTP status, body).
        Status 0: no answer within ``timeout`` (body "") or the connection failed (body = the error). A valid passive
        reply in the answer is also recorded in ``passive``."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        status, text = await self._send(url, self.signed_query(forge=forge), body, timeout)
        self._remember_passive(status, text)
        return status, text

    async def post_like_weibo(
        self, url: str, payload: dict, *, wait: float = 5.0, attempts: int = 3
    ) -> list[tuple[int, str]]:
        """Weibo's delivery: push; no answer within ``wait`` seconds → drop the connection and push again (a fresh
        signature, the same body), ``attempts`` pushes in all. Returns every attempt's (status, body)."""
        outcomes: list[tuple[int, str]] = []
        for _ in range(attempts):
            outcomes.append(await self.post(url, payload, timeout=wait))
            if outcomes[-1][0] != 0:
                break
        return outcomes

    # ------------------------------------------------------------------ the gateway's passive reply

    @staticmethod
    def _passive_data(reply: Any) -> dict:
        if not isinstance(reply, dict):
            raise AssertionError(f"passive reply is not a JSON object: {reply!r}")
        if reply.get("result") is not True and reply.get("result") != "true":
            raise AssertionError(f'passive reply without "result": true: {reply!r}')
        for field in ("receiver_id", "sender_id", "type", "data"):
            if field not in reply:
                raise AssertionError(f"passive reply without {field!r}: {reply!r}")
        data = reply["data"]
        if not isinstance(data, str) or data.lstrip().startswith("{"):
            raise AssertionError(f'passive reply "data" must be URL-encoded JSON (UTF-8), got {data!r}')
        try:
            decoded = json.loads(unquote_plus(data).strip())
        except ValueError as exc:
            raise AssertionError(f'passive reply "data" does not decode to JSON: {data!r}') from exc
        if not isinstance(decoded, dict):
            raise AssertionError(f'passive reply "data" is not a JSON object: {decoded!r}')
        return decoded

    def parse_passive(self, body: str | bytes, *, push: dict | None = None) -> str | None:
        """The text of the gateway's passive reply (its HTTP answer to a push); None for an empty answer (no reply).

        The reply is ``{"result": true, "receiver_id": <fan>, "sender_id": <account>, "type": "text",
        "data": "<URL-encoded JSON {"text": ...}>"}``; ids may be numbers or numeric strings. With ``push``, the ids
        must be that push's, swapped. Raises AssertionError for what Weibo would not accept (also a non-text reply,
        or a text over 300 characters)."""
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if not text.strip():
            return None
        try:
            reply = json.loads(text)
        except ValueError as exc:
            raise AssertionError(f"passive reply is not JSON: {text[:300]!r}") from exc
        data = self._passive_data(reply)
        try:
            receiver_id, sender_id = int(reply["receiver_id"]), int(reply["sender_id"])
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"passive reply ids are not numbers: {reply!r}") from exc
        if push is not None and (receiver_id, sender_id) != (int(push["sender_id"]), int(push["receiver_id"])):
            raise AssertionError(f"passive reply ids {receiver_id}/{sender_id} do not answer the push {push!r}")
        if reply["type"] != "text":
            raise AssertionError(f"not a text reply: {reply!r}")
        content = data.get("text")
        if not isinstance(content, str) or not content:
            raise AssertionError(f'text reply without "text": {data!r}')
        if len(content) > MAX_TEXT_CHARS:
            raise AssertionError(f"text reply of {len(content)} characters (limit {MAX_TEXT_CHARS})")
        return content
