"""Slow clients against the real server (``python -m gateway``, its own connection handling, gateway/slow_clients.py),
with ``server.header_timeout`` and ``server.body_timeout`` at 1 s: a connection that sends nothing, a head sent a byte
at a time, a body promised and never sent — each gets a JSON 408 and is closed, instead of holding a socket for ever
(aiohttp alone kept all three open past 200 s); customers who are merely slow, or keep a connection or a WebSocket
open between messages, are answered as before."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import NLU_CACHE
from tests.gateway.test_server_process import free_port
from tests.gateway.test_workers import read_until, stop_supervisor

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
LIMIT = 1.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data = tmp_path_factory.mktemp("slow") / "var"
    data.mkdir()
    (data / "nlu").symlink_to(NLU_CACHE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"GATEWAY_SERVER_HEADER_TIMEOUT": str(LIMIT), "GATEWAY_SERVER_BODY_TIMEOUT": str(LIMIT)}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", str(data)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        asyncio.run(read_until(proc, "gateway ready", 90))
        yield port
    finally:
        stop_supervisor(proc, data)


async def _answer(reader: asyncio.StreamReader, within: float) -> tuple[float, int, dict[str, str], bool]:
    """Reads one response: when it came (s from now), its status, its JSON body, and whether the connection closed
    after it."""
    began = time.monotonic()
    async with asyncio.timeout(within):
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = json.loads(await reader.readexactly(length))
    took = time.monotonic() - began
    async with asyncio.timeout(15):  # closed at once, or (an unread body) after aiohttp's lingering 10 s at most
        closed = await reader.read(1) == b""
    return took, status, body, closed


async def test_a_connection_that_sends_nothing_gets_408_and_is_closed(gateway):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway)
    took, status, body, closed = await _answer(reader, 10)
    assert status == 408 and closed and LIMIT - 0.1 < took < LIMIT + 2
    assert "1 s" in body["error"] and "1 秒" in body["error_zh"]
    writer.close()


async def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_limit(gateway):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway)
    head = b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    began = time.monotonic()

    async def trickle() -> None:  # a byte every 0.1 s: each one would have reset an idle timer
        for byte in head:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)

    dripping = asyncio.ensure_future(trickle())
    try:
        _, status, _, closed = await _answer(reader, 10)
        assert status == 408 and closed and time.monotonic() - began < LIMIT + 2
    finally:
        dripping.cancel()
        writer.close()


async def test_a_body_promised_and_not_sent_gets_408_naming_the_limit(gateway):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway)
    writer.write(b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{")  # fmt: skip
    took, status, body, closed = await _answer(reader, 10)
    assert status == 408 and closed and LIMIT - 0.1 < took < LIMIT + 2
    assert body["error"] == "the request body did not arrive within 1 s" and body["error_zh"]
    writer.close()


async def test_slow_but_whole_requests_and_idle_connections_are_served(gateway):
    base = f"http://127.0.0.1:{gateway}"
    # a head in three pieces within the limit: answered
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway)
    body = json.dumps({"sender": "slow-1", "message": "你好"}).encode()
    pieces = [b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\n", b"Content-Type: application/json\r\n",
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body]  # fmt: skip
    for piece in pieces:
        writer.write(piece)
        await asyncio.sleep(0.2)
    status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
    assert status == 200
    writer.close()
    # one keep-alive connection, requests further apart than the limit; a WebSocket open longer than it
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{base}/ws/chat")
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway)  # one kept-alive connection
        for i in range(3):
            body = json.dumps({"sender": "slow-2", "message": "你好", "metadata": {"message_id": f"k{i}"}}).encode()
            writer.write(b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
            status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
            assert status == 200
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            await asyncio.sleep(LIMIT * 1.5)  # idle on the kept connection longer than the limit
        writer.close()
        await ws.send_json({"type": "message", "text": "你好", "client_id": "s-1"})
        async with asyncio.timeout(10):
            while json.loads((await ws.receive()).data).get("from") != "bot":
                pass
        assert not ws.closed
        await ws.close()
