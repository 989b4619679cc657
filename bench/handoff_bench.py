"""Handoff latency: 200 customers ask for a human while 50 agents are online (capacity 1 each, so
50 chats are served while 150 wait; each closed chat lets the next one in). Measures, on loopback,
against a gateway process with embedded Redis:

* queue → console: from a chat entering the queue (its ``enqueued_at``) to the first agent console
  receiving a queue snapshot that lists it;
* assigned → console: from the assignment (``assigned_at``) to the agent's ``assigned`` frame;
* reply → customer: from an agent's ``POST /api/chats/{id}/messages`` to the customer's WebSocket frame.

Baseline in the same run: a bare aiohttp WebSocket echo round trip. Target: p99 ≤ 50 ms.

    python bench/handoff_bench.py [--customers 200] [--agents 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.rkeys import Keys  # noqa: E402
from handoff.agents import AgentStore  # noqa: E402

ECHO = """
import sys
from aiohttp import web, WSMsgType
async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str(msg.data)
    return sock
app = web.Application()
app.add_routes([web.get("/ws", ws)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *_: print("ready", flush=True), access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(int(len(values) * p), len(values) - 1)] * 1000 if values else float("nan")


def wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).read()
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def echo_baseline(port: int, rounds: int = 500) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as s, s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
        for i in range(rounds):
            t0 = time.perf_counter()
            await ws.send_str(str(i))
            await ws.receive()
            out.append(time.perf_counter() - t0)
    return out


class Agent:
    def __init__(self, base: str, name: str) -> None:
        self.base, self.name = base, name
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.ws: Any = None

    async def login(self) -> None:
        async with self.session.post(f"{self.base}/api/agent/login",
                                     json={"name": self.name, "password": "bench-password"}) as r:  # fmt: skip
            self.csrf = (await r.json())["csrf"]

    async def post(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.post(f"{self.base}{path}", json=body, headers={"X-CSRF-Token": self.csrf}) as r:
            assert r.status == 200, await r.text()


async def run(base: str, redis_socket: str, customers: int, agents: int, rate: float) -> dict[str, list[float]]:
    redis = aioredis.Redis(unix_socket_path=redis_socket)
    store = AgentStore(redis, Keys("gw:"))
    for i in range(agents):
        await store.add(f"bench{i:02d}", "bench-password", skills=("zh", "en", "general"), capacity=1)
    await redis.aclose()
    queue_seen: dict[str, float] = {}  # chat id → first time a console listed it
    enqueued: dict[str, float] = {}
    assigned_lat: list[float] = []
    reply_lat: list[float] = []
    served = asyncio.Event()
    served_count = 0
    pending_reply: dict[str, float] = {}  # visitor → time the agent posted
    customer_of: dict[str, str] = {}

    team = [Agent(base, f"bench{i:02d}") for i in range(agents)]
    # a shift starting: agents sign in a few at a time (one address may have at most 20 sign-ins in flight)
    for i in range(0, len(team), 10):
        await asyncio.gather(*(a.login() for a in team[i : i + 10]))

    async def agent_loop(agent: Agent) -> None:
        nonlocal served_count
        agent.ws = await agent.session.ws_connect(f"{base}/ws/agent")
        async for msg in agent.ws:
            frame = json.loads(msg.data)
            now = time.time()
            if frame["type"] in ("queue", "queue_add"):
                for chat in frame["chats"] if frame["type"] == "queue" else [frame["chat"]]:
                    if chat["id"] not in queue_seen:
                        queue_seen[chat["id"]] = now
                        enqueued[chat["id"]] = chat["enqueued_at"]
            elif frame["type"] == "assigned":
                chat = frame["chat"]
                assigned_lat.append(now - chat["assigned_at"])
                detail_path = f"/api/chats/{chat['id']}"
                async with agent.session.get(base + detail_path) as r:
                    detail = await r.json()
                said = [e["text"] for e in detail["transcript"] if e["kind"] == "customer"]
                visitor = customer_of.get(said[0]) if said else None
                if visitor:
                    pending_reply[visitor] = time.perf_counter()
                await agent.post(f"{detail_path}/messages", {"text": "您好，请讲"})
                await asyncio.sleep(0.05)
                await agent.post(f"{detail_path}/close", {"disposition": "resolved"})
                served_count += 1
                if served_count >= customers:
                    served.set()

    agent_tasks = [asyncio.create_task(agent_loop(a)) for a in team]
    await asyncio.sleep(1.0)

    async def customer(i: int) -> None:
        await asyncio.sleep(i / rate)  # customers arrive at a steady pace, not all in one millisecond
        visitor = f"cust-{i:03d}"
        text = f"转人工 {i:03d}"
        customer_of[text] = visitor
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/ws/chat?visitor_id={visitor}") as ws:
            await ws.receive()  # hello
            await ws.send_json({"type": "message", "text": text, "client_id": f"{visitor}-1"})
            async for msg in ws:
                frame = json.loads(msg.data)
                if frame.get("from") == "agent" and visitor in pending_reply:
                    reply_lat.append(time.perf_counter() - pending_reply.pop(visitor))
                if frame.get("from") == "bot" and "打分" in frame.get("text", ""):
                    return

    started = time.perf_counter()
    await asyncio.gather(*(customer(i) for i in range(customers)))
    await asyncio.wait_for(served.wait(), 120)
    elapsed = time.perf_counter() - started
    for task in agent_tasks:
        task.cancel()
    for a in team:
        await a.session.close()
    queue_lat = [queue_seen[c] - enqueued[c] for c in queue_seen]
    return {"queue": queue_lat, "assigned": assigned_lat, "reply": reply_lat, "elapsed": [elapsed]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0, help="customers arriving per second")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="gw-handoff-bench-")
    port, echo_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", data_dir,
                                "--log-level", "WARNING"], cwd=ROOT, env=env)  # fmt: skip
    echo = subprocess.Popen([sys.executable, "-c", ECHO, str(echo_port)], stdout=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        assert echo.stdout and "ready" in echo.stdout.readline()
        baseline = asyncio.run(echo_baseline(echo_port))
        result = asyncio.run(run(f"http://127.0.0.1:{port}", str(Path(data_dir) / "redis" / "redis.sock"),
                                 args.customers, args.agents, args.rate))  # fmt: skip
    finally:
        gateway.terminate()
        echo.terminate()
        gateway.wait(20)
    print(f"handoff: {args.customers} customers arriving at {args.rate:g}/s, {args.agents} agents online (capacity 1), "
          f"all served in {result['elapsed'][0]:.1f} s")  # fmt: skip
    print(f"{'':34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
    rows = [("bare WebSocket echo round trip", baseline), ("queue → agent console", result["queue"]),
            ("assigned → agent console", result["assigned"]), ("agent reply → customer WebSocket", result["reply"])]  # fmt: skip
    for name, values in rows:
        print(f"{name:34} {len(values):>5} {pct(values, 0.5):>8.1f} {pct(values, 0.99):>8.1f}")
    print(json.dumps({"target_p99_ms": 50}))


if __name__ == "__main__":
    main()
