"""Ordering across processes, the reply deadline, durability across Redis restarts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.app import EMBEDDED, create_app
from gateway.keys import REDIS
from gateway.rkeys import deployment_keys
from nlu import NLU, NLUConfig


async def post(client, sender, text, message_id=None):
    body = {"sender": sender, "message": text, "metadata": {"message_id": message_id} if message_id else {}}
    resp = await client.post("/webhooks/rest/webhook", json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_same_sender_on_two_processes_is_handled_in_order(aiohttp_client, settings, nlu_engine, redis_client):
    a = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    b = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    texts = [f"第{i}条：查一下流量" for i in range(12)]
    results = await asyncio.gather(*(post(a if i % 2 else b, "same-sender", t) for i, t in enumerate(texts)))
    assert all(r and r[0]["text"] for r in results)  # every message answered
    keys = deployment_keys(settings.redis.key_prefix)
    conv = (await redis_client.hget(keys.sender("rest", "same-sender"), "conv")).decode()
    log = [
        json.loads(keys.unseal(fields[b"e"]))
        for _, fields in await redis_client.xrange(keys.conversation_log("rest", "same-sender", conv))
    ]
    customer = [e for e in log if e["kind"] == "customer"]
    assert len(customer) == 12  # neither lost nor doubled, all in one conversation
    tickets = [e["ticket"] for e in customer]
    assert tickets == sorted(tickets) == list(range(1, 13))  # logged in arrival (ticket) order


class SlowRasa(BaseHTTPRequestHandler):
    delay = 1.5

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay)
        body = json.dumps(
            {
                "text": "x",
                "intent": {"name": "roaming", "confidence": 0.9},
                "intent_ranking": [{"name": "roaming", "confidence": 0.9}],
                "entities": [],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_rasa():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowRasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_turn_past_its_deadline_still_answers(aiohttp_client, make_settings, nlu_engine, slow_rasa):
    config = NLUConfig.from_dict({"backend": {"kind": "rasa", "url": slow_rasa, "timeout": 5}}, "test")
    slow_nlu = NLU(nlu_engine._intents, nlu_engine._types, config)
    client = await aiohttp_client(create_app(make_settings(pipeline={"reply_deadline": 0.3}), nlu=slow_nlu))
    started = time.perf_counter()
    replies = await post(client, "slow-1", "去日本怎么开漫游")
    elapsed = time.perf_counter() - started
    assert elapsed < 1.2  # the customer is not kept waiting for the slow back end
    assert replies == [{"recipient_id": "slow-1", "text": "正在为您查询，请稍候…"}]
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_deadline_misses_total{channel="rest"} 1.0' in metrics
    # REST cannot push: the answer, once it arrived, comes in front of the next reply
    await asyncio.sleep(SlowRasa.delay + 0.3)
    SlowRasa.delay = 0.0
    try:
        replies = await post(client, "slow-1", "谢谢")
    finally:
        SlowRasa.delay = 1.5
    assert "漫游" in replies[0]["text"] and len(replies) == 2
    assert 'gateway_late_answer_seconds_count{channel="rest"} 1.0' in await (await client.get("/metrics")).text()


async def test_remote_nlu_answers_within_deadline(aiohttp_client, make_settings, nlu_engine, slow_rasa):
    SlowRasa.delay = 0.0
    try:
        config = NLUConfig.from_dict({"backend": {"kind": "rasa", "url": slow_rasa, "timeout": 2}}, "test")
        client = await aiohttp_client(
            create_app(make_settings(), nlu=NLU(nlu_engine._intents, nlu_engine._types, config))
        )
        replies = await post(client, "remote-1", "hello")  # the fake Rasa says roaming, whatever the text
        assert "roaming" in replies[0]["text"]
    finally:
        SlowRasa.delay = 1.5


async def test_embedded_redis_keeps_conversations_across_a_restart(aiohttp_client, make_settings, nlu_engine, tmp_path):
    settings = make_settings(redis={"url": "", "appendfsync": "always"}, server={"data_dir": str(tmp_path / "emb")})
    app = create_app(settings, nlu=nlu_engine)
    client = await aiohttp_client(app)
    first = await post(client, "durable-1", "帮我查下账单", message_id="d-1")
    assert (tmp_path / "emb" / "redis" / "appendonly.aof").exists()
    app[EMBEDDED].kill()  # a crash: SIGKILL, only the AOF survives
    await asyncio.sleep(0.2)
    assert (await client.get("/healthz")).status == 503
    await client.close()

    app2 = create_app(settings, nlu=nlu_engine)
    client2 = await aiohttp_client(app2)
    again = await post(client2, "durable-1", "帮我查下账单", message_id="d-1")
    assert again == first  # the provider's retry after the crash is answered from the stored turn
    keys = deployment_keys(settings.redis.key_prefix)
    conv = (await app2[REDIS].hget(keys.sender("rest", "durable-1"), "conv")).decode()
    assert len(await app2[REDIS].xrange(keys.conversation_log("rest", "durable-1", conv))) == 2


async def test_a_retry_after_a_crash_mid_turn_is_handled(client, settings, redis_client):
    """A process died after accepting (the dedupe key says "pending"): once the pending mark
    lapses, the provider's retry is handled instead of being swallowed as a duplicate."""
    keys = deployment_keys(settings.redis.key_prefix)
    dedupe = keys.dedupe("rest", "crashy", "c-1")
    await redis_client.set(dedupe, "pending", ex=60)
    ttl = await redis_client.ttl(dedupe)
    assert ttl <= 60
    await redis_client.expire(dedupe, 1)
    await asyncio.sleep(1.1)
    replies = await post(client, "crashy", "查流量", message_id="c-1")
    assert replies and replies[0]["text"]  # a swallowed duplicate would answer []


async def test_sender_state_lives_a_day_past_the_idle_timeout_renewed_at_most_once_a_minute(
    client, settings, redis_client
):
    keys = deployment_keys(settings.redis.key_prefix)
    full = settings.pipeline.conversation_idle_timeout + 86400
    await post(client, "ttl-2", "你好")
    key = keys.sender("rest", "ttl-2")
    assert full - 5 <= await redis_client.ttl(key) <= full  # a new sender's state gets its TTL at once
    await redis_client.expire(key, 100)  # as if its TTL had run down
    await post(client, "ttl-2", "查流量")
    assert await redis_client.ttl(key) <= 100  # renewed under a minute ago: not again (a write to the AOF saved)
    await redis_client.hset(key, "renewed", str(time.time() - 61))
    await post(client, "ttl-2", "谢谢")
    assert full - 5 <= await redis_client.ttl(key) <= full  # over a minute: renewed


async def test_pending_mark_is_short_and_stored_reply_is_kept(client, settings, redis_client):
    keys = deployment_keys(settings.redis.key_prefix)
    await post(client, "ttl-1", "你好", message_id="t-1")
    ttl = await redis_client.ttl(keys.dedupe("rest", "ttl-1", "t-1"))
    assert settings.pipeline.dedupe_ttl - 5 <= ttl <= settings.pipeline.dedupe_ttl
