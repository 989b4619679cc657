"""Many web chat customers at once: every customer on ``/ws/chat`` sends a message every few seconds.

    python bench/ws_load.py [--customers 2000] [--interval 5] [--duration 60] [--workers 2] [--clients 2]
                            [--skip-echo] [--py-spy DIR]

Starts the gateway (``python -m gateway --workers N``, embedded Redis, a temporary data directory) and, as the
baseline of the same run, a bare aiohttp WebSocket echo of N processes on one port (SO_REUSEPORT). The customers
connect from ``--clients`` processes, staggered over the first interval, then each sends a message every
``--interval`` seconds for ``--duration`` seconds. Counted per message (``client_id``): the gateway's echo of it and
the bot's first reply after it — a message with no reply by the end is lost; a frame ``seq`` seen twice on one
socket is a duplicate. Latency: send → first reply. Memory: the gateway's processes (not Redis) before the
customers connect and once they are all connected, per connection. CPU: the gateway's worker processes' CPU seconds
(not Redis's) per message; the client processes share the machine. ``--py-spy DIR`` records each gateway worker with
py-spy (raw stacks) while the customers talk to the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_load import free_port, raise_fd_limit, tree_rss, wait_ready

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "你好",
    "查一下流量",
    "营业厅几点关门",
    "宽带坏了怎么办",
    "hello",
    "what plans do you have",
    "谢谢",
    "话费套餐有哪些",
]

ECHO_SERVER = """
import asyncio, json, sys
from aiohttp import web, WSMsgType
try:
    import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
except ImportError:
    pass
async def chat(request):
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    seq = 0
    await ws.send_json({"type": "hello", "visitor_id": "v", "last_seq": 0})
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        frame = json.loads(msg.data)
        seq += 1
        await ws.send_json({"type": "message", "from": "customer", "text": frame["text"],
                            "client_id": frame["client_id"], "seq": seq})
        seq += 1
        await ws.send_json({"type": "message", "from": "bot", "text": frame["text"], "seq": seq})
    return ws
