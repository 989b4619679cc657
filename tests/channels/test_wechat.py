"""WeChat official account end to end: pushes signed and encrypted by wechatpy's own crypto, posted the
way WeChat posts them (retries after its wait included), passive XML replies read back, and the
customer-service API replaced by a local fake speaking WeChat's JSON."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from bots.bss.demo import DemoBSS
from bots.bss.server import create_bss_app
from gateway import redisconn
from handoff.config import load_handoff_config
from tests.channels.conftest import eventually, metric
from tests.channels.fake_wechat import FakeWeChat, new_aes_key, openid

FAN = openid(1)


def wechat_sections(wx: FakeWeChat, aes: bool = False, **extra: Any) -> dict[str, Any]:
    """A plaintext-mode account, or (``aes``) a safe-mode one, which takes encrypted pushes only."""
    return {"wechat": {"appid": wx.appid, "token": wx.token, "app_secret": wx.secret,
                       "aes_key": wx.encoding_aes_key if aes else "", "api_base_url": wx.api_base, "backoff_base": 0.2,
                       **extra}}  # fmt: skip


@pytest.fixture
async def wx():
    fake = FakeWeChat()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def slow_backend(aiohttp_server: Any, redis_url: str, key_prefix: str) -> Any:
    """The demo back end over HTTP, with outage look-ups that take ``delay[0]`` seconds."""

    redis = redisconn.client(redis_url)
    delay = [0.0]

    @web.middleware
    async def slow(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.endswith("/outages"):
            await asyncio.sleep(delay[0])
        return await handler(request)

    app = create_bss_app(DemoBSS(redis, key_prefix))
    app.middlewares.insert(0, slow)
    server = await aiohttp_server(app)
    yield str(server.make_url("")), delay
    await redis.aclose()


async def test_url_verification_and_forged_pushes(gateways, wx):
    gw = await gateways(**wechat_sections(wx, aes=True))
    url = f"{gw.base}/channels/wechat"
    assert await wx.verify(url, "echo-123") == (200, "echo-123")
    import aiohttp

    async with aiohttp.ClientSession() as session:
        params = {**wx.verify_query("echo-123"), "signature": "0" * 40}
        async with session.get(url, params=params) as resp:
            assert resp.status == 403 and "signature" in (await resp.json())["error"]
        for safe in (False, True):
            params, body = wx.push(wx.text_xml(FAN, "查余额", 1001), safe=safe)
            forged = {**params, "msg_signature" if safe else "signature": "f" * 40}
            async with session.post(url, params=forged, data=body) as resp:
                assert resp.status == 403, safe
        params, _ = wx.push(wx.text_xml(FAN, "x", 1002))
        async with session.post(url, params=params, data=b"<xml><not closed") as resp:
            assert resp.status in (400, 403)  # the signature covers no body in plaintext mode: then it is malformed
    assert wx.sent == []


async def test_text_events_and_media_answered_passively_in_both_modes(gateways, wx):
    old_key = new_aes_key()
    plain = await gateways(**wechat_sections(wx))
    status, body, seconds = await wx.post(f"{plain.base}/channels/wechat", wx.event_xml(FAN, "subscribe"))
    assert status == 200 and "智能客服" in wx.reply_text(body) and seconds < 4
    msg = wx.reply_message(body)
    assert msg.target == FAN and msg.source == wx.original_id
    gw = await gateways(**wechat_sections(wx, aes=True, previous_aes_key=old_key))
    url = f"{gw.base}/channels/wechat"
    status, body, _ = await wx.post(url, wx.text_xml(FAN, "朝阳区现在有网络故障吗", 2001), safe=True)
    answer = wx.reply_text(body)  # decrypted with the current key after checking MsgSignature
    assert status == 200 and "朝阳" in answer and "故障" in answer
    # a push encrypted with the previous key (a rotation in progress) is still accepted
    status, body, _ = await wx.post(url, wx.text_xml(FAN, "营业厅几点开门", 2002), safe=True, key=old_key)
    assert status == 200 and wx.reply_text(body, key=old_key)
    status, body, _ = await wx.post(url, wx.image_xml(FAN, 2003), safe=True)
    assert "暂时无法识别图片" in wx.reply_text(body)
    status, body, _ = await wx.post(url, wx.event_xml(FAN, "CLICK", "BALANCE"), safe=True)
    assert "手机号" in wx.reply_text(body)  # an account question: first the number, then a code by SMS
    status, body, _ = await wx.post(url, wx.event_xml(FAN, "VIEW", "https://example.com"), safe=True)
    assert body == "success"


async def test_a_retry_during_a_slow_answer_gets_one_answer_through_the_api(gateways, wx, slow_backend):
    backend_url, delay = slow_backend
    gw = await gateways(bots={"backend": "http", "backend_url": backend_url, "backend_timeout": 5},
                        **wechat_sections(wx, aes=True, passive_budget=1.0))  # fmt: skip
    url = f"{gw.base}/channels/wechat"
    delay[0] = 2.5  # slower than the passive budget (and than WeChat's wait)
    started = time.monotonic()
    attempts = await wx.post_like_wechat(url, wx.text_xml(FAN, "朝阳区现在有网络故障吗", 3001), safe=True, wait=0.4,
                                         retries=3)  # fmt: skip
    assert [a[1] for a in attempts] == ["success"] * len(attempts) and len(attempts) >= 2
    assert all(a[2] < 1.5 for a in attempts)  # every attempt answered within WeChat's window
    sent = await wx.wait_sent(1, timeout=10, openid=FAN)
    assert time.monotonic() - started >= 2.0
    await asyncio.sleep(3.0)  # long enough for any second answer to show up
    texts = wx.texts_to(FAN)
    assert len(texts) == 1 or (len(texts) == 2 and "正在为您查询" in texts[0]), texts
    assert "故障" in sent[-1]["text"]["content"] or "故障" in texts[-1]
    assert wx.token_requests == 1  # one access token, cached in Redis
    # a late retry of the same MsgId is answered "success" at once
    status, body, seconds = await wx.post(url, wx.text_xml(FAN, "朝阳区现在有网络故障吗", 3001), safe=True)
    assert (status, body) == (200, "success") and seconds < 0.5


async def test_access_token_is_shared_refreshed_and_the_window_respected(gateways, wx, agents):
    gw = await gateways(handoff=load_handoff_config().replace(push=False), **wechat_sections(wx, window_quota=5))
    url = f"{gw.base}/channels/wechat"
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()  # online: the complaint goes to the queue (with no one online, to a callback)
    await wx.post(url, wx.text_xml(FAN, "我要投诉，你们营业厅的服务态度太差了", 4001))
    chat = next(c for c in (await agent.call("GET", "/api/queue"))["chats"] if c["channel"] == "wechat")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")

    async def say(text: str) -> None:
        await agent.call("POST", f"/api/chats/{chat['id']}/messages", {"text": text})

    await say("您好，我是客服王小明，请问是哪家营业厅？")
    await eventually(lambda: any("王小明" in t for t in wx.texts_to(FAN)), timeout=5)
    assert wx.token_requests == 1  # one token for every send so far, kept in Redis
    wx.expire_tokens()  # the cached token stops working: fetched again once, the message still goes
    await say("我们会尽快核实并回复您。")
    await eventually(lambda: any("尽快核实" in t for t in wx.texts_to(FAN)), timeout=5)
    assert wx.token_requests == 2
    # the window allows 5 customer-service messages: the fifth asks the customer to write again
    n = len(wx.texts_to(FAN))
    assert n < 5
    for i in range(n, 5):
        await say(f"第{i + 1}条：处理进度会及时通知您。")
        await eventually(lambda i=i: len(wx.texts_to(FAN)) == i + 1, timeout=5)
    assert "回复任意内容" in wx.texts_to(FAN)[4] and all("回复任意内容" not in t for t in wx.texts_to(FAN)[:4])
    await say("第六条：感谢您的耐心。")  # beyond the quota: held until the customer writes
    await asyncio.sleep(0.8)
    assert len(wx.texts_to(FAN)) == 5
    await wx.post(url, wx.text_xml(FAN, "好的", 4002))  # the customer writes again: a new window
    await eventually(lambda: any("第六条" in t for t in wx.texts_to(FAN)), timeout=5)
    # outside the 48-hour window WeChat refuses (45015): the message is held, not lost
    wx.window_closed.add(FAN)
    await say("请问还有其他问题吗？")
    await asyncio.sleep(0.8)
    assert not any("其他问题" in t for t in wx.texts_to(FAN))
    assert await metric(gw, 'outbox_dead_total{channel="wechat"}') == 0
    wx.window_closed.discard(FAN)
    await wx.post(url, wx.text_xml(FAN, "在的", 4003))
    await eventually(lambda: any("其他问题" in t for t in wx.texts_to(FAN)), timeout=5)


async def test_unsubscribe_stops_sends(gateways, wx, agents):
    gw = await gateways(handoff=load_handoff_config().replace(push=False), **wechat_sections(wx))
    url = f"{gw.base}/channels/wechat"
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    await wx.post(url, wx.text_xml(FAN, "转人工", 5001))
    chat = next(c for c in (await agent.call("GET", "/api/queue"))["chats"] if c["channel"] == "wechat")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")
    status, body, _ = await wx.post(url, wx.event_xml(FAN, "unsubscribe"))
    assert (status, body) == (200, "success")
    await agent.call("POST", f"/api/chats/{chat['id']}/messages", {"text": "您好，请问有什么可以帮您？"})
    await eventually(lambda: metric(gw, 'outbox_dead_total{channel="wechat"}'), timeout=5)
    assert not any("有什么可以帮您" in t for t in wx.texts_to(FAN))


async def test_two_gateway_processes_share_one_access_token(gateways, wx):
    """Every answer through the API (a zero passive budget), from two processes on one Redis: one token fetch."""
    sections = wechat_sections(wx, passive_budget=0.0)
    gw1, gw2 = await gateways(**sections), await gateways(**sections)
    fans = [openid(i) for i in range(10, 16)]
    pushes = [(f"{gw.base}/channels/wechat", wx.text_xml(fan, "营业厅几点开门", 6000 + i))
              for i, (gw, fan) in enumerate(zip([gw1, gw2] * 3, fans, strict=True))]  # fmt: skip
    results = await asyncio.gather(*(wx.post(url, xml) for url, xml in pushes))
    assert all(body == "success" for _, body, _ in results)
    await wx.wait_sent(len(fans), timeout=8)
    assert sorted({m["touser"] for m in wx.sent}) == sorted(fans) and len(wx.sent) == len(fans)
    assert wx.token_requests == 1


async def test_a_replayed_signature_with_an_old_timestamp_is_refused(gateways, wx):
    """Plaintext mode signs token, timestamp and nonce, not the body: an old signature must not carry a new body."""
    import aiohttp

    gw = await gateways(**wechat_sections(wx, aes=True))
    url = f"{gw.base}/channels/wechat"
    old = int(time.time()) - 600
    async with aiohttp.ClientSession() as session:
        for safe in (False, True):
            params, body = wx.push(wx.text_xml(FAN, "查余额", 7001), safe=safe, timestamp=old)
            async with session.post(url, params=params, data=body) as resp:
                assert resp.status == 403 and "timestamp" in (await resp.json())["error"], safe
        params, body = wx.push(wx.text_xml(FAN, "营业厅几点开门", 7002), safe=True, timestamp=int(time.time()) - 20)
        async with session.post(url, params=params, data=body) as resp:
            assert resp.status == 200  # a retry some seconds later is fine
