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
from collections.abc import AsyncIterator
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


async def replaced(supervisor: psutil.Process, gone: int) -> dict[int, psutil.Process]:
    """The workers once the supervisor has started one in place of ``gone``."""
    async with asyncio.timeout(30):
        while True:
            now = workers_of(supervisor)
            if len(now) == 2 and gone not in now:
                return now
            await asyncio.sleep(0.2)


def owner(ws: aiohttp.ClientWebSocketResponse, workers: dict[int, psutil.Process]) -> int | None:
    """Which worker holds this WebSocket's server side."""
    return holder(ws._response.connection.transport.get_extra_info("sockname")[1], workers)  # type: ignore[union-attr]


def holder(local_port: int, workers: dict[int, psutil.Process]) -> int | None:
    """Which worker holds the server side of our connection from ``local_port``: the one with a socket whose peer
    is that port."""
    for pid, proc in workers.items():
        try:
            if any(c.raddr and c.raddr.port == local_port for c in proc.net_connections(kind="tcp")):
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


def start_supervisor(tmp_path: Path, env_more: dict[str, str] | None = None,
                     args_more: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], Path, int]:  # fmt: skip
    """``gateway --workers 2`` on a free port with the embedded Redis; its data dir holds the model the test session
    trained (no training here). The process, its data dir, its port."""
    data = tmp_path / "var"
    data.mkdir()
    (data / "nlu").symlink_to(NLU_CACHE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | (env_more or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--workers", "2", "--port", str(port), "--data-dir", str(data), *args_more],
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


Deployment = tuple[subprocess.Popen[str], Path, int, psutil.Process, dict[int, psutil.Process]]


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, env_more: dict[str, str] | None = None,
                  args_more: tuple[str, ...] = ()) -> AsyncIterator[Deployment]:  # fmt: skip
    """``start_supervisor`` until both workers serve: the process, its data dir, its port, the supervisor and its
    workers; stopped afterwards, pass or fail."""
    proc, data, port = start_supervisor(tmp_path, env_more, args_more)
    try:
        await read_until(proc, "2 workers serving", 60)
        supervisor = psutil.Process(proc.pid)
        yield proc, data, port, supervisor, workers_of(supervisor)
    finally:
        stop_supervisor(proc, data)


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
    async with serving(tmp_path) as (proc, data, port, supervisor, workers):
        base = f"http://127.0.0.1:{port}"
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
            now = await replaced(supervisor, victim)
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


async def ask(
    port: int, workers: dict[int, psutil.Process], method: str, path: str, body: dict[str, str] | None = None
) -> tuple[int | None, int, str]:
    """One request on a new connection: which worker answered it (looked up while the connection is still open),
    the status, the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = json.dumps(body).encode() if body is not None else b""
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)  # fmt: skip
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("the connection closed before an answer")
        status = int(line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        text = (await reader.readexactly(length)).decode()
        return holder(writer.get_extra_info("sockname")[1], workers), status, text
    finally:
        writer.close()


async def scrape_each(port: int, workers: dict[int, psutil.Process]) -> dict[int, dict[str, float]]:
    """``/metrics`` as each worker answers it (new connections until every worker has answered one): by worker,
    the samples ``name{labels}`` → value."""
    from prometheus_client.parser import text_string_to_metric_families

    seen: dict[int, dict[str, float]] = {}
    for _ in range(60):
        pid, status, text = await ask(port, workers, "GET", "/metrics")
        assert status == 200, text
        if pid is None or pid in seen:
            continue
        seen[pid] = {
            f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples
        }  # fmt: skip
        if len(seen) == len(workers):
            return seen
    raise AssertionError(f"only workers {sorted(seen)} of {sorted(workers)} answered /metrics")


async def test_metrics_on_any_worker_count_every_worker_and_survive_a_crash(nlu_engine, tmp_path):
    """Prometheus scrapes one address; under ``--workers 2`` the kernel hands each scrape to either worker. Every
    worker's ``/metrics`` must give the deployment's figures: the messages all workers accepted, the sockets all of
    them hold. A crashed worker's counts stay (a counter never goes back), its sockets leave the gauge."""
    async with serving(tmp_path) as (_proc, _data, port, supervisor, workers):
        base = f"http://127.0.0.1:{port}"
        handled: dict[int | None, int] = {}
        for i in range(40):  # a new connection each: the kernel spreads them over both workers
            pid, status, text = await ask(port, workers, "POST", "/webhooks/rest/webhook",
                                          {"sender": f"metrics-{i}", "message": "你好"})  # fmt: skip
            assert status == 200, text
            handled[pid] = handled.get(pid, 0) + 1
        assert None not in handled and len(handled) == 2, f"the kernel gave every request to one worker: {handled}"

        async with aiohttp.ClientSession() as session:
            sockets: dict[int, list[aiohttp.ClientWebSocketResponse]] = {}
            for _ in range(60):  # web chat sockets on both workers
                ws = await hello(session, base)
                pid = owner(ws, workers)
                assert pid is not None
                sockets.setdefault(pid, []).append(ws)
                if len(sockets) == 2 and sum(map(len, sockets.values())) >= 5:
                    break
            assert len(sockets) == 2, "the kernel never gave a socket to the second worker"
            held = sum(map(len, sockets.values()))
            for pid, samples in (await scrape_each(port, workers)).items():
                assert samples["gateway_messages_total{channel=rest}"] == 40, (pid, handled)
                assert samples["gateway_reply_seconds_count{channel=rest}"] == 40
                assert samples["gateway_websockets{}"] == held

            victim = max(sockets, key=lambda pid: len(sockets[pid]))
            os.kill(victim, signal.SIGKILL)  # a crash
            now = await replaced(supervisor, victim)
            async with asyncio.timeout(30):  # the new worker serving
                while True:
                    with contextlib.suppress(AssertionError):
                        after = await scrape_each(port, now)
                        break
                    await asyncio.sleep(0.2)
            left = held - len(sockets[victim])
            for pid, samples in after.items():
                assert samples["gateway_messages_total{channel=rest}"] == 40, pid  # the dead worker's count kept
                assert samples["gateway_websockets{}"] == left, pid  # its sockets closed with it
            for ws in sockets[next(p for p in sockets if p != victim)]:
                await ws.close()


async def test_a_hung_worker_is_killed_and_started_again(nlu_engine, tmp_path):
    """A worker whose event loop stops turning (SIGSTOP here: from outside, the same as a loop stuck in a blocking
    call) keeps its listening socket, so the kernel goes on handing it new connections that are never answered. Its
    heartbeat stops: after ``server.worker_timeout`` the supervisor kills it and starts another; the other worker is
    left alone. A worker prints its threads' stacks when asked (SIGUSR1), as the supervisor asks a hung one first."""
    async with serving(tmp_path, {"GATEWAY_SERVER_WORKER_TIMEOUT": "3"}) as (proc, _data, port, supervisor, workers):
        hung, other = list(workers)
        os.kill(hung, signal.SIGSTOP)
        stopped = time.monotonic()
        lines = await read_until(proc, "has not answered", 15)
        took = time.monotonic() - stopped
        assert f"(pid {hung})" in lines[-1] and 2.5 < took < 8, (took, lines[-1])
        now = await replaced(supervisor, hung)
        assert other in now and not psutil.pid_exists(hung)  # the other left alone; the hung one killed (and reaped)
        await read_until(proc, "gateway ready", 60)  # the new worker serves
        for _ in range(20):  # new connections land on either worker: all answered
            _, status, text = await ask(port, now, "POST", "/webhooks/rest/webhook",
                                          {"sender": "hung-test", "message": "你好"})  # fmt: skip
            assert status == 200, text
        os.kill(other, signal.SIGUSR1)
        assert "most recent call first" in "".join(await read_until(proc, "most recent call first", 10))
        assert other in workers_of(supervisor)  # printing its stacks does not stop it


async def test_sighup_replaces_every_worker_while_the_port_keeps_answering(nlu_engine, tmp_path):
    """SIGHUP to the supervisor: new processes, one worker at a time, each started beside the old one, which stops
    once its successor serves — customers writing all along are answered (a client retries a connection the kernel
    reset as a listener closed: with the message id, the retry is answered once). A reload whose new worker cannot
    start (a broken configuration) leaves the old workers serving."""
    config = tmp_path / "gateway.yml"
    config.write_text((ROOT / "config" / "gateway.yml").read_text(encoding="utf-8"), encoding="utf-8")
    async with serving(tmp_path, args_more=("--config", str(config))) as (proc, _data, port, supervisor, _workers):
        old = workers_of(supervisor)
        answered: list[int] = []
        resets = 0
        writing = True

        async def customers() -> None:
            nonlocal resets
            i = 0
            while writing:
                body = {"sender": f"reload-{i % 7}", "message": "你好", "metadata": {"message_id": f"r-{i}"}}
                for _ in range(3):
                    try:
                        _, status, text = await ask(port, {}, "POST", "/webhooks/rest/webhook", body)
                        break
                    except (ConnectionError, asyncio.IncompleteReadError):
                        resets += 1
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"message {i}: no answer in 3 tries")
                assert status == 200, (status, text)
                answered.append(i)
                i += 1

        load = asyncio.ensure_future(customers())
        await asyncio.sleep(0.5)
        before = len(answered)
        proc.send_signal(signal.SIGHUP)
        await read_until(proc, "reload finished", 90)
        during = len(answered) - before
        await asyncio.sleep(0.5)
        writing = False
        await load
        new = workers_of(supervisor)
        assert len(new) == 2 and not set(new) & set(old), (old, new)  # every worker replaced
        assert during > 20, during  # customers wrote (and were answered: the task raises otherwise) all along
        assert resets <= 5, resets
        print(f"reload: {during} messages answered during it, {resets} connections reset and retried")

        # a reload that cannot start: the workers that serve go on serving
        config.write_text("server: [not, a, mapping]\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        lines = await read_until(proc, "the old workers keep serving", 60)
        assert "configuration error" in "".join(lines)
        assert set(workers_of(supervisor)) == set(new)
        _, status, _ = await ask(port, {}, "POST", "/webhooks/rest/webhook", {"sender": "after", "message": "你好"})
        assert status == 200


async def test_the_supervisors_embedded_redis_is_started_again_when_it_dies(nlu_engine, tmp_path):
    """``--workers 2`` on the embedded Redis the supervisor runs: the redis-server killed (SIGKILL), the supervisor
    starts it again, both workers reconnect, and the turn answered before is still there."""
    async with serving(tmp_path) as (proc, data, port, _supervisor, workers):
        first = {"sender": "redis-crash", "message": "查话费", "metadata": {"message_id": "before"}}
        _, status, before = await ask(port, workers, "POST", "/webhooks/rest/webhook", first)
        assert status == 200
        dead = int((data / "redis" / "redis.pid").read_text())
        os.kill(dead, signal.SIGKILL)
        await read_until(proc, "embedded Redis started again", 30)
        answered: set[int | None] = set()
        async with asyncio.timeout(30):
            while len(answered) < 2:  # each worker answers again (new connections spread over both)
                body = {"sender": f"after-{len(answered)}", "message": "你好"}
                pid, status, _ = await ask(port, workers, "POST", "/webhooks/rest/webhook", body)
                if status == 200 and pid is not None:
                    answered.add(pid)
                else:
                    await asyncio.sleep(0.1)
        assert int((data / "redis" / "redis.pid").read_text()) != dead
        _, status, again = await ask(port, workers, "POST", "/webhooks/rest/webhook", first)
        assert status == 200 and again == before  # answered before the crash: kept, and answered once