app = web.Application()
app.add_routes([web.get("/ws/chat", chat)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *_: print("ready", flush=True),
            access_log=None, reuse_port=True)
"""


# ---- the customers (each client process runs a share of them) -----------------------------------------
async def _customer(session, url: str, n: int, args: tuple[float, float, float], out: dict) -> None:  # type: ignore[no-untyped-def]
    interval, duration, start_at = args
    await asyncio.sleep(max(0.0, start_at - time.time()) + random.random() * interval)
    try:
        ws = await session.ws_connect(url, heartbeat=None, autoping=True)
    except Exception:  # a refused connection is counted, not raised
        out["connect_errors"] += 1
        return
    sent: dict[str, float] = {}
    echoed: set[str] = set()
    answered: set[str] = set()
    seqs: set[int] = set()
    current: list[str | None] = [None]

    async def reader() -> None:
        async for msg in ws:
            if msg.type != 1:  # aiohttp.WSMsgType.TEXT
                continue
            frame = json.loads(msg.data)
            seq = frame.get("seq")
            if seq is not None:
                if seq in seqs:
                    out["duplicates"] += 1
                seqs.add(seq)
            if frame.get("from") == "customer" and frame.get("client_id") in sent:
                echoed.add(frame["client_id"])
                current[0] = frame["client_id"]
            elif frame.get("from") == "bot" and current[0] and current[0] not in answered:
                answered.add(current[0])
                out["latencies"].append(time.perf_counter() - sent[current[0]])

    task = asyncio.create_task(reader())
    out["connected"] += 1
    ends = time.time() + duration
    i = 0
    while time.time() < ends:
        i += 1
        client_id = f"c{n}-{i}"
        sent[client_id] = time.perf_counter()
        try:
            await ws.send_json({"type": "message", "text": TEXTS[(n + i) % len(TEXTS)], "client_id": client_id})
        except ConnectionError:
            break
        await asyncio.sleep(interval)
    deadline = time.perf_counter() + 10  # the last replies
    while len(answered) < len(sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    out["sent"] += len(sent)
    out["lost"] += len(sent) - len(answered)
    out["unechoed"] += len(sent) - len(echoed)
    await ws.close()
    task.cancel()


async def _run_customers(url: str, first: int, count: int, args: tuple[float, float, float]) -> dict:  # type: ignore[type-arg]
    import aiohttp

    raise_fd_limit()
    out: dict = {"latencies": [], "sent": 0, "lost": 0, "unechoed": 0, "duplicates": 0, "connected": 0,
                 "connect_errors": 0}  # fmt: skip
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(_customer(session, url, n, args, out) for n in range(first, first + count)))
    return out


def _client(url: str, first: int, count: int, args: tuple[float, float, float], q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    q.put(asyncio.run(_run_customers(url, first, count, args)))


def drive(url: str, customers: int, clients: int, interval: float, duration: float) -> dict:  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 2.0
    share = customers // clients
    procs = [ctx.Process(target=_client, args=(url, k * share, share if k < clients - 1 else customers - k * share,
                                               (interval, duration, start_at), q)) for k in range(clients)]  # fmt: skip
    for p in procs:
        p.start()
    parts = [q.get(timeout=duration + interval + 300) for _ in procs]
    for p in procs:
        p.join()
    total: dict = {k: sum(p[k] for p in parts) for k in parts[0] if k != "latencies"}
    total["latencies"] = [x for p in parts for x in p["latencies"]]
    lat = sorted(total.pop("latencies"))
    total["p50"] = lat[len(lat) // 2] * 1000 if lat else float("nan")
    total["p99"] = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
    return total


def gateway_workers(process: psutil.Process) -> list[psutil.Process]:
    """The processes that serve (the workers under a supervisor, or the gateway itself), not redis-server."""
    kids = [c for c in process.children() if "redis-server" not in c.name()]
    return kids or [process]


def cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def profile(workers: list[psutil.Process], folder: str | None) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` of each worker (raw collapsed stacks in ``folder/worker-<pid>.txt``), if asked and installed."""
    spy = shutil.which("py-spy") if folder else None
    if folder and spy is None:
        print("--py-spy: py-spy is not installed (pip install py-spy); not profiling")
    if not folder or spy is None:
        return []
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([spy, "record", "-p", str(w.pid), "-r", "200", "-f", "raw", "--nonblocking", "-o",
                              str(Path(folder) / f"worker-{w.pid}.txt")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for w in workers]  # fmt: skip


def report(name: str, r: dict) -> None:  # type: ignore[type-arg]
    print(f"{name:18} {r['connected']:>9} {r['sent']:>7} {r['lost']:>5} {r['duplicates']:>5} {r['p50']:>8.1f} "
          f"{r['p99']:>8.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2, help="client processes the customers are spread over")
    parser.add_argument("--skip-echo", action="store_true", help="no baseline run (when profiling the gateway)")
    parser.add_argument("--py-spy", metavar="DIR", help="profile each gateway worker with py-spy into DIR")
    args = parser.parse_args()
    raise_fd_limit()
    echo_port, gw_port = free_port(), free_port()
    echoes = [subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(echo_port)], stdout=subprocess.PIPE,
                               text=True) for _ in range(args.workers)]  # fmt: skip
    data_dir = tempfile.mkdtemp(prefix="gw-wsbench-")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(gw_port), "--data-dir", data_dir, "--workers",
         str(args.workers)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for echo in echoes:
            wait_ready(echo, "ready")
        wait_ready(gateway, "workers serving" if args.workers > 1 else "gateway ready", 300)
        urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/healthz", timeout=5).read()
        print(f"{args.customers} customers on /ws/chat from {args.clients} client processes, one message each every "
              f"{args.interval:g} s for {args.duration:g} s; {args.workers} server processes each")  # fmt: skip
        print(f"{'':18} {'connected':>9} {'sent':>7} {'lost':>5} {'dupl.':>5} {'p50 ms':>8} {'p99 ms':>8}")
        shape = (args.customers, args.clients, args.interval, args.duration)
        base = {"p99": float("nan")} if args.skip_echo else drive(f"http://127.0.0.1:{echo_port}/ws/chat", *shape)
        if not args.skip_echo:
            report("bare aiohttp echo", base)
        proc = psutil.Process(gateway.pid)
        before = tree_rss(proc)
        peak = [before]
        sampling = [True]

        def sample() -> None:
            while sampling[0]:
                try:
                    peak[0] = max(peak[0], tree_rss(proc))
                except psutil.Error:
                    return
                time.sleep(0.2)

        import threading

        threading.Thread(target=sample, daemon=True).start()
        workers = gateway_workers(proc)
        cpu0 = cpu_of(workers)
        spies = profile(workers, args.py_spy)
        gw = drive(f"http://127.0.0.1:{gw_port}/ws/chat", *shape)
        cpu = cpu_of(workers) - cpu0
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        sampling[0] = False
        report("gateway", gw)
        print(f"gateway workers' CPU: {cpu:.1f} s, {cpu / max(gw['sent'], 1) * 1000:.2f} ms per message")
        per = (peak[0] - before) / max(gw["connected"], 1) / 1024
        print(f"gateway: lost {gw['lost']}, duplicated {gw['duplicates']}, connect errors {gw['connect_errors']} "
              f"(target 0); p99 {gw['p99']:.1f} ms (target <= 100 ms; echo {base['p99']:.1f} ms); memory "
              f"{before / 2**20:.0f} → {peak[0] / 2**20:.0f} MB, {per:.1f} KiB per connection (target <= 40 KiB)")  # fmt: skip
    finally:
        for p in (gateway, *echoes):
            p.send_signal(signal.SIGTERM)
        for p in (gateway, *echoes):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
