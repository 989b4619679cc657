"""The lean pipelined connection used on the message path, against the real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from redis.connection import parse_url

from gateway.fastredis import FastRedis, FastRedisEncodeError, FastRedisError, Lean
from tests.conftest import one_server_only

pytestmark = one_server_only  # the lean connection speaks to one server (off on a cluster)


async def test_commands_in_order_types_and_errors(redis_url, key_prefix, redis_client):
    fast = FastRedis(redis_url)
    key = f"{key_prefix}fast"
    results = await asyncio.gather(*(fast.execute("INCR", key) for _ in range(200)))
    assert results == list(range(1, 201))  # replies matched to callers in order
    assert await fast.execute("SET", f"{key}:s", "héllo ✓") == b"OK"
    assert await redis_client.get(f"{key}:s") == "héllo ✓".encode()
    assert await fast.execute("HSET", f"{key}:h", "a", 1, "b", 2.5) == 2
    with pytest.raises(FastRedisError, match="NOSCRIPT"):
        await fast.evalsha("0" * 40, [key], [])
    assert await fast.execute("GET", key) == b"200"  # the connection survives an error reply
    await fast.aclose()


async def test_values_and_argument_counts_around_the_precomputed_header_sizes(redis_url, key_prefix, redis_client):
    """RESP's length headers come from a table for values under 1,024 bytes and commands under 64 arguments; a
    value or a command on either side of those edges reaches Redis whole."""
    fast = FastRedis(redis_url)
    key = f"{key_prefix}sizes"
    try:
        for size in (0, 1, 1022, 1023, 1024, 1025, 70_000):
            value = ("二" * (size // 3) + "x" * (size % 3)).encode()
            assert len(value) == size
            assert await fast.execute("SET", f"{key}:{size}", value) == b"OK"
            assert await redis_client.get(f"{key}:{size}") == value
        for count in (61, 62, 63, 200):  # RPUSH, the key and the values: 63, 64, 65 and 202 arguments
            values = [str(i) for i in range(count)]
            assert await fast.execute("RPUSH", f"{key}:l{count}", *values) == count
            assert await redis_client.lrange(f"{key}:l{count}", 0, -1) == [v.encode() for v in values]
    finally:
        await fast.aclose()


async def test_lean_gives_the_replies_redis_py_gives(redis_url, key_prefix, redis_client):
    """The hot paths' commands (``Lean``) on the lean connection and through redis-py: the same replies, the same
    script (loaded again when Redis forgot it), an error reply raised."""
    key = f"{key_prefix}lean"
    await redis_client.hset(key, mapping={"a": "1", "b": "二"})
    await redis_client.set(f"{key}:s", "a string")
    script = redis_client.register_script(f"return redis.call('HGET', KEYS[1], ARGV[1]) -- {uuid.uuid4()}")  # new
    fast = FastRedis(redis_url)
    lean, plain = Lean(redis_client, fast), Lean(redis_client)
    try:
        for one in (lean, plain):
            assert await one.hgetall(key) == {b"a": b"1", b"b": "二".encode()}
            assert await one.hgetall(f"{key}:none") == {}
            assert await one.script(script, [key], ["b"]) == "二".encode()
            with pytest.raises(Exception, match="WRONGTYPE"):
                await one.script(script, [f"{key}:s"], ["b"])
        assert fast._protocol is not None  # the lean one did go over the lean connection
    finally:
        await fast.aclose()


async def test_reconnects_after_the_connection_drops(redis_url, key_prefix):
    fast = FastRedis(redis_url)
    key = f"{key_prefix}fast2"
    await fast.execute("SET", key, "1")
    fast._protocol.transport.close()  # what a Redis restart does to the socket
    await asyncio.sleep(0.05)
    assert await fast.execute("GET", key) == b"1"
    await fast.aclose()


async def test_selects_the_url_database(redis_url, key_prefix):
    if redis_url.startswith("unix://"):
        pytest.skip("the embedded test Redis is addressed by socket without a database number")
    import redis

    base = redis_url.rsplit("/", 1)[0]
    fast = FastRedis(f"{base}/5")
    await fast.execute("SET", f"{key_prefix}db5", "x")
    in_db5 = redis.Redis.from_url(f"{base}/5")
    in_db4 = redis.Redis.from_url(f"{base}/4")
    try:
        assert in_db5.get(f"{key_prefix}db5") == b"x" and in_db4.get(f"{key_prefix}db5") is None
    finally:
        in_db5.delete(f"{key_prefix}db5")
        in_db5.close()
        in_db4.close()
        await fast.aclose()


async def test_a_failed_handshake_never_leaves_a_usable_connection(redis_url):
    if redis_url.startswith("unix://"):
        pytest.skip("needs a TCP Redis URL to add a password to")
    host = redis_url.split("://", 1)[1].split("/", 1)[0]
    fast = FastRedis(f"redis://:not-the-password@{host}/9")  # the test Redis has no password: AUTH fails
    for _ in range(2):  # the second call must fail the same way, not run on an unauthenticated connection
        with pytest.raises(FastRedisError):
            await fast.execute("PING")
    await fast.aclose()


# ---- a reply always reaches the caller that asked for it -------------------------------------------
ECHO = "return {ARGV[1], ARGV[2]}"  # answers the caller's own token and value
FAIL = "return redis.error_reply(ARGV[1])"  # an error reply that names the caller's token


def _expected(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return repr(value).encode()


class _Odd:
    def __str__(self) -> str:
        return "odd"


POISON = ["\ud800", "ok\udfffok", "\udc80", None, object(), _Odd(), True, False, [1, 2], {"a": 1}, {1}, (1,),
          10**5000, -(10**4400), Decimal("1.5"), 1j]  # fmt: skip


async def test_poisoned_arguments_never_shift_replies_between_concurrent_callers(redis_url):
    fast = FastRedis(redis_url)
    await fast.execute("PING")
    protocol = fast._protocol

    async def normal(i: int) -> None:
        token = f"t{i}-{uuid.uuid4().hex}"
        for round_ in range(10):
            value = f"{token}:{round_}:余额"
            assert await fast.execute("EVAL", ECHO, 0, token, value) == [token.encode(), value.encode()]
            with pytest.raises(FastRedisError, match=token):
                await fast.execute("EVAL", FAIL, 0, token)  # error replies are paired too

    async def poisoned(i: int) -> None:
        for round_ in range(10):
            bad = POISON[(i + round_) % len(POISON)]
            with pytest.raises(FastRedisEncodeError, match="argument 4 of EVAL"):
                await fast.execute("EVAL", ECHO, 0, "poison", bad)
            await asyncio.sleep(0)

    await asyncio.gather(*(normal(i) if i % 2 else poisoned(i) for i in range(60)))
    assert fast._protocol is protocol and not protocol.closed  # a bad argument never touched the connection
    assert not protocol.waiting
    await fast.aclose()


async def test_an_encoding_error_names_the_argument_and_leaves_the_connection_alone(redis_url, key_prefix):
    fast = FastRedis(redis_url)
    key = f"{key_prefix}enc"
    await fast.execute("SET", key, "mine")
    protocol = fast._protocol
    for bad, needle in [("\ud800", "surrogates not allowed"), (None, "NoneType"), (True, "bool"),
                        (10**5000, "digits"), ([1], "list")]:  # fmt: skip
        with pytest.raises(FastRedisEncodeError, match=needle) as caught:
            await fast.execute("SET", key, bad)
        assert "argument 2 of SET" in str(caught.value) and not caught.value.lost
        assert not protocol.waiting
    assert await fast.execute("GET", key) == b"mine"
    assert fast._protocol is protocol
    # bytes, bytearray, memoryview, ints and floats are sent as Redis would store them
    for value, stored in [(b"\xff\x00", b"\xff\x00"), (bytearray(b"ba"), b"ba"), (memoryview(b"mv"), b"mv"),
                          (-7, b"-7"), (2.5, b"2.5"), (10**30, b"1" + b"0" * 30)]:  # fmt: skip
        await fast.execute("SET", key, value)
        assert await fast.execute("GET", key) == stored
    await fast.aclose()


_PLAIN = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
_SURROGATE = st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), st.integers(0xD800, 0xDFFF).map(chr),
                       st.text(max_size=5))  # fmt: skip
_BAD = st.one_of(
    _SURROGATE,
    st.sampled_from([None, True, False, object(), _Odd(), Decimal("2"), 1j, {1}, (1, 2)]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(min_value=4400, max_value=6000).map(lambda digits: 10**digits),
)
# a call: ("ok", value) echoes its own value; ("err", _) gets its own error reply; ("bad", value) never reaches Redis
_CALL = st.one_of(
    st.tuples(st.just("ok"), _PLAIN),
    st.tuples(st.just("err"), st.none()),
    st.tuples(st.just("bad"), _BAD),
)


def test_property_poison_interleaved_with_normal_calls_never_crosses_replies(redis_url):
    """Hypothesis: any mix of good and unsendable arguments from concurrent callers; every good call gets its own
    reply, every bad one an encoding error, and the one connection (kept across all examples) never breaks."""
    loop = asyncio.new_event_loop()
    fast = FastRedis(redis_url)
    seen: dict[str, int] = {"ok": 0, "err": 0, "bad": 0}

    async def one(kind: str, value: Any, yields: int) -> None:
        for _ in range(yields):  # lets other callers' writes and replies interleave with this one
            await asyncio.sleep(0)
        token = uuid.uuid4().hex
        if kind == "ok":
            assert await fast.execute("EVAL", ECHO, 0, token, value) == [token.encode(), _expected(value)]
        elif kind == "err":
            with pytest.raises(FastRedisError, match=token) as caught:
                await fast.execute("EVAL", FAIL, 0, token)
            assert not caught.value.lost
        else:
            with pytest.raises(FastRedisEncodeError):
                await fast.execute("EVAL", ECHO, 0, token, value)
        seen[kind] += 1

    async def run(calls: list[tuple[tuple[str, Any], int]]) -> None:
        before = fast._protocol
        await asyncio.gather(*(one(kind, value, yields) for (kind, value), yields in calls))
        assert before is None or fast._protocol is before, "the connection was replaced"
        assert not fast._protocol.closed and not fast._protocol.waiting

    @hyp_settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(_CALL, st.integers(0, 3)), min_size=1, max_size=60))
    def check(calls: list[tuple[tuple[str, Any], int]]) -> None:
        loop.run_until_complete(run(calls))

    loop.run_until_complete(fast.execute("PING"))
    try:
        check()
    finally:
        loop.run_until_complete(fast.aclose())
        loop.close()
    assert seen["ok"] and seen["err"] and seen["bad"]


# ---- a broken stream breaks the connection, never the pairing ----------------------------------------
class FaultyHop:
    """A TCP hop in front of the real Redis (optionally speaking TLS to the client) that can hold Redis's
    replies, push bytes of its own into the reply stream or drop the client: what a broken network or a
    misbehaving server does, with the real Redis behind it."""

    def __init__(self, redis_url: str, tls: ssl.SSLContext | None = None) -> None:
        self.upstream = parse_url(redis_url)
        self.tls = tls
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.clients: list[asyncio.StreamWriter] = []
        self.accepted = 0
        self.forwarded = 0  # bytes the client sent that reached Redis
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.tls)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.clients.append(writer)
        if self.upstream.get("path"):
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream["path"])
        else:
            up_reader, up_writer = await asyncio.open_connection(self.upstream.get("host", "localhost"),
                                                                 int(self.upstream.get("port", 6379)))  # fmt: skip

        async def to_redis() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    self.forwarded += len(data)
                    up_writer.write(data)
            up_writer.close()

        async def to_client() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await up_reader.read(65536):
                    await self.flowing.wait()
                    if writer.is_closing():
                        break
                    writer.write(data)
            writer.close()
            up_writer.close()

        for coro in (to_redis(), to_client()):
            task = asyncio.create_task(coro)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def inject(self, data: bytes) -> None:
        for writer in self.clients:
            if not writer.is_closing():
                writer.write(data)

    def drop_clients(self) -> None:
        for writer in self.clients:
            writer.transport.abort()

    async def stop(self) -> None:
        self.flowing.set()
        self.drop_clients()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server:
            self.server.close()
            await self.server.wait_closed()


def hop_url(port: int, redis_url: str, scheme: str = "redis", query: str = "") -> str:
    db = parse_url(redis_url).get("db", 0)
    return f"{scheme}://127.0.0.1:{port}/{db}{'?' + query if query else ''}"


@pytest.fixture
async def hop(redis_url):
    proxy = FaultyHop(redis_url)
    port = await proxy.start()
    proxy.url = hop_url(port, redis_url)
    yield proxy
    await proxy.stop()


async def echo_calls(fast: FastRedis, count: int) -> tuple[list[str], list[asyncio.Task[Any]]]:
    tokens = [uuid.uuid4().hex for _ in range(count)]
    tasks = [asyncio.create_task(fast.execute("EVAL", ECHO, 0, t, t)) for t in tokens]
    await asyncio.sleep(0.05)  # all written; their replies are held by the hop
    return tokens, tasks


async def wait_until(condition: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_reply_nobody_asked_for_breaks_the_connection_instead_of_reaching_the_next_caller(hop, key_prefix):
    fast = FastRedis(hop.url)
    key = f"{key_prefix}stray"
    assert await fast.execute("SET", key, "mine") == b"OK"
    protocol = fast._protocol
    hop.inject(b"$6\r\ntheirs\r\n")  # a well-formed reply, but no call is waiting for it
    await wait_until(lambda: protocol.closed)
    assert await fast.execute("GET", key) == b"mine"  # not "theirs": the next call went over a new connection
    assert hop.accepted == 2
    await fast.aclose()


async def test_a_protocol_error_fails_every_pending_call_then_reconnects(hop):
    fast = FastRedis(hop.url)
    await fast.execute("PING")
    hop.flowing.clear()
    _, tasks = await echo_calls(fast, 25)
    hop.inject(b"?garbage\r\n")  # not RESP: hiredis raises in data_received
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, FastRedisError) and r.lost for r in results), results
    hop.flowing.set()  # the held replies go to a connection already dropped
    token = uuid.uuid4().hex
    assert await fast.execute("EVAL", ECHO, 0, token, "again") == [token.encode(), b"again"]
    assert hop.accepted == 2
    await fast.aclose()


async def test_a_dropped_connection_fails_pending_calls_as_lost(hop):
    fast = FastRedis(hop.url)
    await fast.execute("PING")
    hop.flowing.clear()
    _, tasks = await echo_calls(fast, 10)
    hop.drop_clients()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, FastRedisError) and r.lost for r in results), results
    hop.flowing.set()
    assert await fast.execute("PING") == b"PONG"
    await fast.aclose()


async def test_cancelled_callers_keep_their_place_and_their_replies_are_dropped(hop):
    fast = FastRedis(hop.url)
    await fast.execute("PING")
    protocol = fast._protocol
    hop.flowing.clear()
    tokens, tasks = await echo_calls(fast, 40)
    for task in tasks[::3]:
        task.cancel()
    hop.flowing.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for i, (token, result) in enumerate(zip(tokens, results, strict=True)):
        if i % 3 == 0:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result == [token.encode(), token.encode()]
    token = uuid.uuid4().hex
    assert await fast.execute("EVAL", ECHO, 0, token, "next") == [token.encode(), b"next"]
    assert fast._protocol is protocol and not protocol.waiting  # cancellation never broke the connection
    await fast.aclose()


async def test_a_hung_redis_fails_calls_after_the_timeout_and_the_next_call_reconnects(hop):
    fast = FastRedis(hop.url, timeout=0.4)
    await fast.execute("PING")
    hop.flowing.clear()  # Redis "hangs": nothing comes back
    started = time.monotonic()
    first = asyncio.create_task(fast.execute("PING"))
    await asyncio.sleep(0.2)
    later = asyncio.create_task(fast.execute("PING"))  # queued behind a reply that will never come
    results = await asyncio.gather(first, later, return_exceptions=True)
    elapsed = time.monotonic() - started
    assert all(isinstance(r, FastRedisError) and r.lost and "timed out" in str(r) for r in results), results
    assert 0.35 <= elapsed < 1.5, elapsed
    hop.flowing.set()
    assert await fast.execute("PING") == b"PONG"  # a new connection; the stale PONGs went to the old one
    assert hop.accepted == 2
    await fast.aclose()


async def test_connecting_to_a_server_that_never_answers_times_out(hop, redis_url):
    hop.flowing.clear()
    fast = FastRedis(hop_url(hop.server.sockets[0].getsockname()[1], "redis://x/9"), timeout=0.3)  # SELECT hangs
    started = time.monotonic()
    results = await asyncio.gather(*(fast.execute("PING") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, FastRedisError) and r.lost for r in results), results
    assert time.monotonic() - started < 1.5
    await fast.aclose()


def test_the_timeout_comes_from_the_url_or_the_argument():
    assert FastRedis("redis://localhost/0").timeout == 5.0
    assert FastRedis("redis://localhost/0?socket_timeout=1.5").timeout == 1.5
    assert FastRedis("redis://localhost/0?socket_timeout=1.5&socket_connect_timeout=3").connect_timeout == 3.0
    assert FastRedis("redis://localhost/0", timeout=0.25).timeout == 0.25


async def test_an_unreachable_redis_is_an_outage_not_a_crash():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    fast = FastRedis(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(FastRedisError) as caught:
        await fast.execute("PING")
    assert caught.value.lost
    await fast.aclose()


# ---- rediss:// speaks TLS --------------------------------------------------------------------------------
def _self_signed(folder: Path, names: list[str], ips: list[str]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / f"{uuid.uuid4().hex}.crt", folder / f"{uuid.uuid4().hex}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


@pytest.fixture
async def tls_hop(redis_url, tmp_path):
    cert, key = _self_signed(tmp_path, ["localhost"], ["127.0.0.1"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    proxy = FaultyHop(redis_url, tls=server_ctx)
    proxy.port = await proxy.start()
    proxy.cert = cert
    yield proxy
    await proxy.stop()


async def test_rediss_speaks_tls_to_a_verified_server(tls_hop, redis_url, key_prefix, redis_client):
    url = hop_url(tls_hop.port, redis_url, "rediss", f"ssl_ca_certs={tls_hop.cert}")
    fast = FastRedis(url)
    assert fast.ssl is not None and fast.ssl.verify_mode == ssl.CERT_REQUIRED and fast.ssl.check_hostname
    key = f"{key_prefix}tls"
    assert await fast.execute("SET", key, "over tls") == b"OK"  # the hop only speaks TLS: this went encrypted
    assert await redis_client.get(key) == b"over tls"
    assert isinstance(fast._protocol.transport.get_extra_info("ssl_object"), ssl.SSLObject)
    await fast.aclose()


async def test_rediss_verifies_the_certificate_by_default(tls_hop, redis_url):
    fast = FastRedis(hop_url(tls_hop.port, redis_url, "rediss"))  # self-signed, no CA given: refused
    with pytest.raises(FastRedisError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        await fast.execute("PING")
    assert caught.value.lost and tls_hop.forwarded == 0  # not a byte of the command reached Redis
    await fast.aclose()


async def test_rediss_checks_the_host_name(redis_url, tmp_path):
    cert, key = _self_signed(tmp_path, ["redis.example.net"], [])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    proxy = FaultyHop(redis_url, tls=server_ctx)
    port = await proxy.start()
    try:
        fast = FastRedis(hop_url(port, redis_url, "rediss", f"ssl_ca_certs={cert}"))
        with pytest.raises(FastRedisError, match=r"CERTIFICATE_VERIFY_FAILED|match") as caught:
            await fast.execute("PING")
        assert caught.value.lost and proxy.forwarded == 0
        relaxed = FastRedis(hop_url(port, redis_url, "rediss", f"ssl_ca_certs={cert}&ssl_check_hostname=false"))
        assert await relaxed.execute("PING") == b"PONG"
        await relaxed.aclose()
        await fast.aclose()
    finally:
        await proxy.stop()


async def test_rediss_with_verification_off_still_encrypts(tls_hop, redis_url):
    fast = FastRedis(hop_url(tls_hop.port, redis_url, "rediss", "ssl_cert_reqs=none"))
    assert await fast.execute("PING") == b"PONG"
    assert fast._protocol.transport.get_extra_info("ssl_object") is not None
    await fast.aclose()


async def test_rediss_never_sends_plaintext():
    """Whatever listens, the first bytes a rediss:// connection sends are a TLS handshake, not a command."""
    first = asyncio.get_running_loop().create_future()

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(5)
        if not first.done():
            first.set_result(data)
        writer.transport.abort()

    server = await asyncio.start_server(listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fast = FastRedis(f"rediss://:secret@127.0.0.1:{port}/3?ssl_cert_reqs=none")
    with pytest.raises(FastRedisError) as caught:
        await fast.execute("SET", "k", "v")
    assert caught.value.lost
    data = await first
    assert data[:1] == b"\x16" and data[1:2] == b"\x03", data  # TLS record: handshake
    server.close()
    await server.wait_closed()
    await fast.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "rediss://localhost/0?ssl_validate_ocsp=true",  # an option redis-py knows but this client would not honour
        "rediss://localhost/0?ssl_cert_reqs=maybe",
        "redis://localhost/0?ssl_cert_reqs=required",  # TLS options on a plaintext URL
    ],
)
def test_tls_options_it_cannot_honour_are_refused_at_construction(url):
    with pytest.raises(ValueError):
        FastRedis(url)
