"""Nothing accepted is lost, nothing answered twice: a real gateway process killed with SIGKILL mid-run.

Turns take ~1 s (a slow operator back end). Some messages were answered before the kill, others were in
flight. After a restart every message is retried with its own id, as a channel would: an answered one gets
its recorded replies again, an unanswered one is handled (never an empty 200), and each is in its
conversation's log exactly once.
"""

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
from typing import Any

import aiohttp
import pytest

from bots.bss.demo import DemoBSS
from bots.bss.server import create_bss_app
from gateway import redisconn
from gateway.rkeys import deployment_keys
from gateway.security import mint_customer_token
from tests.bots.conftest import SECRET
from tests.bots.test_backend import Faults
from tests.gateway.test_server_process import free_port
from tests.security.harness import seed_nlu

ROOT = Path(__file__).resolve().parents[2]
PHONES = ["13800138000", "13800138001", "13800138002", "13800138003"]


def start_gateway(port: int, data_dir: Path, redis_url: str, prefix: str, backend_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "WEBCHAT_JWT_SECRET": SECRET, "GATEWAY_REDIS_KEY_PREFIX": prefix,
           "GATEWAY_BOTS_BACKEND": "http", "GATEWAY_BOTS_BACKEND_URL": backend_url,
           "GATEWAY_BOTS_BACKEND_TIMEOUT": "5", "GATEWAY_BOTS_BACKEND_RETRIES": "0"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", str(data_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    line = ""
    while "gateway ready" not in line:
        assert time.monotonic() < deadline, "gateway did not start"
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line or proc.poll() is None, "gateway exited during start-up"
    return proc


async def send(http: aiohttp.ClientSession, url: str, sender: str, phone: str, mid: str) -> tuple[int, Any]:
    body = {"sender": sender, "message": "查话费",
            "metadata": {"message_id": mid, "token": mint_customer_token(phone, SECRET)}}  # fmt: skip
    async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=20)) as resp:
        return resp.status, await resp.json()


@pytest.mark.slow
async def test_sigkill_mid_run_loses_nothing_and_answers_once(aiohttp_server, redis_url, key_prefix, tmp_path,
                                                              nlu_engine):  # fmt: skip
    seed_nlu(tmp_path / "var")  # the tests' trained model: the gateway starts in seconds instead of training
    redis = redisconn.client(redis_url)
    faults = Faults()
    bss = create_bss_app(DemoBSS(redis, key_prefix))
    bss.middlewares.insert(0, faults.middleware())
    backend = await aiohttp_server(bss)
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
    start = [port, tmp_path / "var", redis_url, key_prefix, str(backend.make_url(""))]
    proc = await asyncio.to_thread(start_gateway, *start)
    messages = [(f"crash-{i}", PHONES[i % len(PHONES)], f"m-{i}") for i in range(36)]
    first: dict[str, tuple[int, Any]] = {}
    try:
        async with aiohttp.ClientSession() as http:
            faults.delay["/balance"] = 0.05
            for sender, phone, mid in messages[:12]:  # answered before the crash
                first[mid] = await send(http, url, sender, phone, mid)
            faults.delay["/balance"] = 1.0

            async def attempt(sender: str, phone: str, mid: str) -> None:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # it died under it: the channel retries
                    first[mid] = await send(http, url, sender, phone, mid)

            in_flight = [asyncio.create_task(attempt(*m)) for m in messages[12:]]
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            await asyncio.gather(*in_flight)
    finally:
        proc.kill()
        proc.wait()
    answered = {mid for mid, (status, _) in first.items() if status == 200}
    assert len(answered) >= 12 and len(answered) < len(messages), "the kill did not land mid-run"

    proc = await asyncio.to_thread(start_gateway, *start)
    try:
        async with aiohttp.ClientSession() as http:

            async def retry(sender: str, phone: str, mid: str) -> Any:  # as a channel retries what it sent
                for _ in range(40):
                    status, replies = await send(http, url, sender, phone, mid)
                    if status != 503:
                        break
                    await asyncio.sleep(0.5)  # the first handling is still marked in progress: Retry-After
                assert status == 200, replies
                assert replies, f"{mid}: an empty 200"
                masked = phone[:3] + "****" + phone[-4:]
                assert masked in replies[0]["text"], (mid, replies)
                return replies

            again = dict(zip([m[2] for m in messages], await asyncio.gather(*(retry(*m) for m in messages)),
                             strict=True))  # fmt: skip
            for mid in answered:  # a duplicate gets exactly what the first delivery got
                assert again[mid] == first[mid][1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    # each message is in its conversation's log exactly once
    for sender, _, mid in messages:
        keys = deployment_keys(key_prefix)  # names carry the sender's keyed hash; entries are encrypted
        logs = [k async for k in redis.scan_iter(match=f"{key_prefix}{{sender:rest:{keys.cid(sender)}}}:log:*")]
        entries = [json.loads(keys.unseal(f[b"e"])) for key in logs for _, f in await redis.xrange(key)]
        customer = [e for e in entries if e["kind"] == "customer" and e["message_id"] == mid]
        assert len(customer) == 1, (mid, entries)
    await redis.aclose()
