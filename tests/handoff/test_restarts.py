"""Restarts with real gateway processes (``python -m gateway``) on one Redis: everyone keeps their place.

The first process is stopped while an agent holds a chat whose first-reply clock runs, and the next one starts
after longer than that clock: the consoles get a grace period from the start to reconnect (nobody's chats go
back, the customer hears no "agent left"), the clock paused while no process was alive (a system outage is
recorded, no breach), and an agent who was away is still away — and is not pushed chats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from gateway import redisconn
from gateway.rkeys import deployment_keys
from handoff.config import CONFIG
from tests.gateway.test_server_process import free_port
from tests.handoff.conftest import SECRET, AgentClient, WebCustomer
from tests.security.harness import seed_nlu

ROOT = Path(__file__).resolve().parents[2]


def config_folder(tmp_path: Path, routing: dict[str, Any] | None = None, sla: dict[str, Any] | None = None) -> Path:
    """A copy of config/ with some routing.yml / sla.yml values changed (top-level section → its changes)."""
    folder = tmp_path / "conf"
    if not folder.exists():
        shutil.copytree(CONFIG, folder)
    for name, changes in (("routing.yml", routing or {}), ("sla.yml", sla or {})):
        data = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
        for section, values in changes.items():
            if isinstance(values, dict):
                data[section].update(values)
            else:
                data[section] = values
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


class Process:
    """``python -m gateway`` on its own port, its output in a file (read by the tests)."""

    def __init__(self, tmp_path: Path, folder: Path, redis_url: str, prefix: str, n: int) -> None:
        """``redis_url`` empty: the gateway's embedded Redis in its data folder. Each process leads its own
        process group (as a terminal's foreground job), so a test can signal the group as Ctrl-C does."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"gateway-{n}.log"
        data_dir = tmp_path / "var"
        seed_nlu(data_dir)
        env = {**os.environ, "REDIS_URL": redis_url, "WEBCHAT_JWT_SECRET": SECRET, "GATEWAY_REDIS_KEY_PREFIX": prefix,
               "GATEWAY_SERVER_PUBLIC_URL": self.base}  # fmt: skip
        if not redis_url:
            del env["REDIS_URL"]
        self.out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(folder), "--port", str(self.port), "--data-dir",
             str(data_dir)], cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while "gateway ready" not in self.text():
            assert self.proc.poll() is None, f"gateway exited during start-up:\n{self.text()}"
            assert time.monotonic() < deadline, f"gateway did not start:\n{self.text()}"
            await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> float:
        """Signal it and wait for it to exit; the seconds that took."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        self.out.close()
        return time.monotonic() - started


@pytest.fixture
async def processes(tmp_path, redis_url, key_prefix):
    made: list[Process] = []

    async def start(folder: Path, embedded: bool = False) -> Process:
        proc = Process(tmp_path, folder, "" if embedded else redis_url, key_prefix, len(made))
        made.append(proc)
        await proc.ready()
        return proc

    yield start
    for proc in made:
        await proc.stop(signal.SIGKILL)
    pid_file = tmp_path / "var" / "redis" / "redis.pid"  # an embedded Redis left behind by a failed test
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def is_(kind: str, **match: Any) -> Any:
    return lambda f: (f.get("type") == kind or f.get("kind") == kind) and all(f.get(k) == v for k, v in match.items())


async def log_events(redis: aioredis.Redis, key: str, prefix: str) -> list[str]:
    keys = deployment_keys(prefix)  # the log's entries are encrypted at rest
    return [json.loads(keys.unseal(f[b"e"])).get("event", "") for _, f in await redis.xrange(key)]


@pytest.mark.slow
async def test_a_restart_keeps_assignments_away_and_counts_no_breach_for_the_downtime(processes, tmp_path, redis_url,
                                                                                       key_prefix):  # fmt: skip
    folder = config_folder(tmp_path, routing={"presence": {"disconnect_grace": 2}},
                           sla={"first_reply": {"warn": 6, "breach": 8}, "outage_after": 2})  # fmt: skip
    redis = redisconn.client(redis_url)
    first = await processes(folder)
    agent1, agent2 = AgentClient(first.base, "agent1", "demo-agent1"), AgentClient(first.base, "agent2", "demo-agent2")
    customer = WebCustomer(first.base)
    try:
        for agent in (agent1, agent2):
            await agent.login()
        await agent2.call("POST", "/api/agent/status", {"status": "away"})
        await agent1.connect()
        await agent2.connect()
        await customer.connect()
        await customer.send("转人工")
        chat_id = (await agent1.expect(is_("assigned"), timeout=10))["chat"]["id"]
        await customer.expect(is_("agent_joined"))
        chat_log = (await redis.hget(f"{key_prefix}{{handoff}}:chat:{chat_id}", "log")).decode()
        await customer.close()

        # the first-reply clock (8 s) runs out while no process is alive
        assert await first.stop() < 5  # consoles connected: they are closed, not waited for
        await agent1.disconnect()
        await agent2.disconnect()
        await asyncio.sleep(9)
        second = await processes(folder)
        await asyncio.sleep(2.5)  # past the disconnect grace (2 s), the consoles come back
        for agent in (agent1, agent2):
            agent.base = second.base
            agent.frames = asyncio.Queue()
        await agent1.connect()
        await agent2.connect()

        me2 = await agent2.call("GET", "/api/agent/me")
        assert me2["status"] == "away", me2
        view = await agent1.call("GET", "/api/queue")
        assert [c["id"] for c in view["mine"]] == [chat_id], view
        (clock,) = view["mine"][0]["sla"]  # the console's chip: paused for the outage, not overdue
        assert clock["clock"] == "first_reply" and clock["due_at"] > time.time() and not clock["breached"], clock
        await agent1.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，我在"})

        # a new customer goes to agent1 (online), never to agent2 (away, with fewer chats)
        other = WebCustomer(second.base, "13800138001")
        await other.connect()
        await other.send("转人工")
        other_id = (await agent1.expect(is_("assigned"), timeout=10))["chat"]["id"]
        assert other_id != chat_id
        await other.close()
        await asyncio.sleep(0.5)
        assert not any(f["type"] == "assigned" for f in list(agent2.frames._queue)), "an away agent got a chat"  # type: ignore[attr-defined]

        events = await log_events(redis, chat_log, key_prefix)
        assert "agent_lost" not in events and "sla_breach" not in events, events
        assert await redis.lrange(f"{key_prefix}{{handoff}}:breaches", 0, -1) == []
        outages = [json.loads(o) for o in await redis.lrange(f"{key_prefix}{{handoff}}:outages", 0, -1)]
        assert len(outages) == 1 and outages[0]["seconds"] >= 9 and outages[0]["timers_paused"] >= 1, outages
        assert "vanished" not in second.text()
        assert "demo agents: created agent agent1" in first.text()  # created once, available after
        assert "demo agents: available agent agent1" in second.text() and "created" not in second.text()
        assert "system outage" in second.text()
    finally:
        for c in (agent1, agent2):
            await c.close()
        await customer.close()
        await redis.aclose()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


@pytest.mark.slow
async def test_ctrl_c_with_consoles_and_widgets_connected_stops_within_5_s_cleanly_and_redis_last(processes, tmp_path):
    folder = config_folder(tmp_path)
    gw = await processes(folder, embedded=True)
    redis_pid = int((tmp_path / "var" / "redis" / "redis.pid").read_text().strip())
    agent, customer = AgentClient(gw.base, "agent1", "demo-agent1"), WebCustomer(gw.base)
    try:
        await agent.login()
        await agent.connect()
        await customer.connect()
        await customer.send("转人工")
        chat_id = (await agent.expect(is_("assigned"), timeout=10))["chat"]["id"]
        await customer.expect(is_("agent_joined"))

        started = time.monotonic()
        os.killpg(gw.proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole foreground process group
        await asyncio.to_thread(gw.proc.wait, 15)
        took = time.monotonic() - started
        output = gw.text()
        assert took < 5, f"Ctrl-C took {took:.1f} s"
        for bad in ("Traceback", " ERROR ", "unavailable", "Task was destroyed"):
            assert bad not in output, output
        assert not alive(redis_pid), "the embedded Redis was left running"
        redis_log = (tmp_path / "var" / "redis" / "redis.log").read_text(errors="replace")
        assert "Received SIGINT" not in redis_log, "Redis got the terminal's Ctrl-C"
        assert "DB saved on disk" in redis_log or "ready to exit" in redis_log, redis_log[-2000:]

        again = await processes(folder, embedded=True)  # the data kept: the chat is still the agent's
        agent.base = again.base
        view = await agent.call("GET", "/api/queue")
        assert [c["id"] for c in view["mine"]] == [chat_id], view
        await again.stop(signal.SIGINT)
    finally:
        await agent.close()
        await customer.close()
