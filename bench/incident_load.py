"""During an active incident, thousands of customers ask at once: every one is answered with the notice.

    python bench/incident_load.py [--customers 10000] [--seconds 60] [--concurrency 200]

Starts the gateway (``python -m gateway``, embedded Redis, a temporary data directory), opens an incident in
朝阳区 through the supervisors' API (created, then assessed: customers are told), then sends one message from each
of ``--customers`` distinct REST senders at an even pace over ``--seconds`` (open loop: a request leaves at its
time whatever the others are doing) — asking about the network in Chaoyang in several wordings, a quarter of them
signed in as a demo customer who lives there. Prints the rate reached, p50/p99/max latency, errors, and how many
answers carried the incident notice; then the incident's own counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_load import ROOT, SECRET, free_port, raise_fd_limit, wait_healthy

TEXTS = ["朝阳区是不是断网了", "朝阳区手机没信号", "is there an outage in Chaoyang", "朝阳区网络是不是出故障了",
         "网络是不是出故障了", "手机没信号了"]  # fmt: skip
CHAOYANG = ["13800138000", "13800138003"]  # demo customers who live in 朝阳区


async def _drive(base: str, customers: int, seconds: float, concurrency: int) -> dict[str, object]:
    import aiohttp

    from gateway.security import mint_customer_token

    tokens = [mint_customer_token(p, SECRET, 3600) for p in CHAOYANG]
    latencies: list[float] = []
    errors = told = 0
    run = os.urandom(3).hex()
    gate = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, i: int, at: float) -> None:
        nonlocal errors, told
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        text = TEXTS[i % len(TEXTS)]
        metadata: dict[str, str] = {"message_id": f"{run}-{i}"}
        if i % len(TEXTS) >= 4:  # the wordings without a district: a signed-in customer who lives there
            metadata["token"] = tokens[i % len(tokens)]
        body = {"sender": f"cust-{run}-{i}", "message": text, "metadata": metadata}
        async with gate:
            t0 = time.perf_counter()
            try:
                async with session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
                    data = await resp.json()
                    if resp.status != 200 or not data:
                        errors += 1
                    elif any("故障通知" in r["text"] or "Service notice" in r["text"] for r in data):
                        told += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        for i in range(20):  # warm-up, not counted
            await session.post(f"{base}/webhooks/rest/webhook", json={"sender": f"warm-{i}", "message": TEXTS[0]})
        started = time.perf_counter()
        step = seconds / customers
        await asyncio.gather(*(one(session, i, started + i * step) for i in range(customers)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"customers": customers, "elapsed": elapsed, "rate": customers / elapsed, "errors": errors, "told": told,
            "p50": latencies[len(latencies) // 2] * 1000, "p99": latencies[int(len(latencies) * 0.99)] * 1000,
            "max": latencies[-1] * 1000}  # fmt: skip


def _client(base: str, args: tuple[int, float, int], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_drive(base, *args)))


async def _open_incident(base: str) -> tuple[str, object]:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{base}/api/agent/login", json={"name": "super1", "password": "demo-super1"}) as r:
            csrf = (await r.json())["csrf"]
        headers = {"X-CSRF-Token": csrf}
        body = {"title": "台风致朝阳区基站退服", "category": "natural_disaster", "severity": 2,
                "districts": ["朝阳区"], "services": ["mobile"], "eta": time.time() + 4 * 3600}  # fmt: skip
        async with s.post(f"{base}/api/incidents", json=body, headers=headers) as r:
            incident = await r.json()
        async with s.post(f"{base}/api/incidents/{incident['id']}/transition", json={"to": "assessed"},
                          headers=headers) as r:  # fmt: skip
            assert r.status == 200, await r.text()
        return incident["id"], (s, headers)


async def _stats(base: str, incident_id: str) -> dict[str, int]:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{base}/api/agent/login", json={"name": "super1", "password": "demo-super1"}) as r:
            assert r.status == 200
        async with s.get(f"{base}/api/incidents/{incident_id}") as r:
            return (await r.json())["incident"]["stats"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--no-incident", action="store_true", help="the same load with no incident (the baseline)")
    args = parser.parse_args()
    raise_fd_limit()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(prefix="gw-incident-bench-")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["WEBCHAT_JWT_SECRET"] = SECRET
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", data_dir,
                                "--log-level", "WARNING"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_healthy(base, gateway)
        incident_id = None if args.no_incident else asyncio.run(_open_incident(base))[0]
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        client = ctx.Process(target=_client, args=(base, (args.customers, args.seconds, args.concurrency), out))
        client.start()
        result = out.get(timeout=args.seconds * 10 + 120)
        client.join()
        print(f"{result['customers']} customers in {result['elapsed']:.1f} s ({result['rate']:.0f}/s), one message "
              f"each: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms (target <= 50 ms), max "
              f"{result['max']:.0f} ms; errors {result['errors']}; answered with the notice: {result['told']}")  # fmt: skip
        if incident_id:
            print("incident counters:", json.dumps(asyncio.run(_stats(base, incident_id)), ensure_ascii=False))
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()


if __name__ == "__main__":
    main()
