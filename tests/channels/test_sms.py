"""SMS end to end: a signed provider webhook in, the provider's send API out (fakes of their HTTP APIs),
keywords, opt-out and broadcasts, duplicates, forged signatures, an outage across a restart, Twilio,
and a complaint that an agent answers by text."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp

from gateway import consent, redisconn
from gateway import sms_units as sms_sizes
from gateway.rkeys import deployment_keys
from tests.channels.conftest import eventually, http_sms_sections, metric

NUMBER = "13800138000"  # 张伟, demo data: balance 86.50
E164 = "+86" + NUMBER


async def text_in(gw: Any, fake: Any, body: str, message_id: str | None = None, from_: str = E164,
                  headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    raw, signed = fake.inbound_body(from_, "10658000", body, message_id)
    url = f"{gw.base}/channels/sms/webhook"
    async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers or signed) as resp:
        return resp.status, await resp.json()


async def test_keywords_and_questions_are_answered_by_text(gateways, http_sms):
    gw = await gateways(**http_sms_sections(http_sms))
    for body in ("YE", "ｙｅ。", "餘額"):  # a keyword, full-width with punctuation, traditional characters
        status, data = await text_in(gw, http_sms, body)
        assert status == 200 and data["status"] == "accepted" and data["duplicate"] is False
    sent = await http_sms.wait_messages(3)
    assert [m["to"] for m in sent] == [E164] * 3 and all(m["from"] == "10658000" for m in sent)
    assert all("86.50" in m["text"] for m in sent), [m["text"] for m in sent]
    await text_in(gw, http_sms, "我这个月的流量还剩多少")  # no keyword: the NLU
    usage = (await http_sms.wait_messages(4))[-1]["text"]
    assert "流量" in usage and "86.50" not in usage
    await text_in(gw, http_sms, "帮助")
    zh_help = (await http_sms.wait_messages(5))[-1]["text"]
    assert "YE查余额" in zh_help and "TD退订营销短信" in zh_help and "RG转人工" in zh_help
    await text_in(gw, http_sms, "help")
    en_help = (await http_sms.wait_messages(6))[-1]["text"]
    assert "BALANCE for balance" in en_help and "STOP for no marketing texts" in en_help
    for m in http_sms.messages:  # every reply fits the configured three parts
        assert sms_sizes.segments(m["text"]) <= 3 and m["segments"] <= 3


async def test_a_long_reply_is_shortened_by_its_template_not_cut_mid_word(gateways, http_sms):
    gw = await gateways(bots={"sms_max_parts": 1}, **http_sms_sections(http_sms))
    await text_in(gw, http_sms, "ZD")  # the bill: which month? (the options as numbered lines)
    question = (await http_sms.wait_messages(1))[-1]["text"]
    assert "\n1. " in question and sms_sizes.segments(question) == 1
    await text_in(gw, http_sms, "1")
    bill = (await http_sms.wait_messages(2))[-1]
    assert bill["segments"] == 1 and sms_sizes.segments(bill["text"]) == 1
    assert "账单" in bill["text"] and "元" in bill["text"]  # the short form still carries the amount


async def test_opt_out_is_kept_and_enforced_on_broadcasts(gateways, http_sms, agents, redis_url, key_prefix):
    gw = await gateways(**http_sms_sections(http_sms))
    await text_in(gw, http_sms, "TD")
    assert "已退订营销短信" in (await http_sms.wait_messages(1))[0]["text"]
    boss = agents(gw.base, "super1", "demo-super1")
    await boss.login()
    plain = agents(gw.base, "agent1", "demo-agent1")
    await plain.login()
    body = {"text": "流量月包半价，本周有效。", "numbers": [E164, "13800138001", "13800138001", "not a number"]}
    assert (await plain.raw("POST", "/api/sms/broadcast", body))[0] == 403  # supervisors only
    status, error = await boss.raw("POST", "/api/sms/broadcast", {**body, "text": "优惠" * 150})
    assert status == 400 and "SMS parts" in error["error"]
    status, counts = await boss.raw("POST", "/api/sms/broadcast", body)
    assert status == 200 and counts == {"queued": 1, "opted_out": 1, "duplicates": 0, "invalid": 1}
    sent = await http_sms.wait_messages(2)
    assert sent[1]["to"] == "+8613800138001" and sent[1]["text"] == "流量月包半价，本周有效。回TD退订"
    assert http_sms.sent_to(E164) == [sent[0]["text"]]  # nothing for the opted-out number
    # an opt-out that arrives after a broadcast was queued still stops it (checked at send time)
    http_sms.down = True
    assert (await boss.raw("POST", "/api/sms/broadcast", {"text": "Flash sale", "numbers": ["13800138001"],
                                                          "lang": "en"}))[1]["queued"] == 1  # fmt: skip
    await text_in(gw, http_sms, "STOP", from_="+8613800138001")
    http_sms.down = False
    await eventually(lambda: len(http_sms.sent_to("+8613800138001")) == 2, timeout=8)
    await eventually(lambda: metric(gw, 'outbox_queued_total{channel="sms"}'), timeout=2)
    texts = http_sms.sent_to("+8613800138001")
    assert "no longer receive marketing texts" in texts[1]
    client = redisconn.client(redis_url)
    keys = deployment_keys(key_prefix)  # opt-outs are consent records under the number's keyed hash
    assert not await client.exists(f"{key_prefix}sms:optout")  # no list of clear numbers
    assert (await consent.read(client, keys, NUMBER))["sms"]["source"] == "sms:TD"
    assert (await consent.read(client, keys, "13800138001"))["sms"]["source"] == "sms:STOP"
    await text_in(gw, http_sms, "DY")
    assert "恢复接收" in (await http_sms.wait_messages(4))[-1]["text"]
    assert (await consent.read(client, keys, NUMBER))["sms"]["granted"] is True
    assert (await consent.read(client, keys, "13800138001"))["sms"]["granted"] is False
    await client.aclose()


async def test_duplicates_forged_signatures_and_malformed_bodies(gateways, http_sms):
    gw = await gateways(**http_sms_sections(http_sms))
    first = await text_in(gw, http_sms, "YE", message_id="prov-1")
    again = await text_in(gw, http_sms, "YE", message_id="prov-1")
    assert first[1]["duplicate"] is False and again[1]["duplicate"] is True
    await http_sms.wait_messages(1)
    raw, headers = http_sms.inbound_body(E164, "10658000", "LL", "prov-2")
    async with aiohttp.ClientSession() as session:
        # the provider retries while the first delivery is still being handled: answered once
        async def post() -> int:
            async with session.post(f"{gw.base}/channels/sms/webhook", data=raw, headers=headers) as resp:
                return resp.status

        assert await asyncio.gather(post(), post()) == [200, 200]
        await http_sms.wait_messages(2)
        forged = {**headers, "X-Signature": "sha256=" + "0" * 64}
        for bad_headers, expected in ((forged, "does not match"), ({"Content-Type": "application/json"}, "missing")):
            async with session.post(f"{gw.base}/channels/sms/webhook", data=raw, headers=bad_headers) as resp:
                assert resp.status == 403 and expected in (await resp.json())["error"]
        now = int(time.time())
        for body, problem in ((b"{not json", "not valid JSON"), (b'{"from": "+8613800138000", "text": "YE"}', "id"),
                              (b'{"from": "call me", "text": "YE", "id": "x1", "timestamp": %d}' % now, "phone number"),
                              (b'{"from": "+8613800138000", "text": "  ", "id": "x2", "timestamp": %d}' % now,
                               "empty")):  # fmt: skip
            signed = {"X-Signature": http_sms.sign(body), "Content-Type": "application/json"}
            async with session.post(f"{gw.base}/channels/sms/webhook", data=body, headers=signed) as resp:
                error = (await resp.json())["error"]
                assert resp.status == 400 and re.search(rf"\b{problem}\b", error), (body, error)
    await asyncio.sleep(0.5)
    assert len(http_sms.messages) == 2  # one answer per message, whatever was retried


async def test_a_provider_outage_loses_nothing_even_across_a_restart(gateways, http_sms, agents):
    sections = http_sms_sections(http_sms)
    gw = await gateways(**sections)
    port = gw.port
    http_sms.down = True
    assert (await text_in(gw, http_sms, "YE"))[0] == 200  # accepted while the provider is down
    await eventually(lambda: metric(gw, 'outbox_retries_total{channel="sms"}'), timeout=5)
    assert http_sms.messages == []
    await gw.close()  # the gateway restarts while the text waits for the provider
    http_sms.down = False
    gw2 = await gateways(port=port, **sections)
    sent = await http_sms.wait_messages(1, timeout=8)
    assert "86.50" in sent[0]["text"] and len(http_sms.messages) == 1
    assert (await text_in(gw2, http_sms, "TD"))[0] == 200
    # a provider that refuses a text for good (400) does not block the next one to the same number
    http_sms.fail(1, status=400)
    await text_in(gw2, http_sms, "DY")
    await text_in(gw2, http_sms, "LL")
    await eventually(lambda: any("流量" in t for t in http_sms.sent_to(E164)), timeout=5)
    assert await metric(gw2, 'outbox_dead_total{channel="sms"}') == 1
    # supervisors see what was given up on, numbers masked; agents may not
    boss, plain = agents(gw2.base, "super1", "demo-super1"), agents(gw2.base)
    await boss.login()
    await plain.login()
    assert (await plain.raw("GET", "/api/outboxes"))[0] == 403
    view = (await boss.call("GET", "/api/outboxes"))["outboxes"]["sms"]
    assert view["dead"] == 1 and view["state"] == "ready (http)"
    (dead,) = view["dead_recent"]
    assert dead["to"] == "138****8000" and "HTTP 400" in dead["error"] and dead["tries"] == 1


async def test_delivery_receipts_are_recorded(gateways, http_sms, redis_url, key_prefix):
    gw = await gateways(**http_sms_sections(http_sms))
    await text_in(gw, http_sms, "YE")
    sent = (await http_sms.wait_messages(1))[0]
    assert sent["callback_url"] == f"{gw.base}/channels/sms/status"
    assert await http_sms.post_report(sent["id"], "DELIVRD") == 200
    client = redisconn.client(redis_url)
    record = await client.hgetall(f"{key_prefix}sms:receipt:{sent['id']}")
    await client.aclose()
    assert record[b"status"] == b"delivered" and record[b"kind"] == b"message"
    assert await metric(gw, 'sms_delivery_receipts_total{status="delivered"}') == 1
    body, headers = http_sms.report_body(sent["id"], "failed")
    headers["X-Signature"] = "sha256=" + "1" * 64
    url = f"{gw.base}/channels/sms/status"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        assert resp.status == 403


async def test_twilio_webhook_replies_and_status_callbacks(gateways, twilio, redis_url, key_prefix):
    gw = await gateways(sms={"provider": "twilio", "twilio_base_url": twilio.base_url, "source": "+15005550006",
                             "twilio_account_sid": twilio.account_sid, "twilio_auth_token": twilio.auth_token,
                             "per_number_interval": 0.05})  # fmt: skip
    url = f"{gw.base}/channels/sms/twilio"
    form, headers = twilio.inbound_form(url, E164, "+15005550006", "查一下余额")
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=form, headers=headers) as resp:
            assert resp.status == 200 and resp.content_type == "text/xml"
            assert "<Response></Response>" in await resp.text()
        forged = {**headers, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        async with session.post(url, data={**form, "MessageSid": "SMother"}, headers=forged) as resp:
            assert resp.status == 403 and "X-Twilio-Signature" in (await resp.json())["error"]
        async with session.post(url, data=json.dumps(form), headers={**headers, "Content-Type": "application/json"}
                                ) as resp:  # fmt: skip
            assert resp.status == 400
    sent = (await twilio.wait_messages(1))[0]
    assert sent["To"] == E164 and sent["From"] == "+15005550006" and "86.50" in sent["Body"]
    assert sent["StatusCallback"] == f"{gw.base}/channels/sms/twilio/status"
    assert await twilio.post_status_callback(sent["StatusCallback"], sent["sid"], "delivered") == 204
    client = redisconn.client(redis_url)
    assert await client.hget(f"{key_prefix}sms:receipt:{sent['sid']}", "status") == b"delivered"
    await client.aclose()
    assert len(twilio.messages) == 1  # the forged request was not answered


async def test_a_complaint_by_text_reaches_an_agent_whose_reply_comes_back_by_text(gateways, http_sms, agents):
    from handoff.config import load_handoff_config

    gw = await gateways(handoff=load_handoff_config().replace(push=False), **http_sms_sections(http_sms))
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    await text_in(gw, http_sms, "我要投诉，家里的网络信号太差了，天天掉线")
    ack = (await http_sms.wait_messages(1))[0]["text"]
    assert "投诉" in ack and re.search(r"[A-Z]*\d{6,}", ack), ack  # the ticket number
    queue = await agent.call("GET", "/api/queue")
    chat = next(c for c in queue["chats"] if c["channel"] == "sms")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")
    await agent.call(
        "POST", f"/api/chats/{chat['id']}/messages", {"text": "您好，我是客服王小明，已为您查看基站情况。"}
    )
    await eventually(lambda: any("王小明" in t for t in http_sms.sent_to(E164)), timeout=5)
    await text_in(gw, http_sms, "好的，谢谢")  # the customer answers by text: it reaches the agent, not the bot
    frame = await agent.expect(lambda f: f.get("type") == "message" and f["entry"]["kind"] == "customer")
    assert frame["chat"] == chat["id"] and frame["entry"]["text"] == "好的，谢谢"
    await asyncio.sleep(0.3)
    assert not any("谢谢" in t or "没太明白" in t for t in http_sms.sent_to(E164)[2:])  # the bot kept quiet


def test_numbers_are_ascii_digits_after_width_folding():
    import pytest

    from gateway.channels.sms import normalise_number
    from gateway.errors import BadRequest

    assert normalise_number("１３８００１３８０００", "86") == "13800138000"  # full-width, as a phone keyboard may send
    assert normalise_number("+86 138-0013-8000", "86") == "13800138000"
    for bad in ("١٣٨٠٠١٣٨٠٠٠", "१३८००१३८०००", "138001380你"):  # other scripts' digits never reach a provider
        with pytest.raises(BadRequest):
            normalise_number(bad, "86")
