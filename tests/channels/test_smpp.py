"""SMPP 3.4 end to end against an SMSC simulator that speaks real PDUs over TCP: the gateway binds as a
transceiver, answers deliver_sm (long messages reassembled), submits replies (split with a UDH),
keeps the bind alive, re-binds after a drop without losing what was queued, and records receipts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway import redisconn
from gateway import sms_units as sms_sizes
from gateway.channels.smpp import SmppLink, _Submit
from gateway.outbox import PermanentFailure
from gateway.settings import SmsSettings
from tests.channels.conftest import eventually

NUMBER = "13800138000"


def smpp_sections(smsc: Any, **sms: Any) -> dict[str, Any]:
    return {"sms": {"provider": "smpp", "smpp_host": "127.0.0.1", "smpp_port": smsc.port, "smpp_system_id": "gateway",
                    "smpp_password": "smpp-pw", "smpp_enquire_interval": 0.3, "smpp_rebind_max": 0.4,
                    "smpp_submit_timeout": 2.0, "per_number_interval": 0.05, "backoff_base": 0.2, **sms}}  # fmt: skip


async def test_keyword_in_reply_out_and_a_long_message_in_two_parts(gateways, smsc, redis_url, key_prefix):
    await gateways(**smpp_sections(smsc))
    await smsc.wait_bound()
    assert smsc.bind_attempts[-1][1:3] == ("gateway", "smpp-pw")
    assert await smsc.deliver(NUMBER, "10658000", "YE") == [0]
    await smsc.wait_submitted(1)
    assert "86.50" in smsc.messages_to(NUMBER)[0]
    first = smsc.submitted[0]
    assert first.source == "10658000" and first.registered_delivery == 1 and first.data_coding == 8
    # a long Chinese question in two parts, the second first: reassembled, answered once
    question = ("你好，我想问一下我这个月的流量还剩多少？最近总是感觉流量用得特别快，"
                "是不是有什么业务在偷偷扣流量，我没有开通过任何增值业务，麻烦帮我仔细查一查，谢谢你们。")  # fmt: skip
    assert len(question) > 70
    assert await smsc.deliver(NUMBER, "10658000", question, parts=2, order=[2, 1]) == [0, 0]
    await eventually(lambda: len(smsc.messages_to(NUMBER)) == 2, timeout=5)
    usage = smsc.messages_to(NUMBER)[1]
    assert "流量" in usage
    # the same with sar_* TLVs instead of a UDH
    assert await smsc.deliver("13800138003", "10658000", "How much data do I have left this month? " * 4,
                              parts=2, use_tlv=True) == [0, 0]  # fmt: skip
    await eventually(lambda: smsc.messages_to("13800138003"), timeout=5)
    # a reply longer than one SMS goes in parts with a concatenation UDH: 67 UCS-2 units or 153 GSM septets each
    long_parts = [s for s in smsc.submitted if s.udh]
    assert long_parts and {p.data_coding for p in long_parts} == {0, 8}  # Chinese UCS-2, English GSM-7
    for part in long_parts:
        assert part.esm_class & 0x40 and len(part.payload) <= (134 if part.data_coding == 8 else 153)
    # a delivery receipt updates the send's record
    assert await smsc.receipt(first.message_id, "DELIVRD") == 0
    client = redisconn.client(redis_url)
    await eventually(lambda: client.hget(f"{key_prefix}sms:receipt:{first.message_id}", "status"))
    assert await client.hget(f"{key_prefix}sms:receipt:{first.message_id}", "status") == b"delivered"
    await client.aclose()
    await eventually(lambda: smsc.enquire_links >= 1, timeout=3)  # the bind is kept alive when idle


async def test_a_redelivered_deliver_sm_is_answered_once(gateways, smsc):
    await gateways(**smpp_sections(smsc))
    await smsc.wait_bound()
    await smsc.deliver(NUMBER, "10658000", "LL")
    await smsc.deliver(NUMBER, "10658000", "LL")  # the SMSC did not see our resp and delivered again
    await smsc.wait_submitted(1)
    await asyncio.sleep(0.5)
    assert len(smsc.messages_to(NUMBER)) == 1


async def test_drops_and_refusals_lose_no_queued_text(gateways, smsc, agents):
    gw = await gateways(**smpp_sections(smsc))
    await smsc.wait_bound()
    binds = smsc.binds
    smsc.refuse_binds = True
    await smsc.drop()  # the link goes down and cannot come back for a while
    boss = agents(gw.base, "super1", "demo-super1")
    await boss.login()
    counts = await boss.call("POST", "/api/sms/broadcast", {"text": "本周流量包半价", "numbers": ["13800138002"]})
    assert counts["queued"] == 1
    await asyncio.sleep(1.0)
    assert smsc.messages_to("13800138002") == []  # nothing could be sent…
    smsc.refuse_binds = False
    await eventually(lambda: smsc.binds > binds, timeout=5)  # …the gateway re-binds by itself…
    await eventually(lambda: smsc.messages_to("13800138002"), timeout=5)  # …and sends what waited
    assert smsc.messages_to("13800138002") == ["本周流量包半价回TD退订"]
    # a temporary error status from the SMSC is retried; the text goes once it is accepted
    smsc.fail_submits = 1
    smsc.throttle_submits = 1
    await smsc.deliver(NUMBER, "10658000", "YE")
    await eventually(lambda: smsc.messages_to(NUMBER), timeout=8)
    assert len(smsc.rejected_submits) == 2 and len(smsc.messages_to(NUMBER)) == 1
    assert sms_sizes.segments(smsc.messages_to(NUMBER)[0]) <= 3


ARABIC_INDIC = "١٣٨٠٠١٣٨٠٠٢"  # digits to Python's \d (so the SMS channel takes it for a number), not to latin-1


async def test_a_destination_in_another_script_is_refused_at_the_edge_and_the_link_stays(gateways, smsc, agents):
    gw = await gateways(**smpp_sections(smsc))
    await smsc.wait_bound()
    boss = agents(gw.base, "super1", "demo-super1")
    await boss.login()
    counts = await boss.call("POST", "/api/sms/broadcast", {"text": "本周流量包半价",
                                                            "numbers": [ARABIC_INDIC, "13800138002"]})  # fmt: skip
    # refused at the edge (digits of another script are not a number), so it never reaches the SMSC link
    assert counts["queued"] == 1 and counts["invalid"] == 1
    await eventually(lambda: smsc.messages_to("13800138002"), timeout=5)
    await smsc.deliver("13800138000", "10658000", "YE")  # the link is there for everyone else
    await eventually(lambda: smsc.messages_to("13800138000"), timeout=5)
    assert smsc.binds == 1 and len(smsc.submitted) == 2
    dead = (await boss.call("GET", "/api/outboxes"))["outboxes"]["sms"]["dead_recent"]
    assert dead == []


async def test_a_submit_the_link_cannot_encode_fails_alone(smsc):
    """``submit`` refuses what is not digits (a leading '+' allowed, 20 at most) before it reaches the thread; a
    job that gets there all the same and that smpplib cannot encode fails alone — the bind stays."""
    link = SmppLink(SmsSettings(provider="smpp", smpp_host="127.0.0.1", smpp_port=smsc.port,
                                smpp_system_id="gateway", smpp_password="smpp-pw", smpp_rebind_max=0.4,
                                smpp_submit_timeout=2.0))  # fmt: skip
    link.start()
    try:
        await smsc.wait_bound()
        await eventually(link.bound.is_set)
        for dest in (
            ARABIC_INDIC,
            "中国移动",
            "+86 138 0013 8000",
            "138-0013-8000",
            "1" * 21,
            "",
            "+",
            "13800138000\n",
        ):
            with pytest.raises(PermanentFailure, match="SMPP"):
                await link.submit(dest, "hi")
        loop = asyncio.get_running_loop()
        job = _Submit("中国移动", 0, [b"hi"], 0, loop.create_future(), loop)  # past the check, as a bug might let it
        link._out.put(job)
        link._wake()
        with pytest.raises(PermanentFailure, match="encode"):
            await asyncio.wait_for(job.future, 3)
        assert len(await link.submit("+8613800138000", "still bound")) == 1
        assert len(await link.submit("1" * 20, "twenty digits fit")) == 1
        assert smsc.binds == 1 and link.binds == 1 and link.bound.is_set()
        assert [s.dest for s in smsc.submitted] == ["8613800138000", "1" * 20]
    finally:
        await asyncio.to_thread(link.stop)
