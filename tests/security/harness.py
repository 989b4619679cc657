"""The fuzz harness: real gateway processes, the providers' fakes, a raw HTTP/WebSocket client, verdicts.

* ``Harness.start()`` starts the providers' fakes (Telegram Bot API, WeChat, Weibo, Discourse — the tests'
  own, ``tests/channels/fake_*.py``) on loopback in a background event loop, then two gateway processes
  (``python -m gateway``, as an operator runs it) with every channel secret set: ``main`` (WeChat in safe
  mode, AES) and ``plain`` (WeChat in plaintext mode — a safe-mode deployment refuses plaintext pushes, so
  the plaintext parser needs its own). Redis is ``REDIS_URL`` under a key prefix of the run's own (deleted
  afterwards), else each gateway's embedded Redis. Agent sessions (a supervisor, an agent) are opened and a
  real handoff chat is queued before any fuzzing, so the agents' API is fuzzed behind a valid session too.
* ``finalize`` turns a ``fuzzcases.Case`` into the exact bytes sent (signatures over the final body and
  query, fresh timestamps and nonces, session cookie and CSRF token, the body compressed or chunked on the
  wire), ``send`` sends it on a fresh connection (``Connection: close``; the answer read by its length) and
  gives an ``Outcome``. WebSocket frame cases share one open socket per worker, reopened after a close; each
  frame is followed by a ping, and what arrives before its pong is the frame's answer.
* Verdicts: a 5xx, no complete answer within ``hang`` seconds, a connection dropped without an answer, a
  WebSocket closed abnormally (1006/1011, or any close after a protocol-valid frame) or a bad frame left
  without an error frame. ``logged_errors`` reads what the gateways logged: each ERROR record's or
  traceback's last line (aiohttp's own parser refusing a malformed request with 400 is counted apart).
* ``run_endpoint`` drives one endpoint: a sweep of request-level damage over one valid request, then the
  hypothesis-drawn cases; ``Tally`` counts and groups the failures by input class.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import redisconn
from tests.security.fuzzcases import (
    AGENT,
    SECRETS,
    SUPERVISOR,
    TELEGRAM_TOKEN,
    TWILIO_SID,
    WECHAT_APPID,
    WEIBO_UID,
    Case,
    Frame,
    encode_query,
    server_value,
)

ROOT = Path(__file__).resolve().parents[2]
NLU_CACHE = ROOT / "var" / "test-nlu"  # the tests' trained model, keyed like the gateway's own cache
HOST = "127.0.0.1"
CLEAN_CLOSES = {1002, 1003, 1007, 1008, 1009}  # protocol errors answered the way RFC 6455 says


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ---- a loop in a thread (hypothesis drives synchronous functions) ----------------------------------------------
class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# ---- the gateway processes -------------------------------------------------------------------------------------
def nlu_key() -> str:
    """The cache key of the model the gateway's default settings train."""
    from gateway.settings import load_settings
    from nlu import NLUConfig
    from nlu.data import DATA_DIR, data_files
    from nlu.engine import artifact_key

    settings = load_settings(env={})
    data = [DATA_DIR, *settings.nlu.data] if settings.nlu.data else None
    return artifact_key(data_files(data), NLUConfig.load(settings.nlu.config or None))


def nlu_cached() -> bool:
    return (NLU_CACHE / nlu_key() / "complaint_type.json").exists()


def seed_nlu(data_dir: Path) -> bool:
    """Copy the tests' cached model where the gateway looks (else it trains, a minute or two)."""
    if not nlu_cached():
        return False
    key = nlu_key()
    shutil.copytree(NLU_CACHE / key, data_dir / "nlu" / key, dirs_exist_ok=True)
    return True


