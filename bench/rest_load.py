"""Load on the REST channel against a bare aiohttp echo server, measured in the same run.

    python bench/rest_load.py [--messages 5000] [--senders 500] [--concurrency 50] [--websockets 2000] [--workers 1]

Starts the gateway (``python -m gateway``, embedded Redis, a temporary data directory) and a
bare aiohttp endpoint that only echoes, drives both with the same client from another process,
and prints messages/s, p50/p99 latency, errors, the gateway's peak RSS and the ratio
gateway/echo, and the CPU each side spends a message: the server's (the gateway with its workers and its embedded
redis-server — not a ``--cluster``'s nodes; the echo's processes) and the client's (its measured part only). The
client shares the machine's cores with the server, and spends more a message on a slower server (fewer replies
ready at each wake-up), so the throughput ratio and the server-CPU ratio are different figures. Then opens N idle
customer WebSockets and reports memory per connection.
``--workers N`` runs the gateway with ``--workers N`` and the echo as N processes on one port (SO_REUSEPORT), so
the ratio compares like with like; memory is then the sum over the gateway's processes.
``--cluster`` runs the gateway on a Redis Cluster (3 masters, 3 replicas on loopback, tests/cluster.py) instead of the
embedded Redis; with ``--failover S`` a master is killed (SIGKILL) S seconds into the last gateway round, whose
throughput, longest gap between two answers (any customer) and slowest answer (one whose keys were on the killed
master waits for its replica) are printed, and how many messages answered with 200 are missing from (or twice in) the
conversation logs afterwards. ``GATEWAY_REDIS_WAIT_REPLICAS=0`` in the environment turns the turns' wait for their
replica off (the default, auto, waits for one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["你好", "我的话费还剩多少", "查一下流量", "上个月账单", "朝阳区是不是断网了", "转人工", "what's my balance",
         "how much data do I have left", "营业厅几点关门", "宽带坏了，光猫红灯一直闪", "thanks", "TD"]  # fmt: skip

# A sender's rate (pipeline.sender_rate: 20 at once, then one every 2 s) is policy, not cost, and the bench's 500
# senders each send several a second: set so high that it never refuses, its bookkeeping (in the accept script) is
# still measured.
NEVER_THROTTLED = {"GATEWAY_PIPELINE_SENDER_RATE": "1000000", "GATEWAY_PIPELINE_SENDER_BURST": "1000000"}

ECHO_SERVER = """
import asyncio, json, sys
from aiohttp import web
try:
    import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # same loop as the gateway
except ImportError:
    pass
async def echo(request):
    body = await request.json()
    return web.json_response([{"recipient_id": body["sender"], "text": body["message"]}])
app = web.Application()
app.add_routes([web.post("/webhooks/rest/webhook", echo)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *_: print("ready", flush=True), access_log=None,
            reuse_port=len(sys.argv) > 2)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_ready(proc: subprocess.Popen[str], word: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline() if proc.stdout else ""
        if word in line:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain
            return
        if not line and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
    raise RuntimeError("server did not start")


# ---- the client (runs in its own process) -------------------------------------------------------
SECRET = "bench-secret-bench-secret-bench-secret!"


def _tokens(senders: int) -> dict[int, str]:
    """Every other sender is signed in as a demo customer: their account questions run through the
    bot flows and the demo back end; the others are asked to verify first."""
    import yaml

    from gateway.security import mint_customer_token

    phones = list(yaml.safe_load((ROOT / "config" / "demo_bss.yml").read_text(encoding="utf-8"))["subscribers"])
    return {i: mint_customer_token(phones[i % len(phones)], SECRET, 3600) for i in range(0, senders, 2)}


async def _drive(url: str, messages: int, senders: int, concurrency: int) -> dict[str, object]:
    import aiohttp

    tokens = _tokens(senders)

    latencies: list[float] = []
    answered: list[float] = []  # when each answer came (monotonic), for the longest gap
    ok: list[tuple[str, str]] = []  # (sender, message id) of each message answered with 200
    errors = 0
    run = os.urandom(4).hex()  # fresh message ids each run: a repeated id would be answered as a duplicate
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            metadata = {"message_id": f"{run}-{i}"}
            if i % senders in tokens:
                metadata["token"] = tokens[i % senders]
            body = {"sender": f"load-{i % senders}", "message": TEXTS[i % len(TEXTS)], "metadata": metadata}
            t0 = time.perf_counter()
            try:
                async with session.post(url, json=body) as resp:
                    data = await resp.json()
                    if resp.status != 200 or not data:
                        errors += 1
                    else:
                        ok.append((body["sender"], metadata["message_id"]))
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - t0)
            answered.append(time.monotonic())

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm-up, not counted
        await asyncio.gather(*(session.post(url, json={"sender": "warm", "message": "hi"}) for _ in range(20)))
        latencies.clear()
        answered.clear()
        ok.clear()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies.sort()
    return {
        "rate": messages / elapsed, "p50": latencies[len(latencies) // 2] * 1000, "client_cpu": cpu / messages * 1e6,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000, "errors": errors,
        "gap": max((b - a for a, b in itertools.pairwise(answered)), default=0.0), "max": latencies[-1], "ok": ok,
    }  # fmt: skip


def _client(url: str, args: tuple[int, int, int], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_drive(url, *args)))


def drive(url: str, messages: int, senders: int, concurrency: int) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client, args=(url, (messages, senders, concurrency), out))
    proc.start()
    result = out.get(timeout=600)
    proc.join()
    return result


