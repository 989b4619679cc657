"""The Rasa-compatible REST channel, /model/parse, /healthz and /metrics over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest

from gateway.app import create_app
from gateway.rkeys import deployment_keys
from gateway.security import mint_customer_token

SECRET = "test-secret-0123456789abcdef0123456789"


async def post(client, body, **kw):
    data = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return await client.post("/webhooks/rest/webhook", data=data, headers={"Content-Type": "application/json"}, **kw)


async def test_chinese_question_gets_a_chinese_answer(client):
    resp = await post(client, {"sender": "visitor-1", "message": "我的话费还剩多少？"})
    assert resp.status == 200
    replies = await resp.json()
    assert replies[0]["recipient_id"] == "visitor-1"
    assert "话费余额" in replies[0]["text"]


async def test_english_greeting_has_quick_replies(client):
    replies = await (await post(client, {"sender": "v2", "message": "hello there"})).json()
    assert replies[0]["text"].startswith("Hello")
    payloads = [b["payload"] for b in replies[0]["buttons"]]
    assert "/request_human" in payloads and "/query_balance" in payloads


async def test_quick_reply_payload_names_the_intent(client):
    replies = await (await post(client, {"sender": "v3", "message": "/query_bill", "metadata": {"lang": "zh"}})).json()
    assert "账单" in replies[0]["text"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("this is not json", "not valid JSON"),
        ([1, 2, 3], "JSON object"),
        ({"message": "hi"}, "'sender'"),
        ({"sender": "", "message": "hi"}, "'sender'"),
        ({"sender": "x" * 200, "message": "hi"}, "'sender'"),
        ({"sender": "v"}, "'message'"),
        ({"sender": "v", "message": 42}, "'message'"),
        ({"sender": "v", "message": "   "}, "empty"),
        ({"sender": "v", "message": "字" * 1001}, "too long"),
        ({"sender": "v", "message": "hi", "metadata": "x"}, "'metadata'"),
    ],
)
async def test_bad_requests_get_400_naming_the_problem(client, body, needle):
    resp = await post(client, body)
    assert resp.status == 400
    assert needle in (await resp.json())["error"]


async def test_body_over_the_size_limit_is_refused(client):
    resp = await post(client, {"sender": "v", "message": "a" * 900, "metadata": {"pad": "b" * 20000}})
    assert resp.status == 413
    assert "size limit" in (await resp.json())["error"]


async def test_token_identifies_the_customer_and_masks_the_number(aiohttp_client, make_settings, nlu_engine):
    settings = make_settings(webchat={"token_secret": SECRET})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    token = mint_customer_token("13800138000", SECRET)
    replies = await (await post(client, {"sender": "v4", "message": "查话费", "metadata": {"token": token}})).json()
    assert "138****8000" in replies[0]["text"]
    assert "13800138000" not in json.dumps(replies, ensure_ascii=False)


@pytest.mark.parametrize(
    ("claims", "secret", "needle"),
    [
        ({"sub": "13800138000", "exp": int(time.time()) + 3600}, "wrong-secret-wrong-secret-wrong-secret", "signature"),
        ({"sub": "13800138000", "exp": int(time.time()) - 60}, SECRET, "expired"),
        ({"sub": "13800138000"}, SECRET, "'exp'"),
        ({"sub": "hello", "exp": int(time.time()) + 3600}, SECRET, "mobile number"),
    ],
)
async def test_forged_or_expired_token_gets_401(aiohttp_client, make_settings, nlu_engine, claims, secret, needle):
    client = await aiohttp_client(create_app(make_settings(webchat={"token_secret": SECRET}), nlu=nlu_engine))
    token = jwt.encode(claims, secret, algorithm="HS256")
    resp = await post(client, {"sender": "v5", "message": "查话费", "metadata": {"token": token}})
    assert resp.status == 401
    assert needle in (await resp.json())["error"]


async def test_duplicate_delivery_is_answered_once(client, settings, redis_client):
    body = {"sender": "v6", "message": "我想查一下上个月的账单", "metadata": {"message_id": "m-1"}}
    first, second = await (await post(client, body)).json(), await (await post(client, body)).json()
    assert first == second
    keys = deployment_keys(settings.redis.key_prefix)
    conv = (await redis_client.hget(keys.sender("rest", "v6"), "conv")).decode()
    log = await redis_client.xrange(keys.conversation_log("rest", "v6", conv))
    assert [json.loads(keys.unseal(e[1][b"e"]))["kind"] for e in log] == ["customer", "bot"]
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_duplicates_total{channel="rest"} 1.0' in metrics


async def test_turns_are_logged_with_numbers_masked(client, settings, redis_client):
    await post(client, {"sender": "v7", "message": "帮我查下13800138000的流量"})
    keys = deployment_keys(settings.redis.key_prefix)
    conv = (await redis_client.hget(keys.sender("rest", "v7"), "conv")).decode()
    entries = await redis_client.xrange(keys.conversation_log("rest", "v7", conv))
    assert b"13800138000" not in entries[0][1][b"e"]
    customer = json.loads(keys.unseal(entries[0][1][b"e"]))
    assert "138****8000" in customer["text"]
    assert customer["nlu"]["intent"] == "query_data_usage"
    meta = await redis_client.hgetall(keys.conversation(conv))  # a conversation can be found by its id
    assert meta[b"log"].decode() == keys.conversation_log("rest", "v7", conv)


async def test_idle_timeout_starts_a_new_conversation(aiohttp_client, make_settings, nlu_engine, redis_client):
    settings = make_settings(pipeline={"conversation_idle_timeout": 1})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    keys = deployment_keys(settings.redis.key_prefix)
    await post(client, {"sender": "v8", "message": "你好"})
    first = await redis_client.hget(keys.sender("rest", "v8"), "conv")
    await post(client, {"sender": "v8", "message": "查流量"})
    assert await redis_client.hget(keys.sender("rest", "v8"), "conv") == first
    await redis_client.hset(keys.sender("rest", "v8"), "last", 0)  # as if the customer went quiet long ago
    await post(client, {"sender": "v8", "message": "查话费"})
    assert await redis_client.hget(keys.sender("rest", "v8"), "conv") not in {None, first}


async def test_model_parse_speaks_rasa(client):
    resp = await client.post("/model/parse", json={"text": "宽带坏了三天还没人修，我要去工信部投诉！！！"})
    body = await resp.json()
    assert resp.status == 200
    assert body["intent"]["name"] == "complaint"
    assert body["complaint_type"] == "network"
    assert body["lang"] == "zh"
    assert body["urgency"] >= 2
    assert {"name", "confidence"} <= set(body["intent_ranking"][0])
    bad = await client.post("/model/parse", json={"txt": "x"})
    assert bad.status == 400 and "'text'" in (await bad.json())["error"]


async def test_healthz_and_metrics(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["redis"] == "ok"
    await post(client, {"sender": "v9", "message": "hi"})
    text = await (await client.get("/metrics")).text()
    assert 'gateway_reply_seconds_bucket{channel="rest",le="5.0"} 1.0' in text
    assert 'gateway_intents_total{intent="greet"} 1.0' in text


async def test_a_body_that_arrives_in_pieces_is_read_whole(client):
    """A body split across TCP segments (a slow link, a proxy that streams): read to its end, not to the first piece."""
    body = json.dumps(
        {"sender": "split-1", "message": "你好" * 200, "metadata": {"message_id": "s-1"}}, ensure_ascii=False
    ).encode()
    head = (
        f"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + body[:100])
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(body[100:])
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]  # before: 400, the JSON cut at the first piece
    assert "你好".encode() not in reply.split(b"\r\n\r\n", 1)[0]


async def test_a_chunked_body_over_the_limit_is_refused(client):
    """No Content-Length (chunked): the limit still holds over all the pieces."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    try:
        for _ in range(10):  # 10 pieces of 4 KiB: 40 KiB, over the web chat's 16 KiB
            writer.write(b"1000\r\n" + b"x" * 4096 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except ConnectionError:  # the server answered and closed before the end: fine
        pass
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:300]
