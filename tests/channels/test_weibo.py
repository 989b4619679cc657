"""Weibo fan service end to end: signed JSON pushes posted as Weibo posts them (a retry after its
5-second wait included), passive replies read back, active replies read off a fake messages API."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from handoff.config import load_handoff_config
from tests.channels.conftest import eventually, metric
from tests.channels.fake_weibo import FakeWeibo

FAN = 5566778899


def weibo_sections(fake: FakeWeibo, **extra: Any) -> dict[str, Any]:
    return {"weibo": {"uid": str(fake.uid), "app_secret": fake.app_secret, "access_token": fake.access_token,
                      "api_base_url": fake.api_base, "backoff_base": 0.2, **extra}}  # fmt: skip


@pytest.fixture
async def weibo():
    fake = FakeWeibo()
    await fake.start()
    yield fake
    await fake.stop()


async def test_verification_passive_answers_events_and_forgeries(gateways, weibo, caplog):
    gw = await gateways(**weibo_sections(weibo))
    url = f"{gw.base}/channels/weibo"
    assert await weibo.verify(url, "echo-1") == (200, "echo-1")
    assert (await weibo.verify(url, "echo-1", forge=True))[0] == 403
    status, body = await weibo.post(url, weibo.event_push(FAN, "follow"))
    assert status == 200 and "智能客服" in weibo.parse_passive(body)
    push = weibo.text_push(FAN, "朝阳区现在有网络故障吗")
    status, body = await weibo.post(url, push)
    answer = weibo.parse_passive(body, push=push)  # ids swapped, data URL-encoded JSON, ≤ 300 characters
    assert "朝阳" in answer and "故障" in answer
    status, body = await weibo.post(url, weibo.image_push(FAN))
    assert "暂时无法识别" in weibo.parse_passive(body)
    status, body = await weibo.post(url, weibo.text_push(FAN, "查一下余额"), forge=True)
    assert status == 403 and weibo.sent == []
    # an account question: the number, a code by SMS, then the answer (the same binding as WeChat/Telegram)
    status, body = await weibo.post(url, weibo.text_push(FAN, "我的话费还剩多少"))
    assert "手机号" in weibo.parse_passive(body)
    status, body = await weibo.post(url, weibo.text_push(FAN, "13800138000"))
    assert "138****8000" in weibo.parse_passive(body)
    code = await eventually(lambda: _code(caplog), timeout=5)
    status, body = await weibo.post(url, weibo.text_push(FAN, code))
    assert "已绑定" in weibo.parse_passive(body)  # bound; a passive reply carries one message…
    await eventually(lambda: any("86.50" in t for t in weibo.texts_to(FAN)), timeout=5)  # …the answer follows


def _code(caplog: Any) -> str | None:
    texts = [r.getMessage() for r in caplog.records if r.name == "gateway.sms"]
    found = re.search(r"(\d{6})", texts[-1]) if texts else None
    return found.group(1) if found else None


async def test_a_retry_is_answered_once_and_agents_reply_actively(gateways, weibo, agents):
    gw = await gateways(handoff=load_handoff_config().replace(push=False), **weibo_sections(weibo, passive_budget=0.5))
    url = f"{gw.base}/channels/weibo"
    push = weibo.text_push(FAN, "转人工")
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    first, again = await asyncio.gather(weibo.post(url, push), weibo.post(url, push))  # a retry racing the first
    answers = [weibo.parse_passive(b) for _, b in (first, again)]
    await asyncio.sleep(0.8)
    total = [a for a in answers if a] + weibo.texts_to(FAN)
    assert len([t for t in total if "人工" in t]) == 1, total  # one answer, passive or through the API
    chat = next(c for c in (await agent.call("GET", "/api/queue"))["chats"] if c["channel"] == "weibo")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")
    await agent.call(
        "POST", f"/api/chats/{chat['id']}/messages", {"text": "您好，我是客服王小明。" + "详细说明。" * 70}
    )
    await eventually(lambda: sum("王小明" in t or "详细说明" in t for t in weibo.texts_to(FAN)) >= 2, timeout=5)
    assert all(len(t) <= 300 for t in weibo.texts_to(FAN))  # a long agent reply in 300-character messages
    weibo.fail(1, error_code=10023)  # rate limited: retried later (after a minute; not waited for here)
    await agent.call("POST", f"/api/chats/{chat['id']}/messages", {"text": "请稍等。"})
    await eventually(lambda: metric(gw, 'outbox_retries_total{channel="weibo"}'), timeout=5)
    status, body = await weibo.post(url, weibo.event_push(FAN, "unfollow"))
    assert (status, body) == (200, "")


async def test_a_replayed_signature_with_an_old_timestamp_is_refused(gateways, weibo):
    import json
    import time

    import aiohttp

    gw = await gateways(**weibo_sections(weibo))
    stale = weibo.signed_query(timestamp=str(int((time.time() - 600) * 1000)))  # Weibo's are milliseconds
    body = json.dumps(weibo.text_push(FAN, "查余额"), ensure_ascii=False).encode()
    url = f"{gw.base}/channels/weibo"
    async with aiohttp.ClientSession() as session, session.post(url, params=stale, data=body) as resp:
        assert resp.status == 403 and "timestamp" in (await resp.json())["error"]
    status, _ = await weibo.post(f"{gw.base}/channels/weibo", weibo.text_push(FAN, "营业厅几点开门"))
    assert status == 200
