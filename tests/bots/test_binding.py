"""Identity: tokens (401 for forged or expired), and binding an account with a one-time code."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import jwt

from gateway.rkeys import deployment_keys
from tests.bots.conftest import SECRET, demo


async def code_from(caplog) -> str:
    """The code the demo SMS provider printed; it is sent from the SMS outbox, a moment after the reply."""
    for _ in range(100):
        texts = [r.getMessage() for r in caplog.records if r.name == "gateway.sms"]
        if texts:
            break
        await asyncio.sleep(0.02)
    assert texts, "no one-time code was sent"
    assert not any(re.search(r"1[3-9]\d{9}", t) for t in texts)  # the number is masked in the log
    return re.search(r"(\d{6})", texts[-1]).group(1)


async def test_forged_and_expired_tokens_get_401(bot_client):
    forged = jwt.encode({"sub": "13800138000", "exp": int(time.time()) + 60}, "wrong-secret-" * 3, algorithm="HS256")
    expired = jwt.encode({"sub": "13800138000", "exp": int(time.time()) - 60}, SECRET, algorithm="HS256")
    for token, error in ((forged, "invalid token signature"), (expired, "token expired")):
        resp = await bot_client.post("/webhooks/rest/webhook", json={"sender": "x", "message": "查话费",
                                                                     "metadata": {"token": token}})  # fmt: skip
        assert resp.status == 401
        body = await resp.json()
        assert error in body["error"] and "86.50" not in str(body)


async def test_bind_then_the_question_is_answered(customer, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.sms")
    c = customer(phone=None)
    assert "手机号码" in await c.text("查话费")
    reply = await c.text("我的号码是138 0013 8001")
    assert "验证码已发送到138****8001" in reply
    reply = await c.text(await code_from(caplog))
    assert "已绑定号码138****8001" in reply
    assert f"{demo('13800138001')['balance']:.2f}元" in reply  # the original question, answered
    assert "138****8001" in await c.text("查流量")  # stays bound
    assert "已绑定号码138****8001" in await c.text("绑定")
    assert "已解除绑定" in await c.text("解绑")
    assert "验证码" in await c.text("查话费")


async def test_bill_month_survives_the_binding(customer, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.sms")
    c = customer(phone=None)
    await c.text("查上个月账单")
    await c.text("13800138002")
    reply = await c.text(await code_from(caplog))
    assert f"{demo('13800138002')['bills'][1]['total']:.2f}元" in reply


async def test_five_wrong_codes_lock_the_code(customer, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.sms")
    c = customer(phone=None)
    await c.text("绑定")
    await c.text("13800138000")
    code = await code_from(caplog)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        assert f"还可以再试{left}次" in await c.text(wrong)
    assert "错误次数过多" in await c.text(wrong)
    reply = await c.text(code)  # the right code no longer works
    assert "已绑定" not in reply
    assert "验证码" in await c.text("查话费")  # still not bound


async def test_code_resend_is_rate_limited(customer, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.sms")
    c = customer(phone=None)
    await c.text("绑定")
    await c.text("13800138000")
    other = customer(phone=None)
    await other.text("绑定")
    assert "秒后再试" in await other.text("13800138000")


async def test_expired_code(aiohttp_client, make_settings, nlu_engine, caplog):
    import asyncio

    from gateway.app import create_app
    from tests.bots.conftest import Customer

    caplog.set_level(logging.WARNING, logger="gateway.sms")
    settings = make_settings(webchat={"token_secret": SECRET}, bots={"otp_ttl": 1})
    c = Customer(await aiohttp_client(create_app(settings, nlu=nlu_engine)), "slowpoke", None)
    await c.text("绑定")
    await c.text("13800138000")
    code = await code_from(caplog)
    await asyncio.sleep(1.3)
    assert "已过期" in await c.text(code)


async def test_proven_customer_needs_no_binding(customer):
    assert "无需绑定" in await customer("13800138000").text("绑定")
    assert "没有绑定号码" in await customer(phone=None).text("解绑")


async def test_complaint_and_status(customer, redis_client, key_prefix):
    c = customer("13800138000")
    reply = await c.text("你们的网络太差了，天天断线，我要投诉")
    ticket = re.search(r"TS\d{13}", reply).group(0)
    assert "网络类" in reply and "30分钟" in reply and "24小时" in reply
    reply = await c.text("我的投诉处理得怎么样了")
    assert (
        ticket in reply and "已派单至处理部门" in reply and "前与您联系" in reply
    )  # the case's real stage, next promise
    assert "没有查到您的投诉记录" in await customer("13800138001").text("投诉进度")
    entries = await redis_client.xrange(f"{key_prefix}{{cases}}:events")
    assert [json.loads(fields[b"e"])["to"] for _, fields in entries] == ["registered", "analysed", "dispatched"]


async def test_no_agent_online_means_a_message_and_a_callback(customer, redis_client, key_prefix):
    c = customer("13800138000")
    reply = await c.text("转人工")
    assert "目前没有可以接待的人工客服" in reply and "留言" in reply
    reply = await c.text("我的宽带老是掉线，请下午给我回电话")
    assert "留言已记录" in reply
    keys = deployment_keys(key_prefix)  # the callbacks' entries are encrypted at rest
    entries = [keys.unseal(e[1][b"e"]) for e in await redis_client.xrange(f"{key_prefix}{{handoff}}:callbacks")]
    assert len(entries) == 2 and "下午给我回电话" in entries[1] and "13800138000" not in "".join(entries)
    assert "138****8000" in await c.text("查话费")  # the bot carries on


async def test_fallback_asks_once_then_offers_a_human(customer):
    c = customer(phone=None)
    first = await c.text("我想问一下那个东西")
    assert "没太明白" in first and c.buttons()[-1] == ("转人工客服", "/request_human")
    second = await c.text("那个")
    assert "需要为您转人工客服吗" in second
    assert "留言" in await c.text("1")


async def test_a_rest_sender_alone_never_carries_the_binding(customer, bot_client, caplog):
    """The REST sender is the client's own string: the binding belongs to the session the code issued."""
    from tests.bots.conftest import Customer

    caplog.set_level(logging.WARNING, logger="gateway.sms")
    owner = customer(phone=None)
    await owner.text("查话费")
    await owner.text("13800138001")
    code_message = "m-" + owner.sender
    reply = await owner.text(await code_from(caplog), message_id=code_message)
    balance = f"{demo('13800138001')['balance']:.2f}"
    assert balance in reply and owner.session
    assert balance in await owner.text("查话费")  # the session carries the binding

    bot_client.session.cookie_jar.clear()  # the intruder is another client: no cookie of the owner's
    intruder = Customer(bot_client, owner.sender, None)  # same sender, no session
    for text in ("查话费", "查流量", "我的账单"):
        reply = await intruder.text(text)
        assert "138****8001" not in reply and balance not in reply
    # the binding turn's replies are not handed to whoever repeats its sender and message id
    replayed = await intruder.say("000000", message_id=code_message)
    assert balance not in str(replayed)
    # a made-up session is just an empty namespace; a malformed one is refused
    intruder.session = "x" * 43
    assert balance not in await intruder.text("查话费")
    intruder.session = "not a session!"
    body = await intruder.say("查话费", status=400)
    assert body["field"] == "session"


