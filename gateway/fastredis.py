"""A lean, pipelined Redis connection for the two scripts every message runs.

redis-py spends ~80 µs of CPU per command (connection pool, retries, argument encoding); the
message path makes two calls, so that was a quarter of a turn. This client keeps one
connection, writes the commands of one pass of the event loop together (the turns of many customers in one
system call) and matches replies to waiting futures in order (Redis answers in order), parsing with hiredis.
Everything else still goes through redis-py.

Matching by order is only safe while the stream of requests and the stream of replies stay in
step, so:

- a command is encoded completely before its future is queued or a byte is written; an argument
  that cannot be sent raises :class:`FastRedisEncodeError` to that caller alone;
- anything unexpected while writing or parsing (a protocol error, a reply nobody waits for, an
  exception in the parser, a lost connection) or a reply that takes longer than the timeout
  breaks the connection: every pending call fails with ``FastRedisError(lost=True)`` (which the
  gateway answers with 503), the socket is dropped and the next call opens a new one;
- a caller cancelled while waiting keeps its place in the queue; its reply is read and discarded.

``rediss://`` URLs speak TLS, configured from the URL's ``ssl_*`` options like redis-py
(certificate verification and host name check on by default). The timeout comes from the URL's
``socket_timeout`` (else 5 s; ``socket_connect_timeout`` for connecting, else the same).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any

import hiredis
from redis.connection import parse_url

DEFAULT_TIMEOUT = 5.0  # seconds a command (or connecting) may take before the connection is given up

# the URL options this client understands; any other ssl_* option is refused rather than ignored
_SSL_OPTIONS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_ca_data", "ssl_certfile",
                          "ssl_keyfile", "ssl_password", "ssl_check_hostname", "ssl_min_version",
                          "ssl_ciphers"})  # fmt: skip
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class FastRedisError(Exception):
    """A Redis error reply (e.g. NOSCRIPT), or (``lost``) a connection that broke or timed out before the reply came."""

    def __init__(self, message: str, lost: bool = False) -> None:
        super().__init__(message)
        self.lost = lost


class FastRedisEncodeError(FastRedisError):
    """An argument that cannot be sent to Redis (a str with a lone surrogate, an unsupported type, a huge int).

    Raised to the one caller before anything was queued or written; the connection is untouched."""


def _encode_arg(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()  # strict UTF-8: a lone surrogate raises UnicodeEncodeError
    if isinstance(arg, bool):  # before int: True is an int, but "True" in Redis is a mistake (redis-py refuses it too)
        raise TypeError("a bool cannot be sent to Redis")
    if isinstance(arg, int | float):
        return repr(arg).encode()  # an int over Python's digit limit raises ValueError
    if isinstance(arg, bytearray | memoryview):
        return bytes(arg)
    raise TypeError(f"a value of type {type(arg).__name__} cannot be sent to Redis")


# RESP's "$<length>\r\n" / "*<count>\r\n" made once for the usual sizes: formatting them was a tenth of encoding
_BULK = [b"$%d\r\n" % n for n in range(1024)]
_ARRAY = [b"*%d\r\n" % n for n in range(64)]


def _encode(args: tuple[Any, ...]) -> bytes:
    """One command in RESP, or FastRedisEncodeError (naming the command and the argument's place, not its value)."""
    count = len(args)
    out = [_ARRAY[count] if count < 64 else b"*%d\r\n" % count]
    push = out.append
    for index, arg in enumerate(args):
        try:
            kind = type(arg)  # the common kinds first: a turn's commands are mostly strings, bytes and ints
            if kind is str:
                data = arg.encode()
            elif kind is bytes:
                data = arg
            elif kind is int:
                data = b"%d" % arg  # an int over Python's digit limit raises ValueError
            else:
                data = _encode_arg(arg)
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            command = args[0] if args and isinstance(args[0], str) and args[0].isascii() else "?"
            raise FastRedisEncodeError(f"argument {index} of {command[:20]} cannot be sent to Redis: {exc}") from exc
        size = len(data)
        push(_BULK[size] if size < 1024 else b"$%d\r\n" % size)  # the data itself is not copied into a formatted string
        push(data)
        push(b"\r\n")
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader(replyError=FastRedisError)
        # (future, deadline) per written command, in the order written; replies come in the same order
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._watchdog: asyncio.TimerHandle | None = None
        # commands written in one pass of the event loop leave in one write (one system call for the turns of
        # many customers at once, as Redis's replies come back in one read)
        self._outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes) -> asyncio.Future[Any]:
        """Queue a future for one already-encoded command and write it."""
        if self.closed or self.transport is None:
            raise FastRedisError("connection lost: closed", lost=True)
        future: asyncio.Future[Any] = self._loop.create_future()
        deadline = self._loop.time() + self.timeout
        self.waiting.append((future, deadline))
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(data)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)
        return future

    def _flush(self) -> None:
        """Write what this pass of the loop queued, in the order it was queued (the order of ``waiting``)."""
        data, self._outgoing = self._outgoing, []
        if self.closed or self.transport is None:  # broken meanwhile: its futures have failed already
            return
        try:
            self.transport.write(data[0] if len(data) == 1 else b"".join(data))
        except Exception as exc:  # the futures are queued: pairing is no longer certain
            self.break_(f"write failed: {type(exc).__name__}")

    def data_received(self, data: bytes) -> None:
        try:
            self.reader.feed(data)
            while (reply := self.reader.gets()) is not False:
                if not self.waiting:
                    raise FastRedisError("a reply nobody asked for")
                future, _ = self.waiting.popleft()
                if future.done():  # its caller was cancelled: the reply is read and dropped
                    continue
                if isinstance(reply, FastRedisError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except Exception as exc:  # protocol error, unexpected reply, a bug: nothing after this can be trusted
            self.break_(f"unreadable reply stream: {type(exc).__name__}")

    def _check_deadline(self) -> None:
        self._watchdog = None
        if self.closed or not self.waiting:
            return
        deadline = self.waiting[0][1]  # the oldest command has the earliest deadline
        if self._loop.time() >= deadline:
            self.break_(f"Redis did not answer within {self.timeout:g} s", timeout=True)
        else:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)

    def break_(self, reason: str, timeout: bool = False) -> None:
        """Give the connection up: fail every pending call, drop the socket (the next call reconnects)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.closed = True
        self._outgoing = []
        self._fail_all(f"connection {'timed out' if timeout else 'lost'}: {reason}")
        if self.transport is not None:
            self.transport.abort()  # also discards anything still buffered for writing

    def _fail_all(self, message: str) -> None:
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(FastRedisError(message, lost=True))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.closed = True
        self._fail_all(f"connection lost: {type(exc).__name__ if exc else 'closed'}")


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """A client TLS context from a rediss:// URL's options, with redis-py's meaning and defaults."""
    unknown = sorted(k for k in options if k.startswith("ssl_") and k not in _SSL_OPTIONS)
    if unknown:
        raise ValueError(f"rediss:// option(s) not supported by the lean Redis connection: {', '.join(unknown)}")
    reqs = options.get("ssl_cert_reqs", "required")
    if isinstance(reqs, str):
        if reqs.lower() not in _CERT_REQS:
            raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
        reqs = _CERT_REQS[reqs.lower()]
    check_hostname = options.get("ssl_check_hostname", True)
    if isinstance(check_hostname, str):
        check_hostname = check_hostname.lower() in ("1", "true", "yes", "on")
    context = ssl.create_default_context()
    context.check_hostname = bool(check_hostname) and reqs != ssl.CERT_NONE
    context.verify_mode = reqs
    if options.get("ssl_certfile") or options.get("ssl_keyfile"):
        context.load_cert_chain(options.get("ssl_certfile"), options.get("ssl_keyfile"), options.get("ssl_password"))
    if options.get("ssl_ca_certs") or options.get("ssl_ca_path") or options.get("ssl_ca_data"):
        context.load_verify_locations(options.get("ssl_ca_certs"), options.get("ssl_ca_path"),
                                      options.get("ssl_ca_data"))  # fmt: skip
    if options.get("ssl_min_version") is not None:
        context.minimum_version = ssl.TLSVersion(int(options["ssl_min_version"]))
    if options.get("ssl_ciphers"):
        context.set_ciphers(options["ssl_ciphers"])
    return context