async def _open_sockets(url: str, count: int, hold: float, ready: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    import aiohttp

    raise_fd_limit()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = []
        for i in range(count):
            ws = await session.ws_connect(f"{url}?visitor_id=idle-{i}", autoping=True)
            await ws.receive()  # hello
            sockets.append(ws)
        ready.set()
        await asyncio.sleep(hold)
        for ws in sockets:
            await ws.close()


def _sockets_client(url: str, count: int, hold: float, ready: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    asyncio.run(_open_sockets(url, count, hold, ready))


# ---- main -----------------------------------------------------------------------------------------
def tree_rss(process: psutil.Process) -> int:
    """The RSS of a gateway: its own, plus its workers' under ``--workers`` (not the embedded redis-server)."""
    total = process.memory_info().rss
    for child in process.children():
        try:
            if "redis-server" not in child.name():
                total += child.memory_info().rss
        except psutil.Error:
            continue
    return total


def wait_healthy(base: str, process: subprocess.Popen[Any], timeout: float = 180) -> None:
    """Until ``base``/healthz answers (a gateway logs nothing at WARNING to wait for); RuntimeError when the process
    exits first or ``timeout`` passes."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the gateway at {base} did not start") from None
            time.sleep(0.2)


def tree_cpu(processes: list[psutil.Process]) -> float:
    """CPU seconds (user + system) of these processes and their children (the gateway's workers, its embedded
    redis-server)."""
    total = 0.0
    for process in processes:
        for p in (process, *process.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
    return total


class PeakRSS(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, tree_rss(self.process))
            except psutil.Error:
                return
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--websockets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="gateway --workers N, and N echo processes")
    parser.add_argument("--cluster", action="store_true", help="the gateway on a 3-master Redis Cluster")
    parser.add_argument(
        "--failover", type=float, default=0.0, help="with --cluster: kill a master S s into the last round"
    )
    args = parser.parse_args()
    raise_fd_limit()
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(_cluster()) if args.cluster else None
        run(args, cluster)


@contextlib.contextmanager
def _cluster() -> Iterator[object]:
    sys.path.insert(0, str(ROOT))
    from tests.cluster import running_cluster

    with tempfile.TemporaryDirectory(prefix="gw-bench-cluster-") as folder, running_cluster(Path(folder)) as cluster:
        print(f"Redis Cluster: 3 masters, 3 replicas, node timeout 2 s ({cluster.url})")
        yield cluster


def _check_logs(url: str, env: dict[str, str], ok: list[tuple[str, str]]) -> tuple[int, int]:
    """(messages answered with 200 that no conversation log holds, messages logged more than once) — read with the
    gateway's own keys (its key prefix and the data keys the bench gave it)."""
    from gateway import redisconn, vault
    from gateway.rkeys import Keys

    keys = Keys("gw:", vault.from_env(env))
    direct = redisconn.sync_client(url)
    try:
        logged: dict[str, int] = {}
        for sender in sorted({s for s, _ in ok}):
            for log in direct.scan_iter(match=keys.conversation_log("rest", sender, "*"), count=1000):
                for _, fields in direct.xrange(log):
                    entry = json.loads(keys.unseal(fields[b"e"]))
                    if entry["kind"] == "customer":
                        logged[entry["message_id"]] = logged.get(entry["message_id"], 0) + 1
    finally:
        direct.close()
    return sum(1 for _, m in ok if m not in logged), sum(1 for n in logged.values() if n > 1)


def _kill_later(cluster: object, seconds: float, killed: list[float]) -> threading.Timer:
    def kill() -> None:
        victim = cluster.master_of("load-0")  # type: ignore[attr-defined]
        cluster.procs[victim].kill()  # type: ignore[attr-defined]
        killed.append(time.monotonic())
        print(f"  killed master 127.0.0.1:{cluster.ports[victim]} (SIGKILL)")  # type: ignore[attr-defined]

    timer = threading.Timer(seconds, kill)
    timer.start()
    return timer


def run(args: argparse.Namespace, cluster: object | None) -> None:

    echo_port, gw_port = free_port(), free_port()
    shared = ["reuse"] if args.workers > 1 else []
    echoes = [subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(echo_port), *shared], stdout=subprocess.PIPE,
                               text=True) for _ in range(args.workers)]  # fmt: skip
    data_dir = tempfile.mkdtemp(prefix="gw-bench-")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["WEBCHAT_JWT_SECRET"] = SECRET
    env.update(NEVER_THROTTLED)
    if cluster is not None:  # data keys the bench knows too: it reads the conversation logs after a failover
        import base64

        env["GATEWAY_DATA_KEYS"] = f"bench:{base64.b64encode(os.urandom(32)).decode()}"
        env["GATEWAY_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
        print(f"redis.wait_replicas: {env.get('GATEWAY_REDIS_WAIT_REPLICAS', 'auto')}")
    redis_url = ["--redis-url", cluster.url] if cluster is not None else []  # type: ignore[attr-defined]
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "--port",
            str(gw_port),
            "--data-dir",
            data_dir,
            "--log-level",
            "INFO" if args.workers > 1 else "WARNING",
            "--workers",
            str(args.workers),
            *redis_url,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for echo in echoes:
            wait_ready(echo, "ready")
        if args.workers > 1:
            wait_ready(gateway, "workers serving", 300)
        wait_healthy(f"http://127.0.0.1:{gw_port}", gateway)

        shape = (args.messages, args.senders, args.concurrency)
        print(
            f"load: {args.messages} messages from {args.senders} senders, {args.concurrency} in flight, one client "
            f"process, {args.workers} server process(es) each; {args.rounds} alternating rounds (this machine's speed "
            "drifts: compare within a round)"
        )
        peak = PeakRSS(gateway.pid)
        peak.start()
        print(f"{'':22} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'server CPU':>11} {'client CPU':>11}")
        servers = {"echo": [psutil.Process(e.pid) for e in echoes], "gateway": [psutil.Process(gateway.pid)]}
        per_message = {"echo": [], "gateway": []}  # server CPU µs a message, per round
        ratios, gw_p99, errors = [], [], 0
        for round_ in range(1, args.rounds + 1):
            cpu = tree_cpu(servers["echo"])
            base = drive(f"http://127.0.0.1:{echo_port}/webhooks/rest/webhook", *shape)
            base["server_cpu"] = (tree_cpu(servers["echo"]) - cpu) / args.messages * 1e6
            killed: list[float] = []
            if cluster is not None and args.failover and round_ == args.rounds:
                _kill_later(cluster, args.failover, killed)
            cpu = tree_cpu(servers["gateway"])
            gw = drive(f"http://127.0.0.1:{gw_port}/webhooks/rest/webhook", *shape)
            gw["server_cpu"] = (tree_cpu(servers["gateway"]) - cpu) / args.messages * 1e6
            if killed:
                print(f"  failover round: {gw['rate']:.0f} msg/s, longest gap between two answers {gw['gap']:.2f} s, "
                      f"slowest answer {gw['max']:.2f} s, {gw['errors']} errors")  # fmt: skip
                lost, twice = _check_logs(cluster.url, env, gw["ok"])  # type: ignore[attr-defined]
                print(f"  answered with 200: {len(gw['ok'])}; not in the conversation log after the failover: {lost}; "
                      f"logged twice: {twice}")  # fmt: skip
            for name, r in ((f"{round_}: bare aiohttp echo", base), (f"{round_}: gateway", gw)):
                print(
                    f"{name:22} {r['rate']:8.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:7d} "
                    f"{r['server_cpu']:8.0f} µs {r['client_cpu']:8.0f} µs"
                )
            per_message["echo"].append(base["server_cpu"])
            per_message["gateway"].append(gw["server_cpu"])
            ratios.append(gw["rate"] / base["rate"])
            gw_p99.append(gw["p99"])
            errors += gw["errors"]
        peak.running = False
        median = sorted(ratios)[len(ratios) // 2]
        print(
            f"throughput ratio gateway/echo, median of rounds: {median:.1%} (target >= 40%); "
            f"rounds: {', '.join(f'{r:.0%}' for r in ratios)}"
        )
        print(
            f"gateway p99, median of rounds: {sorted(gw_p99)[len(gw_p99) // 2]:.1f} ms (target <= 50 ms); "
            f"errors: {errors}; gateway peak RSS: {peak.peak / 2**20:.1f} MB"
        )
        echo_cpu, gw_cpu = (sorted(v)[len(v) // 2] for v in (per_message["echo"], per_message["gateway"]))
        print(
            f"server CPU a message, median of rounds (an embedded redis-server included): echo {echo_cpu:.0f} µs, gateway "
            f"{gw_cpu:.0f} µs ({echo_cpu / gw_cpu:.1%}); the client shares the machine's cores, so the throughput "
            "ratio is higher than this"
        )

        if args.websockets:
            proc = psutil.Process(gateway.pid)
            time.sleep(0.5)
            before = tree_rss(proc)
            ctx = multiprocessing.get_context("spawn")
            ready = ctx.Event()
            holder = ctx.Process(
                target=_sockets_client, args=(f"http://127.0.0.1:{gw_port}/ws/chat", args.websockets, 15.0, ready)
            )
            holder.start()
            if not ready.wait(300):
                raise RuntimeError("websockets did not open")
            time.sleep(1.0)
            after = tree_rss(proc)
            per = (after - before) / args.websockets / 1024
            print(
                f"{args.websockets} idle WebSockets: gateway RSS {before / 2**20:.1f} → {after / 2**20:.1f} MB, "
                f"{per:.1f} KiB per connection (target <= 40 KiB)"
            )
            holder.terminate()
            holder.join()
    finally:
        for proc in (gateway, *echoes):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, *echoes):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        print(json.dumps({"data_dir": data_dir}))


if __name__ == "__main__":
    main()
