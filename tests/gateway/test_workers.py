"""``gateway --workers 2``: two real gateway processes on one port under a supervisor, with the embedded Redis.

One worker is killed (SIGKILL, as a crash): the supervisor starts it again, the other worker's customers keep their
WebSockets, and the port keeps answering. SIGTERM to the supervisor stops every worker and then the Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.conftest import NLU_CACHE
from tests.gateway.test_server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def workers_of(supervisor: psutil.Process) -> dict[int, psutil.Process]:
    """The supervisor's gateway workers (not its redis-server), by pid."""
    out = {}
    for child in supervisor.children():
        try:
            if "gateway" in child.cmdline() and "redis-server" not in child.name():
                out[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    return out


def owner(ws: aiohttp.ClientWebSocketResponse, workers: dict[int, psutil.Process]) -> int | None:
    """Which worker holds this WebSocket's server side: the one with a socket whose peer is our local address."""
    sock = ws._response.connection.transport.get_extra_info("sockname")  # type: ignore[union-attr]
    for pid, proc in workers.items():
        try:
            if any(c.raddr and c.raddr.port == sock[1] for c in proc.net_connections(kind="tcp")):
                return pid
        except psutil.NoSuchProcess:
            continue
    return None


async def read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not seen; output:\n{''.join(lines)}")


def start_supervisor(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, int]:
    """``gateway --workers 2`` on a free port with the embedded Redis; its data dir holds the model the test session
    trained (no training here). The process, its data dir, its port."""
    data = tmp_path / "var"
    data.mkdir()
    (data / "nlu").symlink_to(NLU_CACHE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--workers", "2", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return proc, data, port


def stop_supervisor(proc: subprocess.Popen[str], data: Path) -> None:
    """After a test, pass or fail: SIGTERM (the supervisor stops its workers and its Redis), else SIGKILL and the
    embedded Redis by its pid file (it runs in its own session, so a killed supervisor leaves it behind)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    pid_file = data / "redis" / "redis.pid"
    if pid_file.exists():
        with contextlib.suppress(psutil.Error, ValueError):
            psutil.Process(int(pid_file.read_text())).kill()


async def hello(session: aiohttp.ClientSession, base: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{base}/ws/chat")
    frame = json.loads((await ws.receive(timeout=10)).data)
    assert frame["type"] == "hello"
    return ws


async def bot_answers(ws: aiohttp.ClientWebSocketResponse, text: str, client_id: str) -> str:
    await ws.send_json({"type": "message", "text": text, "client_id": client_id})
    async with asyncio.timeout(15):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, f"socket closed: {msg}"
            frame = json.loads(msg.data)
            if frame.get("from") == "bot":
                return str(frame["text"])


async def test_two_workers_survive_a_crash_and_stop_together(nlu_engine, tmp_path):
    proc, data, port = start_supervisor(tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await read_until(proc, "2 workers serving", 60)
        supervisor = psutil.Process(proc.pid)
        workers = workers_of(supervisor)
        assert len(workers) == 2
        redis_pid = int((data / "redis" / "redis.pid").read_text())
        assert psutil.Process(redis_pid).ppid() == proc.pid  # the supervisor runs the Redis, not a worker

        async with aiohttp.ClientSession() as session:
            # connections spread over both workers (the kernel picks): open until each holds one
            held: dict[int, aiohttp.ClientWebSocketResponse] = {}
            spare = []
            for _ in range(60):
                ws = await hello(session, base)
                pid = owner(ws, workers)
                if pid is not None and pid not in held:
                    held[pid] = ws
                else:
                    spare.append(ws)
                if len(held) == 2:
                    break
            assert len(held) == 2, "the kernel never gave a connection to the second worker"
            victim, survivor = list(held)
            assert await bot_answers(held[survivor], "你好", "w-1")

            os.kill(victim, signal.SIGKILL)  # a crash
            async with asyncio.timeout(30):
                while True:
                    now = workers_of(supervisor)
                    if len(now) == 2 and victim not in now:
                        break
                    await asyncio.sleep(0.2)
            assert survivor in now  # the other worker was left alone…
            assert await bot_answers(held[survivor], "查话费", "w-2")  # …and so were its customers
            for _ in range(10):  # the port answers throughout (either worker)
                async with session.post(f"{base}/webhooks/rest/webhook",
                                        json={"sender": "workers-test", "message": "你好"}) as resp:  # fmt: skip
                    assert resp.status == 200, await resp.text()
            for ws in [*held.values(), *spare]:
                await ws.close()

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 5.0
        for pid in [*now, redis_pid]:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        output = proc.stdout.read()  # type: ignore[union-attr]
        assert "Traceback" not in output and "all workers stopped" in output
    finally:
        stop_supervisor(proc, data)


async def test_workers_must_be_at_least_one():
    proc = subprocess.run([sys.executable, "-m", "gateway", "--workers", "0"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 2 and "--workers" in proc.stderr


@pytest.mark.parametrize("after", [0.3, 0.7, 1.1])
async def test_workers_stopped_while_one_starts_all_stop_within_5_s(nlu_engine, tmp_path, after):
    """SIGTERM to the supervisor ``after`` seconds after it started worker 2, while that worker starts (connects to
    Redis, loads the model): every process is gone within 5 s. A worker stopped in its start-up used to keep running
    (its stop taken for a Redis connect's own business, gateway/tasks.py) or hang in the exit's cancel-and-wait,
    until the supervisor killed it 10 s later."""
    proc, data, _ = start_supervisor(tmp_path)
    try:
        await read_until(proc, "worker 2 started", 60)
        await asyncio.sleep(after)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = await read_until(proc, "all workers stopped", 15)
        took = time.monotonic() - began
        assert not [line for line in rest if "did not stop" in line], "".join(rest)
        assert took < 5.0, f"stopped in {took:.1f} s:\n{''.join(rest)}"
        assert await asyncio.to_thread(proc.wait, 5) == 0
    finally:
        stop_supervisor(proc, data)