class FastRedis:
    def __init__(self, url: str, timeout: float | None = None) -> None:
        self.options = parse_url(url)
        self.timeout = float(timeout or self.options.get("socket_timeout") or DEFAULT_TIMEOUT)
        self.connect_timeout = float(self.options.get("socket_connect_timeout") or self.timeout)
        self.ssl: ssl.SSLContext | None = None
        if url.lower().startswith("rediss://"):
            self.ssl = _ssl_context(self.options)
        elif any(k.startswith("ssl_") for k in self.options):
            raise ValueError("ssl_* options need a rediss:// URL")
        self._protocol: _Protocol | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            return _Protocol(self.timeout)

        if self.options.get("path"):
            _, protocol = await loop.create_unix_connection(factory, self.options["path"])
        else:
            host, port = self.options.get("host", "localhost"), int(self.options.get("port", 6379))
            if self.ssl is not None:
                _, protocol = await loop.create_connection(factory, host, port, ssl=self.ssl,
                                                           ssl_handshake_timeout=self.connect_timeout)  # fmt: skip
            else:
                _, protocol = await loop.create_connection(factory, host, port)
        try:
            if self.options.get("password"):
                auth = [self.options["password"]]
                if self.options.get("username"):
                    auth.insert(0, self.options["username"])
                await protocol.send(_encode(("AUTH", *auth)))
            if int(self.options.get("db", 0) or 0):
                await protocol.send(_encode(("SELECT", int(self.options["db"]))))
        except BaseException:
            if protocol.transport:  # never leave a half-set-up connection (wrong database) in use
                protocol.transport.abort()
            raise
        self._protocol = protocol
        return protocol

    async def _connected(self) -> _Protocol:
        try:
            async with asyncio.timeout(self.connect_timeout):  # the wait for the lock counts too
                async with self._lock:
                    protocol = self._protocol
                    if protocol is None or protocol.closed:
                        protocol = await self._connect()
                    return protocol
        except TimeoutError as exc:
            raise FastRedisError(f"connecting to Redis timed out after {self.connect_timeout:g} s", lost=True) from exc
        except OSError as exc:  # refused, unreachable, TLS handshake or certificate failure
            raise FastRedisError(f"cannot connect to Redis: {exc}", lost=True) from exc

    async def execute(self, *args: Any) -> Any:
        data = _encode(args)  # first: a bad argument fails here, before anything shared is touched
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        return await protocol.send(data)

    async def evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        return await self.execute("EVALSHA", sha, len(keys), *keys, *args)

    async def aclose(self) -> None:
        if self._protocol and self._protocol.transport:
            self._protocol.transport.close()
        self._protocol = None


class Lean:
    """The commands of a hot path (a turn's hand-over, the demo back end's reads): on the lean connection when the
    deployment has one Redis server, else through redis-py (a cluster: slot-aware). The replies are the same either
    way (a dict for ``HGETALL``, as redis-py gives it). A single redis-py call costs about twice the CPU of the same
    command here, and a turn is mostly such calls."""

    def __init__(self, redis: Any, fast: FastRedis | None = None) -> None:
        self.redis = redis
        self.fast = fast

    async def script(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a registered script (redis-py's ``AsyncScript``); loaded again when Redis restarted and forgot it."""
        if self.fast is None:
            return await script(keys=keys, args=args)
        try:
            return await self.fast.evalsha(script.sha, keys, args)
        except FastRedisError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.redis.script_load(script.script)
            return await self.fast.evalsha(script.sha, keys, args)

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        if self.fast is None:
            return await self.redis.hgetall(key)
        flat = await self.fast.execute("HGETALL", key)
        return dict(zip(flat[::2], flat[1::2], strict=True))