async def test_the_session_cookie_binds_a_browser_client(customer, bot_client, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.sms")
    owner = customer(phone=None)
    await owner.text("绑定")
    await owner.text("13800138002")
    await owner.text(await code_from(caplog))
    session = owner.session
    owner.session = None  # a browser sends only its cookie (the test client keeps the jar)
    cookie = bot_client.session.cookie_jar.filter_cookies(bot_client.make_url("/"))
    assert cookie["gw_rest_session"].value == session
    assert "138****8002" in await owner.text("查话费")


async def test_tokens_with_a_lifetime_over_the_limit_are_refused(bot_client):
    now = int(time.time())
    for claims in ({"sub": "13800138000", "exp": now + 10 * 365 * 86400},
                   {"sub": "13800138000", "iat": now - 10, "exp": now + 2 * 86400}):  # fmt: skip
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        resp = await bot_client.post("/webhooks/rest/webhook", json={"sender": "x", "message": "查话费",
                                                                     "metadata": {"token": token}})  # fmt: skip
        assert resp.status == 401 and "lifetime" in (await resp.json())["error"]
    ok = jwt.encode({"sub": "13800138000", "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")
    resp = await bot_client.post("/webhooks/rest/webhook", json={"sender": "x", "message": "查话费",
                                                                 "metadata": {"token": ok}})  # fmt: skip
    assert resp.status == 200 and "138****8000" in str(await resp.json())
