"""Webhook authenticity, per provider channel, as an attacker tries it: forged or missing signatures, a
captured signature replayed with another body, stale and future timestamps, plaintext on a safe-mode WeChat
account, a replay after the pipeline's dedupe window, secrets and signatures that are not ASCII (sent as raw
bytes). Each is refused (or, for an exact re-delivery, answered once) while the genuine request is accepted,
and /healthz stays 200. Requests go over HTTP on loopback; the providers' fakes sign as the providers do."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.channels.conftest import TG_SECRET, eventually, http_sms_sections, metric, telegram_sections
from tests.channels.fake_forum import FakeDiscourse
from tests.channels.fake_wechat import FakeWeChat, openid
from tests.channels.fake_weibo import FakeWeibo
from tests.channels.rawhttp import raw_request

NUMBER = "+8613800138000"
FAN = openid(77)
WEIBO_FAN = 5566778800
DISCOURSE_SECRET = "discourse-webhook-secret"
pytestmark = pytest.mark.timeout(60)


async def post(url: str, body: bytes | dict, headers: dict[str, str] | None = None,
               params: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"data": body, "headers": headers or {}, "params": params}
        async with session.post(url, **kwargs) as resp:
            return resp.status, await resp.text()


async def healthy(gw: Any) -> bool:
    async with aiohttp.ClientSession() as session, session.get(f"{gw.base}/healthz") as resp:
        return resp.status == 200


# ---- SMS: the generic signed webhook, its receipts, Twilio ---------------------------------------------------
async def test_generic_sms_webhook_refuses_forgeries_stale_and_replayed_requests(gateways, http_sms):
    gw = await gateways(pipeline={"dedupe_ttl": 1}, **http_sms_sections(http_sms))
    url = f"{gw.base}/channels/sms/webhook"
    raw, headers = http_sms.inbound_body(NUMBER, "10658000", "YE", "m-1")
    status, body = await post(url, raw, headers)
    assert status == 200 and json.loads(body) == {"status": "accepted", "duplicate": False, "replies": 1}
    await http_sms.wait_messages(1)
    # forged: a wrong signature, none, one that is not ASCII (raw bytes, not even UTF-8)
    for forged in ({**headers, "X-Signature": "sha256=" + "0" * 64}, {"Content-Type": "application/json"}):
        assert (await post(url, raw, forged))[0] == 403
    for value in ("sha256=ä".encode(), b"sha256=\xff\xfe", "签名".encode()):
        headers_ = [(b"Content-Type", b"application/json"), (b"X-Signature", value)]
        status, _ = await raw_request(gw.base, "POST", "/channels/sms/webhook", headers_, raw)
        assert status == 403, value
    # the signature covers the body: another body under a captured signature is refused
    other, _ = http_sms.inbound_body(NUMBER, "10658000", "TD", "m-1")
    assert (await post(url, other, headers))[0] == 403
    # stale and future timestamps, properly signed (a request captured more than 5 minutes ago), are refused
    for skew in (-301, 301, -86400):
        stale, stale_headers = http_sms.inbound_body(NUMBER, "10658000", "YE", "m-2", timestamp=int(time.time()) + skew)
        status, body = await post(url, stale, stale_headers)
        assert status == 403 and "timestamp" in json.loads(body)["error"], skew
    # without a signed timestamp: 400 naming the field
    bare = json.dumps({"from": NUMBER, "text": "YE", "id": "m-3"}).encode()
    status, body = await post(url, bare, {"X-Signature": http_sms.sign(bare)})
    assert status == 400 and "timestamp" in json.loads(body)["error"]
    # a replay after the pipeline's dedupe window (1 s here) still gets the first answer, and no second text
    await asyncio.sleep(1.5)
    status, body = await post(url, raw, headers)
    assert status == 200 and json.loads(body) == {"status": "accepted", "duplicate": True, "replies": 1}
    await asyncio.sleep(0.5)
    assert len(http_sms.messages) == 1
    assert await healthy(gw)


async def test_sms_receipts_are_signed_timely_and_counted_once(gateways, http_sms):
    gw = await gateways(**http_sms_sections(http_sms))
    raw, headers = http_sms.inbound_body(NUMBER, "10658000", "YE")
    assert (await post(f"{gw.base}/channels/sms/webhook", raw, headers))[0] == 200
    sent = (await http_sms.wait_messages(1))[0]
    url = f"{gw.base}/channels/sms/status"
    stale, stale_headers = http_sms.report_body(sent["id"], "failed", timestamp=int(time.time()) - 3600)
    assert (await post(url, stale, stale_headers))[0] == 403
    body, receipt_headers = http_sms.report_body(sent["id"], "DELIVRD")
    for _ in range(3):  # delivered once, replayed twice
        status, answer = await post(url, body, receipt_headers)
        assert status == 200 and json.loads(answer) == {"status": "recorded"}
    late, late_headers = http_sms.report_body(sent["id"], "failed")  # a late, different receipt: settled already
    assert (await post(url, late, late_headers))[0] == 200
    assert await metric(gw, 'sms_delivery_receipts_total{status="delivered"}') == 1
    assert await metric(gw, 'sms_delivery_receipts_total{status="failed"}') == 0
    assert await healthy(gw)


async def test_twilio_signatures_and_replays(gateways, twilio):
    gw = await gateways(pipeline={"dedupe_ttl": 1},
                        sms={"provider": "twilio", "twilio_base_url": twilio.base_url, "source": "+15005550006",
                             "twilio_account_sid": twilio.account_sid, "twilio_auth_token": twilio.auth_token,
                             "per_number_interval": 0.05})  # fmt: skip
    url = f"{gw.base}/channels/sms/twilio"
    form, headers = twilio.inbound_form(url, NUMBER, "+15005550006", "查一下余额")
    assert (await post(url, form, headers))[0] == 200
    await twilio.wait_messages(1)
    # the signature covers the URL and every parameter
    assert (await post(url, {**form, "Body": "退订"}, headers))[0] == 403
    assert (await post(f"{url}?x=1", form, headers))[0] == 403
    encoded = urlencode(form).encode()
    for value in (b"\xff\xfe", "签名".encode(), b""):
        status, _ = await raw_request(gw.base, "POST", "/channels/sms/twilio",
                                      [(b"Content-Type", b"application/x-www-form-urlencoded"),
                                       (b"X-Twilio-Signature", value)], encoded)  # fmt: skip
        assert status == 403, value
    # Twilio signs no time: a replay after the dedupe window is still answered once (the sid is remembered)
    await asyncio.sleep(1.5)
    status, text = await post(url, form, headers)
    assert status == 200 and "<Response></Response>" in text
    await asyncio.sleep(0.5)
    assert len(twilio.messages) == 1
    assert await healthy(gw)


# ---- Telegram ----------------------------------------------------------------------------------------------
async def test_telegram_secret_token_compared_as_bytes(gateways, telegram_api):
    gw = await gateways(**telegram_sections(telegram_api))
    update = json.dumps(telegram_api.text_update(1, 4242, "查余额")).encode()
    for value in (b"wrong", TG_SECRET.encode() + b"\xff", "秘密".encode(), b"\xc3\x28", b""):
        status, _ = await raw_request(gw.base, "POST", "/channels/telegram/webhook",
                                      [(b"Content-Type", b"application/json"),
                                       (b"X-Telegram-Bot-Api-Secret-Token", value)], update)  # fmt: skip
        assert status == 403, value
    status, _ = await raw_request(gw.base, "POST", "/channels/telegram/webhook",
                                  [(b"Content-Type", b"application/json")], update)  # fmt: skip
    assert status == 403
    assert telegram_api.sent(4242) == []
    webhook = f"{gw.base}/channels/telegram/webhook"
    assert (
        await telegram_api.deliver(telegram_api.text_update(2, 4242, "查余额"), webhook, secret_token=TG_SECRET) == 200
    )
    await telegram_api.wait_for("sendMessage", 1, chat_id=4242)
    assert await healthy(gw)


# ---- WeChat ------------------------------------------------------------------------------------------------
@pytest.fixture
async def wx():
    fake = FakeWeChat()
    await fake.start()
    yield fake
    await fake.stop()


def wechat_sections(wx: FakeWeChat, aes: bool) -> dict[str, Any]:
    return {"wechat": {"appid": wx.appid, "token": wx.token, "app_secret": wx.secret, "api_base_url": wx.api_base,
                       "aes_key": wx.encoding_aes_key if aes else "", "backoff_base": 0.2}}  # fmt: skip


async def test_wechat_plaintext_nonce_is_used_once(gateways, wx):
    gw = await gateways(**wechat_sections(wx, aes=False))
    url = f"{gw.base}/channels/wechat"
    params, body = wx.push(wx.text_xml(FAN, "营业厅几点开门", 9001))
    status, answer = await post(url, body, params=params)
    assert status == 200 and wx.reply_text(answer)
    # the same push again (WeChat re-delivering it): no second answer, no error
    assert await post(url, body, params=params) == (200, "success")
    # the captured signature with another body (another sender asking for a balance): refused
    _, forged = wx.push(wx.text_xml(openid(78), "查余额", 9002))
    status, answer = await post(url, forged, params=params)
    assert status == 403 and "another body" in json.loads(answer)["error"]
    # a forged signature, a timestamp that is not a number, stale and future timestamps
    assert (await post(url, body, params={**params, "signature": "0" * 40}))[0] == 403
    for bad in ("nan", "1e10", "-1", "١٧٠٠٠٠٠٠٠٠", " " + params["timestamp"], "9" * 5000):
        assert (await post(url, body, params={**params, "timestamp": bad}))[0] == 403, bad
    for skew in (-400, 400):
        old_params, old_body = wx.push(wx.text_xml(FAN, "查余额", 9003), timestamp=int(time.time()) + skew)
        assert (await post(url, old_body, params=old_params))[0] == 403, skew
    # the URL check: a (timestamp, nonce) is used once, the echo string is not signed
    query = wx.verify_query("echo-1")
    async with aiohttp.ClientSession() as session:
        for echo, expected in (("echo-1", 200), ("echo-1", 200), ("<script>", 403)):
            async with session.get(url, params={**query, "echostr": echo}) as resp:
                assert resp.status == expected, echo
    assert len(wx.sent) == 0 and await healthy(gw)


async def test_wechat_safe_mode_refuses_plaintext_and_replays(gateways, wx):
    gw = await gateways(**wechat_sections(wx, aes=True))
    url = f"{gw.base}/channels/wechat"
    # plaintext pushes, correctly signed, on a safe-mode account: encrypt_type dropped or changed
    params, body = wx.push(wx.text_xml(FAN, "查余额", 9101))
    for mode in (None, "raw", "AES", "none"):
        query = {**params, **({"encrypt_type": mode} if mode else {})}
        status, answer = await post(url, body, params=query)
        assert status == 403 and "encrypt_type" in answer, mode
    safe_params, safe_body = wx.push(wx.text_xml(FAN, "营业厅几点开门", 9102), safe=True)
    plain_under_safe = {**safe_params}
    del plain_under_safe["encrypt_type"]
    assert (await post(url, body, params=plain_under_safe))[0] == 403
    status, answer = await post(url, safe_body, params=safe_params)
    assert status == 200 and wx.reply_text(answer)
    assert await post(url, safe_body, params=safe_params) == (200, "success")  # re-delivered: answered once
    # the same timestamp and nonce with another ciphertext: the msg_signature does not match it
    other_params, other_body = wx.push(wx.text_xml(openid(79), "查余额", 9103), safe=True,
                                       timestamp=int(safe_params["timestamp"]), nonce=safe_params["nonce"])  # fmt: skip
    assert (await post(url, other_body, params=safe_params))[0] == 403
    # ...and even signed for it, the pair (timestamp, nonce) was used: refused
    assert (await post(url, other_body, params=other_params))[0] == 403
    assert (await post(url, safe_body, params={**safe_params, "msg_signature": "0" * 40}))[0] == 403
    assert len(wx.sent) == 0 and await healthy(gw)


# ---- Weibo -------------------------------------------------------------------------------------------------
@pytest.fixture
async def weibo():
    fake = FakeWeibo()
    await fake.start()
    yield fake
    await fake.stop()


async def test_weibo_nonce_is_used_once_and_timestamps_bound(gateways, weibo):
    gw = await gateways(weibo={"uid": str(weibo.uid), "app_secret": weibo.app_secret,
                               "access_token": weibo.access_token, "api_base_url": weibo.api_base})  # fmt: skip
    url = f"{gw.base}/channels/weibo"
    query = weibo.signed_query()
    body = json.dumps(weibo.text_push(WEIBO_FAN, "营业厅几点开门"), ensure_ascii=False).encode()
    status, answer = await post(url, body, params=query)
    assert status == 200 and weibo.parse_passive(answer)
    assert await post(url, body, params=query) == (200, "")  # re-delivered: answered once
    forged = json.dumps(weibo.text_push(WEIBO_FAN + 1, "查余额"), ensure_ascii=False).encode()
    assert (await post(url, forged, params=query))[0] == 403
    assert (await post(url, body, params=weibo.signed_query(forge=True)))[0] == 403
    now_ms = int(time.time() * 1000)
    for ts in (str(now_ms - 400_000), str(now_ms + 400_000), "NaN", "", "1.5e12"):
        stale = weibo.signed_query(timestamp=ts) if ts else {**weibo.signed_query(), "timestamp": ""}
        assert (await post(url, forged, params=stale))[0] == 403, ts
    for value in (b"\xff" * 40, "签".encode() * 20):
        target = "/channels/weibo?" + urlencode({**weibo.signed_query(), "signature": value.decode("latin-1")})
        assert (await raw_request(gw.base, "POST", target, [], forged))[0] == 403
    assert weibo.sent == [] and await healthy(gw)


# ---- Discourse ---------------------------------------------------------------------------------------------
async def test_discourse_signature_and_replays(gateways):
    discourse = FakeDiscourse(api_username="support")
    await discourse.start()
    try:
        gw = await gateways(forum={"discourse_url": discourse.base_url, "api_username": "support",
                                   "api_key": discourse.api_key, "webhook_secret": DISCOURSE_SECRET})  # fmt: skip
        url = f"{gw.base}/channels/forum/discourse"
        topic = discourse.add_topic("朝阳区网络问题", username="wang")
        post_ = discourse.new_post(topic["id"], "请问朝阳区最近是不是有网络故障？手机一直没信号", username="wang")
        headers, body = discourse.webhook_request("post_created", post_, secret=DISCOURSE_SECRET)
        assert (await post(url, body, headers))[0] == 200
        await eventually(lambda: discourse.replies_in(topic["id"]), timeout=5)
        # forged, missing, not ASCII
        for signature in ("sha256=" + "0" * 64, None):
            forged = {k: v for k, v in headers.items() if k != "X-Discourse-Event-Signature"}
            if signature:
                forged["X-Discourse-Event-Signature"] = signature
            assert (await post(url, body, forged))[0] == 403
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items() if k != "X-Discourse-Event-Signature"]
        for value in (b"sha256=\xff", "签名".encode()):
            status, _ = await raw_request(gw.base, "POST", "/channels/forum/discourse",
                                          [*raw_headers, (b"X-Discourse-Event-Signature", value)], body)  # fmt: skip
            assert status == 403
        # the same body under a new event id (the id is not signed): answered once
        for event_id in ("999001", "999002"):
            status, answer = await post(url, body, {**headers, "X-Discourse-Event-Id": event_id})
            assert status == 200 and json.loads(answer)["status"] == "duplicate"
        # a signed post older than the replay record's week: not answered
        old_topic = discourse.add_topic("旧帖子", username="li")
        week_ago = dtm.datetime.now(dtm.UTC) - dtm.timedelta(days=8)
        old = discourse.new_post(
            old_topic["id"], "请问朝阳区最近是不是有网络故障？", username="li", created_at=week_ago
        )
        headers, body = discourse.webhook_request("post_created", old, secret=DISCOURSE_SECRET)
        status, answer = await post(url, body, headers)
        assert status == 200 and json.loads(answer)["status"] == "ignored"
        await asyncio.sleep(0.5)
        assert len(discourse.replies_in(topic["id"])) == 1 and discourse.replies_in(old_topic["id"]) == []
        assert await healthy(gw)
    finally:
        await discourse.stop()