class Gateway:
    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.folder = folder
        self.data_dir = folder / "var"
        self.log_path = folder / "gateway.log"
        self.env = {**env, "GATEWAY_SERVER_PUBLIC_URL": self.base}
        self.proc: subprocess.Popen[bytes] | None = None
        self.seeded = False

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.seeded = seed_nlu(self.data_dir)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--host", HOST, "--port", str(self.port), "--data-dir",
             str(self.data_dir), "--log-level", "WARNING"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, start: int = 0, end: int | None = None) -> str:
        with self.log_path.open("rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(max(end - start, 0))
        return data.decode("utf-8", "replace")


_BOMB: list[bytes] = []


def encode_body(body: bytes, encoding: str) -> bytes:
    """The body as it goes on the wire (signatures are over ``body``, what the server reads after decoding)."""
    import gzip
    import zlib

    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "gzip-truncated":
        return gzip.compress(body)[:-12]
    if encoding == "bomb":
        if not _BOMB:
            _BOMB.append(gzip.compress(b"\0" * (100 * 1024 * 1024), 9))
        return _BOMB[0]
    return body


# ---- tracebacks in a log --------------------------------------------------------------------------------------
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ([\w.]+): (.*)$")


@dataclass(frozen=True)
class LoggedError:
    where: str  # the log record: "gateway.errors: unexpected error on POST /webhooks/rest/webhook"
    exception: str  # the traceback's last line: "UnicodeEncodeError: 'utf-8' codec can't encode…"

    @property
    def kind(self) -> str:
        return self.exception.split(":", 1)[0].strip()

    @property
    def client_error(self) -> bool:
        """aiohttp's own parser refusing a malformed request (answered 400) — logged with a traceback by
        aiohttp, but not a failure of the gateway."""
        if self.where.startswith("aiohttp.server: Unhandled exception") and self.kind.endswith("RequestPayloadError"):
            return True  # a body the handler never read (refused first) that aiohttp could not drain
        return self.kind.startswith("aiohttp.http_exceptions.") and ": 400, message" in self.exception


def logged_errors(text: str) -> list[LoggedError]:
    """Each ERROR/CRITICAL record or record with a traceback: where it was logged and the last line of its
    (last chained) traceback."""
    out: list[LoggedError] = []
    where, level, last, in_tb = "", "", "", False

    def flush() -> None:
        if where and (last or level in ("ERROR", "CRITICAL")):
            out.append(LoggedError(where, last or f"{level} (no traceback)"))

    for line in text.splitlines():
        match = _RECORD.match(line)
        if match:
            flush()
            level, where, last, in_tb = match.group(1), f"{match.group(2)}: {match.group(3)[:160]}", "", False
            continue
        if line.startswith("Traceback (most recent call last)"):
            in_tb = True
            continue
        if in_tb and line and not line.startswith((" ", "\t")):
            if line.startswith(("During handling", "The above exception")):
                continue
            last = line[:240]
    flush()
    return out


# ---- the raw client -----------------------------------------------------------------------------------------
@dataclass
class Response:
    status: int | None
    headers: dict[str, str]
    body: bytes
    seconds: float
    error: str = ""  # "hang" | "no response: <exception>"


def _parse_head(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    while raw.startswith(b"HTTP/1.1 1") and not raw.startswith(b"HTTP/1.1 101"):  # 100 Continue: interim
        raw = raw.partition(b"\r\n\r\n")[2]
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None, {}, raw
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


async def _read_response(reader: asyncio.StreamReader, head_only: bool) -> bytes:
    """One response: head (1xx interim answers skipped), then its body by Content-Length, chunks, or to EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1") and not head.startswith(b"HTTP/1.1 101"):
        head = await reader.readuntil(b"\r\n\r\n")
    status, headers, _ = _parse_head(head)
    if head_only or status in (101, 204, 304):
        return head
    length = headers.get("content-length", "")
    if length.isdigit():
        return head + await reader.readexactly(int(length))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            chunk = await reader.readexactly(size + 2)
            body += line + chunk
            if size == 0:
                return head + bytes(body)
    return head + await reader.read()


async def exchange(port: int, data: bytes, timeout: float, head_only: bool = False) -> Response:
    """One request on its own connection; its answer (complete by its length, or at EOF). ``head_only``: a HEAD."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    raw = b""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port, limit=2**22)
            writer.write(data)
            raw = await _read_response(reader, head_only)
    except TimeoutError:
        return Response(None, {}, b"", loop.time() - started, "hang")
    except asyncio.IncompleteReadError as exc:
        raw = exc.partial
    except ValueError:  # a chunk size that is not hex
        return Response(None, {}, b"", loop.time() - started, "no response: malformed chunked body")
    except asyncio.LimitOverrunError:
        return Response(None, {}, b"", loop.time() - started, "no response: head over 4 MB")
    except OSError as exc:
        return Response(None, {}, b"", loop.time() - started, f"no response: {type(exc).__name__}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    status, headers, body = _parse_head(raw)
    error = (
        ""
        if status is not None
        else f"no response: {'connection closed without an answer' if not raw else 'unparsable'}"
    )
    return Response(status, headers, body, loop.time() - started, error)


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (masked), RFC 6455."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    if n:
        stream = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + mask + payload


class WsConn:
    """A raw WebSocket connection: the handshake's answer, then frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closed: int | None = None

    @classmethod
    async def open(cls, port: int, request: bytes, timeout: float) -> tuple[Response, WsConn | None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(HOST, port, limit=2**22)
                writer.write(request)
                raw = await _read_response(reader, request.startswith(b"HEAD "))
                status, headers, body = _parse_head(raw)
                if status != 101:  # an HTTP answer (the connection may stay open)
                    writer.close()
                    return Response(status, headers, body, loop.time() - started), None
                return Response(status, headers, b"", loop.time() - started), cls(reader, writer)
        except TimeoutError:
            error = "hang"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            error = f"no response: {type(exc).__name__}"
        if writer is not None:
            writer.close()
        return Response(None, {}, b"", loop.time() - started, error), None

    async def send(self, opcode: int, payload: bytes) -> None:
        self.writer.write(ws_frame(opcode, payload))
        await self.writer.drain()

    async def recv(self) -> tuple[int, bytes]:
        first = await self.reader.readexactly(2)
        opcode, n = first[0] & 0x0F, first[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
        if first[1] & 0x80:
            mask = await self.reader.readexactly(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(await self.reader.readexactly(n)))
        else:
            data = await self.reader.readexactly(n)
        return opcode, data

    async def pending_close(self, timeout: float = 1.0) -> int:
        """After a failed send: the close frame the server may have sent before dropping the connection."""
        with contextlib.suppress(asyncio.IncompleteReadError, OSError, TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    opcode, data = await self.recv()
                    if opcode == 0x8:
                        return struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
        return 1006

    async def sync(self, timeout: float) -> tuple[list[dict[str, Any]], int | None]:
        """Ping, then read until its pong: (JSON frames received meanwhile, close code if the server closed)."""
        token = secrets.token_hex(4).encode()
        frames: list[dict[str, Any]] = []
        try:
            await self.send(0x9, token)
            async with asyncio.timeout(timeout):
                while True:
                    opcode, data = await self.recv()
                    if opcode == 0xA and data == token:
                        return frames, None
                    if opcode == 0x9:
                        await self.send(0xA, data)
                    elif opcode == 0x8:
                        self.closed = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                        return frames, self.closed
                    elif opcode == 0x1:
                        with contextlib.suppress(ValueError):
                            frame = json.loads(data)
                            frames.append(frame if isinstance(frame, dict) else {"type": "?"})
        except (asyncio.IncompleteReadError, OSError):
            self.closed = 1006  # dropped without a close frame
            return frames, 1006

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(ws_frame(0x8, struct.pack(">H", 1000)))
        self.writer.close()


# ---- outcomes -----------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    case: Case
    status: int | None = None  # HTTP status (101 for a WebSocket that opened)
    seconds: float = 0.0
    failure: str = ""  # "" when the gateway behaved
    detail: str = ""  # what it answered (first bytes), for the report
    ws_close: int | None = None
    json_error: bool = True  # a 4xx answered JSON
    content_type: str = ""

    @property
    def bucket(self) -> str:
        if self.failure.startswith("hang"):
            return "hang"
        if self.failure.startswith("ws "):
            return "ws"
        if self.failure:
            return "5xx"
        if self.status is None:
            return "?"
        return f"{self.status // 100}xx" if self.status != 101 else "101"


def http_verdict(case: Case, resp: Response, hang: float) -> Outcome:
    out = Outcome(case, resp.status, resp.seconds, detail=resp.body[:200].decode("utf-8", "replace"))
    if resp.error == "hang" or resp.seconds >= hang:
        out.failure = f"hang (> {hang:g} s)"
    elif resp.error:
        out.failure = resp.error
    elif resp.status is not None and resp.status >= 500:
        out.failure = f"HTTP {resp.status}"
    out.content_type = resp.headers.get("content-type", "").split(";")[0]
    if resp.status and 400 <= resp.status < 500 and case.method not in ("HEAD",):
        out.json_error = out.content_type == "application/json"
    return out


# ---- the harness -------------------------------------------------------------------------------------------------
@dataclass
class Session:
    cookie: str = ""
    csrf: str = ""


@dataclass
class ServerState:
    gateway: Gateway
    sessions: dict[str, Session] = field(default_factory=dict)
    chat_id: str = "no-chat"


class Harness:
    def __init__(self, redis_url: str | None = None, hang: float = 5.0, servers: tuple[str, ...] = ("main", "plain"),
                 folder: Path | None = None) -> None:  # fmt: skip
        self.redis_url = redis_url
        self.hang = hang
        self.names = servers
        self.folder = folder or Path(tempfile.mkdtemp(prefix="gw-fuzz-"))
        self.prefix = f"fuzz:{uuid.uuid4().hex[:10]}:"
        self.loop = Loop()
        self.fakes: dict[str, Any] = {}
        self.servers: dict[str, ServerState] = {}
        self.jwt = ""

    # ---- life cycle -------------------------------------------------------------------------------------
    def env(self, aes: bool) -> dict[str, str]:
        tg, wx, wb, fo = (self.fakes[k] for k in ("telegram", "wechat", "weibo", "discourse"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "REDIS_URL"}
        env.update(SECRETS)
        if not aes:
            env.pop("WECHAT_AES_KEY")
        env.update({
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "GATEWAY_TELEGRAM_API_BASE_URL": tg.base_url,
            "GATEWAY_WECHAT_APPID": WECHAT_APPID, "GATEWAY_WECHAT_API_BASE_URL": wx.api_base,
            "GATEWAY_WEIBO_UID": WEIBO_UID, "GATEWAY_WEIBO_API_BASE_URL": wb.api_base,
            "GATEWAY_FORUM_DISCOURSE_URL": fo.base_url, "GATEWAY_FORUM_API_USERNAME": "support",
            "GATEWAY_SMS_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "GATEWAY_REDIS_KEY_PREFIX": self.prefix + ("m:" if aes else "p:"),
        })  # fmt: skip
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def start(self, timeout: float = 240) -> None:
        self.loop.run(self._start_fakes(), 30)
        for name in self.names:
            gw = Gateway(name, self.env(aes=name != "plain"), self.folder / name)
            gw.start()
            self.servers[name] = ServerState(gw)
        from gateway.security import mint_customer_token

        self.jwt = mint_customer_token("13800138000", SECRETS["WEBCHAT_JWT_SECRET"], ttl=20 * 3600)
        self.loop.run(self._ready(timeout), timeout + 10)
        for state in self.servers.values():
            self.loop.run(self._prepare(state), 60)

    async def _start_fakes(self) -> None:
        from tests.channels.fake_forum import FakeDiscourse
        from tests.channels.fake_telegram import FakeTelegram
        from tests.channels.fake_wechat import FakeWeChat
        from tests.channels.fake_weibo import FakeWeibo

        self.fakes = {
            "telegram": FakeTelegram(TELEGRAM_TOKEN),
            "wechat": FakeWeChat(appid=WECHAT_APPID, secret=SECRETS["WECHAT_APP_SECRET"], token=SECRETS["WECHAT_TOKEN"],
                                 encoding_aes_key=SECRETS["WECHAT_AES_KEY"]),
            "weibo": FakeWeibo(SECRETS["WEIBO_APP_SECRET"], int(WEIBO_UID), SECRETS["WEIBO_ACCESS_TOKEN"]),
            "discourse": FakeDiscourse(SECRETS["DISCOURSE_API_KEY"], "support"),
        }  # fmt: skip
        for fake in self.fakes.values():
            await fake.start()

    async def _ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for state in self.servers.values():
            gw = state.gateway
            while True:
                resp = await exchange(gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3)
                if resp.status == 200:
                    with contextlib.suppress(ValueError):
                        if json.loads(resp.body).get("channels", {}).get("telegram") == "ready":
                            break
                if not gw.alive():
                    raise RuntimeError(f"gateway {gw.name} exited during start-up:\n{gw.log_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gateway {gw.name} not ready in {timeout:g} s:\n{gw.log_text()[-3000:]}")
                await asyncio.sleep(0.2)

    async def _request(self, port: int, method: str, path: str, body: Any = None, cookie: str = "",
                       csrf: str = "") -> Response:  # fmt: skip
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
        )
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if cookie:
            head += f"Cookie: gw_agent={cookie}\r\n"
        if csrf:
            head += f"X-CSRF-Token: {csrf}\r\n"
        return await exchange(port, head.encode() + b"\r\n" + data, 15)

    async def _prepare(self, state: ServerState) -> None:
        """Agent sessions and one real chat in the queue (a REST customer asked for a person)."""
        port = state.gateway.port
        for role, (name, password) in (("super", SUPERVISOR), ("agent", AGENT)):
            resp = await self._request(port, "POST", "/api/agent/login", {"name": name, "password": password})
            if resp.status != 200:
                raise RuntimeError(f"login {name} on {state.gateway.name}: {resp.status} {resp.body[:300]!r}")
            cookie = re.search(r"gw_agent=([^;]+)", resp.headers.get("set-cookie", ""))
            state.sessions[role] = Session(cookie.group(1) if cookie else "", json.loads(resp.body)["csrf"])
        for text in ("转人工", "是的，转人工", "我要投诉，找人工客服"):
            await self._request(port, "POST", "/webhooks/rest/webhook", {"sender": "fuzz-handoff", "message": text})
            for session in state.sessions.values():  # queued, or already given to one of the two
                resp = await self._request(port, "GET", "/api/queue", cookie=session.cookie)
                queue = json.loads(resp.body) if resp.status == 200 else {}
                chats = queue.get("mine", []) + queue.get("chats", [])
                if chats:
                    state.chat_id = chats[0]["id"]
                    return

    def stop(self) -> None:
        for state in self.servers.values():
            state.gateway.stop()
        with contextlib.suppress(Exception):
            self.loop.run(self._stop_fakes(), 30)
        self.loop.close()
        if self.redis_url:
            client = redisconn.sync_client(self.redis_url)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
            client.close()

    async def _stop_fakes(self) -> None:
        for fake in self.fakes.values():
            await fake.stop()

    # ---- one case -------------------------------------------------------------------------------------------
    def finalize(self, case: Case, state: ServerState, ws_key: str = "") -> bytes:
        """The exact bytes of the request ``case`` describes, signed for ``state``'s gateway now."""
        gw = state.gateway
        path = case.path.replace(b"$CHAT", state.chat_id.encode())
        body = case.body
        if b"$" in body:
            now = time.time()
            iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)).encode()
            body = body.replace(b"$JWT", self.jwt.encode()).replace(b"$NOWTS", str(int(now)).encode())
            body = body.replace(b"$NOWISO", iso)
        query = self._query(case)
        target = path + (b"?" + query if query else b"")
        headers: list[tuple[bytes, bytes]] = []
        if not any(k.lower() == b"host" for k, _ in case.headers):
            headers.append((b"Host", f"{HOST}:{gw.port}".encode()))
        headers += self._auth(case, state)
        headers += self._signature(case, body, target, gw)
        if case.content_type is not None and not case.ws:
            headers.append((b"Content-Type", case.content_type))
        if case.ws:
            headers += [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Version", b"13"),
                        (b"Sec-WebSocket-Key", base64.b64encode(os.urandom(16)))]  # fmt: skip
            if case.auth and not any(k.lower() == b"origin" for k, _ in case.headers):
                headers.append((b"Origin", f"http://{HOST}:{gw.port}".encode()))
        else:
            headers.append((b"Connection", b"close"))
        headers += case.headers
        wire = encode_body(body, case.encoding)
        if case.chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
            wire = b"".join(b"%x\r\n%s\r\n" % (len(wire[i : i + 7]), wire[i : i + 7]) for i in range(0, len(wire), 7))
            wire += b"0\r\n\r\n"
        elif wire or case.method in ("POST", "PUT", "PATCH"):
            headers.append((b"Content-Length", str(len(wire)).encode()))
        head = case.method.encode("latin-1") + b" " + target + b" HTTP/1.1\r\n"
        head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
        return head + b"\r\n" + wire

    def _query(self, case: Case) -> bytes:
        if case.raw_query is not None:
            return case.raw_query
        if not case.query:
            return b""
        now = time.time()
        nonce = str(secrets.randbelow(9 * 10**9) + 10**9)
        fills = {"$TS": str(int(now)), "$TSMS": str(int(now * 1000)), "$NONCE": nonce, "$JWT": self.jwt}
        params = [(n, fills.get(v, v), m) for n, v, m in case.query]
        seen = {}
        for n, v, _ in params:
            seen.setdefault(n, server_value(v))
        ts, nonce = seen.get("timestamp", ""), seen.get("nonce", "")
        secret = SECRETS["WEIBO_APP_SECRET"] if case.endpoint.startswith("weibo") else SECRETS["WECHAT_TOKEN"]
        sig = hashlib.sha1("".join(sorted([secret, ts, nonce])).encode("utf-8", "surrogatepass")).hexdigest()
        msgsig = hashlib.sha1("".join(sorted([SECRETS["WECHAT_TOKEN"], ts, nonce, case.encrypt]))
                              .encode("utf-8", "surrogatepass")).hexdigest()  # fmt: skip
        out = []
        for n, v, m in params:
            if v in ("$SIG", "$MSGSIG"):
                if case.sign_mode == "none":
                    continue
                v = "f" * 40 if case.sign_mode == "wrong" else sig if v == "$SIG" else msgsig
            out.append((n, v, m))
        return encode_query(out)

    def _auth(self, case: Case, state: ServerState) -> list[tuple[bytes, bytes]]:
        mode = case.auth
        if not mode:
            return []
        session = state.sessions.get("agent" if mode == "agent" else "super", Session())
        cookie = [(b"Cookie", f"gw_agent={session.cookie}".encode())]
        csrf = [(b"X-CSRF-Token", session.csrf.encode())]
        return {
            "super": [*cookie, *csrf], "agent": [*cookie, *csrf], "nocookie": csrf, "nocsrf": cookie,
            "garbage-cookie": [(b"Cookie", b"gw_agent=" + secrets.token_urlsafe(32).encode()), *csrf],
            "nonascii-cookie": [(b"Cookie", b"gw_agent=\xed\xa0\x80\xff"), *csrf],
            "badcsrf": [*cookie, (b"X-CSRF-Token", b"x" * 32)],
            "nonascii-csrf": [*cookie, (b"X-CSRF-Token", b"\xe4\xbd\xa0\xed\xa0\x80")],
            "huge-csrf": [*cookie, (b"X-CSRF-Token", b"c" * 7000)],
        }.get(mode, [])  # fmt: skip

    def _signature(self, case: Case, body: bytes, target: bytes, gw: Gateway) -> list[tuple[bytes, bytes]]:
        scheme, mode = case.sign, case.sign_mode
        if not scheme or scheme in ("wechat", "weibo") or mode == "none":
            return []
        bad = {"wrong": None, "nonascii": b"\xed\xa0\x80\xff\xfe", "huge": b"s" * 7000}
        if scheme == "sms":
            value = (
                b"sha256=" + hmac.new(SECRETS["SMS_WEBHOOK_SECRET"].encode(), body, hashlib.sha256).hexdigest().encode()
            )
            name = b"X-Signature"
        elif scheme == "discourse":
            secret = SECRETS["DISCOURSE_WEBHOOK_SECRET"].encode()
            value = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
            name = b"X-Discourse-Event-Signature"
        elif scheme == "telegram":
            value, name = SECRETS["TELEGRAM_WEBHOOK_SECRET"].encode(), b"X-Telegram-Bot-Api-Secret-Token"
        else:  # twilio: over the URL Twilio called and the form as the gateway parses it
            from twilio.request_validator import RequestValidator

            try:
                form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            except UnicodeDecodeError:
                form = {}
            url = gw.base + target.decode("latin-1")
            value = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(url, form).encode()
            name = b"X-Twilio-Signature"
        if mode in bad:
            value = bad[mode] or (value[:-4] + b"AAAA")
        return [(name, value)]

    async def send(self, case: Case, server: str = "main", ws: dict[str, WsConn] | None = None) -> Outcome:
        """Send ``case`` to ``server`` and judge the answer. ``ws``: this worker's open WebSocket per endpoint
        (frame cases reuse it; reopened after a close)."""
        state = self.servers[server]
        if case.frames:
            return await self._frames(case, state, ws if ws is not None else {})
        data = self.finalize(case, state)
        if case.ws:
            resp, conn = await WsConn.open(state.gateway.port, data, self.hang)
            if conn is not None:
                _, closed = await conn.sync(self.hang)
                conn.close()
                if closed in (1006, 1011):
                    out = Outcome(case, 101, resp.seconds, failure=f"ws abnormal close {closed} after the handshake")
                    return out
            return http_verdict(case, resp, self.hang)
        resp = await exchange(state.gateway.port, data, self.hang, head_only=case.method == "HEAD")
        return http_verdict(case, resp, self.hang)

    async def _frames(self, case: Case, state: ServerState, conns: dict[str, WsConn]) -> Outcome:
        conn = conns.get(case.endpoint)
        if conn is None or conn.closed is not None:
            query = [("lang", "zh", "pct"), ("last_seq", "0", "pct")] if case.endpoint == "ws-chat" else []
            opener = Case(case.endpoint, "open", path=case.path, query=query, auth=case.auth, ws=True)
            resp, conn = await WsConn.open(state.gateway.port, self.finalize(opener, state), self.hang)
            if conn is None:
                failure = f"ws could not open: {resp.status} {resp.error}"
                return Outcome(case, resp.status, resp.seconds, failure=failure,
                               detail=resp.body[:200].decode("utf-8", "replace"))  # fmt: skip
            await conn.sync(self.hang)  # hello, the queue snapshot…
            conns[case.endpoint] = conn
        out = Outcome(case, 101)
        started = time.monotonic()
        for frame in case.frames:
            failure, closed, errors = await self._frame(conn, frame, state)
            if failure:
                out.failure, out.ws_close = f"ws {failure} after a '{frame.label}' frame", closed
                out.detail = json.dumps(errors, ensure_ascii=False)[:200]
                break
            if closed is not None:
                out.ws_close = closed
                break
        out.seconds = time.monotonic() - started
        if out.failure.startswith("ws no answer"):
            out.failure = f"hang (> {self.hang:g} s): {out.failure}"
        return out

    async def _frame(self, conn: WsConn, frame: Frame, state: ServerState) -> tuple[str, int | None, list[Any]]:
        payload = frame.payload.replace(b"$CHAT", state.chat_id.encode())
        try:
            await conn.send(frame.opcode, payload)
        except OSError:  # the server hung up while the frame was being written (a frame over its limit?)
            conn.closed = closed = await conn.pending_close()
            if frame.expect == "oversize" or (frame.expect == "error-or-close" and closed in CLEAN_CLOSES):
                return "", closed, []
            return f"abnormal close {closed} (connection dropped while sending)", closed, []
        loop = asyncio.get_running_loop()
        started = loop.time()
        frames, closed = await conn.sync(self.hang)
        if closed is None and loop.time() - started >= self.hang:
            conn.closed = -1
            return f"no answer in {self.hang:g} s (pong)", None, frames
        errors = [f for f in frames if f.get("type") == "error"]
        if closed is not None:
            if frame.expect == "oversize" and closed != 1011:  # refused unread: a reset may eat the close frame
                return "", closed, errors
            if closed in (1006, 1011):
                return f"abnormal close {closed}", closed, errors
            if frame.expect == "error-or-close" and closed in CLEAN_CLOSES:
                return "", closed, errors
            return f"closed {closed}", closed, errors
        if frame.expect in ("error", "error-or-close", "oversize") and not errors:
            return "no error frame", None, frames
        return "", None, errors

    # ---- health and logs ---------------------------------------------------------------------------------
    def healthz(self) -> dict[str, int | None]:
        out = {}
        for name, state in self.servers.items():
            resp = self.loop.run(exchange(state.gateway.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close"
                                          b"\r\n\r\n", self.hang), self.hang + 5)  # fmt: skip
            out[name] = resp.status
        return out

    def mark(self) -> dict[str, int]:
        return {name: state.gateway.log_size() for name, state in self.servers.items()}

    def errors_since(self, mark: dict[str, int]) -> tuple[list[tuple[str, LoggedError]], int]:
        """(unexpected errors each gateway logged since ``mark``, malformed requests aiohttp logged as errors)."""
        out, client = [], 0
        for name, state in self.servers.items():
            for err in logged_errors(state.gateway.log_text(mark.get(name, 0))):
                if err.client_error:
                    client += 1
                else:
                    out.append((name, err))
        return out, client


# ---- a run over one endpoint: counts and failures ------------------------------------------------------------------
@dataclass
class Tally:
    endpoint: str
    cases: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    failures: list[Outcome] = field(default_factory=list)
    not_json: int = 0
    not_json_kinds: Counter[str] = field(default_factory=Counter)
    ws_abnormal: int = 0
    slowest: float = 0.0
    seconds: float = 0.0
    errors: list[tuple[str, LoggedError]] = field(default_factory=list)
    client_errors_logged: int = 0
    stopped: str = ""

    def add(self, out: Outcome) -> None:
        self.cases += 1
        self.buckets[out.bucket] += 1
        self.slowest = max(self.slowest, out.seconds)
        if not out.json_error:
            self.not_json += 1
            self.not_json_kinds[f"{out.status} {out.content_type or 'no body type'}"] += 1
        if out.failure:
            self.failures.append(out)
            if out.failure.startswith("ws abnormal"):
                self.ws_abnormal += 1

    @property
    def hangs(self) -> int:
        return sum(1 for f in self.failures if f.failure.startswith("hang"))

    @property
    def server_errors(self) -> int:
        return sum(1 for f in self.failures if not f.failure.startswith(("hang", "ws ")))

    def classes(self) -> list[tuple[str, str, int, Outcome]]:
        """(input class, failure, count, first example), most frequent first."""
        groups: dict[tuple[str, str], list[Outcome]] = {}
        for out in self.failures:
            groups.setdefault((out.case.label, out.failure), []).append(out)
        rows = [(label, failure, len(outs), outs[0]) for (label, failure), outs in groups.items()]
        return sorted(rows, key=lambda r: -r[2])

    def exception_kinds(self) -> Counter[str]:
        return Counter(f"{err.kind} ({err.where.split(':', 1)[0]})" for _, err in self.errors)

    def describe(self, limit: int = 15) -> str:
        lines = [f"{self.endpoint}: {self.cases} cases, {len(self.failures)} failed ({self.server_errors} 5xx/no "
                 f"answer, {self.hangs} hangs, {self.ws_abnormal} abnormal WebSocket closes)"
                 f"{self.stopped}"]  # fmt: skip
        if self.errors:
            lines[0] += f"; {len(self.errors)} unexpected exceptions logged"
        for label, failure, count, example in self.classes()[:limit]:
            lines.append(f"  {count:4d} × {failure}  ←  {label}")
            lines.append(f"         e.g. {example.case!r:.400}  answered: {example.detail[:160]!r}")
        seen: Counter[str] = Counter()
        for server, err in self.errors:
            key = f"{server}: {err.where[:100]} → {err.exception[:200]}"
            seen[key] += 1
        for key, count in seen.most_common(limit):
            lines.append(f"  log {count:3d} × {key}")
        return "\n".join(lines)


class _Stop(Exception):
    """Raised inside the hypothesis loop when the endpoint's time or failure budget is spent."""


def plain_case(endpoint: Any) -> Case | None:
    """A valid request of ``endpoint`` drawn from its own strategy (None for WebSocket frame endpoints)."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    from tests.security.fuzzcases import is_plain

    try:
        quick = settings(max_examples=2000, database=None, phases=[Phase.generate],
                         suppress_health_check=list(HealthCheck))  # fmt: skip
        return find(endpoint.cases(), is_plain, settings=quick)
    except NoSuchExample:
        return None


def run_endpoint(h: Harness, endpoint: Any, examples: int, seconds: float, concurrency: int = 1,
                 max_failures: int | None = None, settle: float = 0.5, sweep: bool = True) -> Tally:  # fmt: skip
    """First (``sweep``) one valid request of ``endpoint`` with each header damage, wrong Content-Type and odd
    method; then up to ``examples`` cases drawn by hypothesis; at most ``concurrency`` in flight, within
    ``seconds``. Then what the gateways logged meanwhile."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    from tests.security.fuzzcases import request_variants

    tally = Tally(endpoint.name)
    mark = h.mark()
    started = time.monotonic()
    budget_from: list[float] = []  # the time budget runs from the first case, not from building the strategies
    free = list(range(concurrency))
    pending: list[tuple[int, Any]] = []
    sockets: list[dict[str, WsConn]] = [{} for _ in range(concurrency)]

    def settle_one() -> None:
        worker, future = pending.pop(0)
        tally.add(future.result())
        free.append(worker)

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)  # fmt: skip
    @given(endpoint.cases())
    def one(case: Case) -> None:
        if not budget_from:
            budget_from.append(time.monotonic())
        if time.monotonic() - budget_from[0] > seconds:
            tally.stopped = tally.stopped or f" (time budget of {seconds:g} s spent)"
            raise _Stop
        if max_failures is not None and len(tally.failures) >= max_failures:
            tally.stopped = tally.stopped or f" (stopped after {max_failures} failures)"
            raise _Stop
        while not free:
            settle_one()
        worker = free.pop()
        pending.append((worker, h.loop.submit(h.send(case, endpoint.server, sockets[worker]))))
        if concurrency == 1:
            settle_one()

    base = plain_case(endpoint) if sweep else None
    try:
        for case in request_variants(base) if base is not None else []:
            one.hypothesis.inner_test(case)
        one()
    except Exception:
        if not tally.stopped:
            raise
    while pending:
        settle_one()
    for conns in sockets:
        for conn in conns.values():
            h.loop.loop.call_soon_threadsafe(conn.close)
    time.sleep(settle)
    tally.seconds = time.monotonic() - started
    tally.errors, tally.client_errors_logged = h.errors_since(mark)
    return tally
