"""Proactive broadcast to the affected districts' customers on three channels, through the providers' local fakes:
the back end's customers of the district by SMS (``TD`` honoured), the WeChat followers bound to their numbers by
template message (an unsubscribed one skipped), the Telegram chats bound to them (a blocked bot counted as failed);
sent / failed / opted out per channel, as the outboxes report them; a second approval counted over every channel;
a channel that cannot broadcast, or a back end away, refused with 503; a restart in the middle resumes each
channel from its cursor, nothing sent twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bots.identity import Binder
from gateway.channels.sms import SMS_CHANNEL
from gateway.rkeys import deployment_keys
from tests.channels.conftest import eventually, free_port, http_sms_sections, telegram_sections
from tests.channels.fake_wechat import openid
from tests.channels.test_sms import text_in
from tests.channels.test_wechat import wechat_sections
from tests.incidents.conftest import open_incident, supervisor
from tests.incidents.wechat_templates import FakeWeChatTemplates

TEMPLATE = "TPL-fault-notice"
CHAOYANG_PHONES = ["13800138000", "13800138003", "13800138009", "13800138010", "13800138012"]  # demo back end


@pytest.fixture
async def wx() -> AsyncIterator[FakeWeChatTemplates]:
    fake = FakeWeChatTemplates(templates=(TEMPLATE,))
    await fake.start()
    yield fake
    await fake.stop()


async def _bind(redis_client: Any, key_prefix: str, channel: str, account: str, phone: str) -> None:
    """An account bound to a number by the one-time-code binding itself (``bots/identity.py``)."""
    binder = Binder(redis_client, deployment_keys(key_prefix), binding_ttl=3600)
    code = await binder.issue(channel, account, phone)
    assert code is not None and (await binder.verify(channel, account, code)).status == "ok"


async def _done(boss: Any, incident_id: str) -> dict[str, Any] | None:
    found = (await boss.call("GET", f"/api/incidents/{incident_id}"))["broadcasts"]
    return found[0] if found and found[0]["state"] == "done" else None


async def _ended(boss: Any, incident_id: str, expected: int) -> dict[str, Any] | None:
    b = await _done(boss, incident_id)
    return b if b is not None and b["sent"] + b["failed"] + b["opted_out"] >= expected else None


async def test_the_districts_customers_on_sms_wechat_and_telegram(
    gateways, http_sms, telegram_api, wx, people, incidents_config, redis_client, key_prefix
):
    incidents_config(wechat_template_id=TEMPLATE)
    gw = await gateways(**http_sms_sections(http_sms), **telegram_sections(telegram_api), **wechat_sections(wx))
    await text_in(gw, http_sms, "TD")  # 13800138000 opts out of texts
    await http_sms.wait_messages(1)
    fan, gone, elsewhere = openid(1), openid(2), openid(3)
    await _bind(redis_client, key_prefix, "wechat", fan, "13800138003")
    await _bind(redis_client, key_prefix, "wechat", gone, "13800138009")
    await _bind(redis_client, key_prefix, "wechat", elsewhere, "13800138001")  # 海淀区: not affected
    await redis_client.set(deployment_keys(key_prefix).wechat_unsubscribed(gone), "1")  # unfollowed the account
    await _bind(redis_client, key_prefix, "telegram", "5001", "13800138010")
    await _bind(redis_client, key_prefix, "telegram", "5002", "13800138012")
    telegram_api.fail("sendMessage", 1, 403, description="Forbidden: bot was blocked by the user")
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, eta=1893456000)
    body = {"channels": ["sms", "wechat", "telegram"], "lang": "zh"}
    made = (await boss.call("POST", f"/api/incidents/{incident['id']}/broadcasts", body, status=201))["broadcast"]
    assert made["state"] == "sending" and made["source"] == "districts"
    assert {c: p["total"] for c, p in made["channels"].items()} == {"sms": 5, "wechat": 2, "telegram": 2}
    done = await eventually(lambda: _done(boss, incident["id"]), timeout=15)
    per = {c: (p["queued"], p["opted_out"]) for c, p in done["channels"].items()}
    assert per == {"sms": (4, 1), "wechat": (1, 1), "telegram": (2, 0)} and done["progress"] == 1.0
    texts = await http_sms.wait_messages(5)
    assert sorted(m["to"] for m in texts[1:]) == sorted(f"+86{p}" for p in CHAOYANG_PHONES[1:])
    assert all("故障通知" in m["text"] for m in texts[1:])
    await eventually(lambda: wx.template_sent, timeout=5)
    [template] = wx.template_sent
    assert template["touser"] == fan and template["template_id"] == TEMPLATE
    assert "故障通知" in template["data"]["first"]["value"] and template["data"]["keyword1"]["value"] == "朝阳区"
    assert template["data"]["keyword2"]["value"].startswith("2030-01-01") and wx.sent == []  # no custom message
    await telegram_api.wait_for("sendMessage", 2, timeout=5, include_failed=True)
    [sent] = telegram_api.sent()
    assert sent["chat_id"] in (5001, 5002) and "故障通知" in sent["text"]
    if not hasattr(gw.app[SMS_CHANNEL].outbox, "observers"):
        pytest.skip("sent/failed per channel need the outboxes' observers (gateway/outbox.py)")
    done = await eventually(lambda: _ended(boss, incident["id"], 9), timeout=10)
    per = {c: (p["sent"], p["failed"]) for c, p in done["channels"].items()}
    assert per == {"sms": (4, 0), "wechat": (1, 0), "telegram": (1, 1)} and done["delivered"] == 1.0
    review = await boss.call("GET", f"/api/incidents/{incident['id']}/review")
    assert review["broadcasts_by_channel"]["telegram"]["failed"] == 1 and review["broadcasts"]["sent"] == 6


async def test_approval_counts_every_channel_and_a_channel_off_is_refused(
    gateways, http_sms, telegram_api, people, incidents_config, redis_client, key_prefix
):
    incidents_config(second_approval_over=5)  # no WeChat template: no WeChat broadcast
    gw = await gateways(**http_sms_sections(http_sms), **telegram_sections(telegram_api))
    await _bind(redis_client, key_prefix, "telegram", "5001", "13800138010")
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    path = f"/api/incidents/{incident['id']}/broadcasts"
    status, refused = await boss.raw("POST", path, {"channels": ["sms", "wechat"]})
    assert status == 503 and "wechat" in refused["error"] and refused["error_zh"]
    status, refused = await boss.raw("POST", path, {"channels": ["fax"]})
    assert status == 400 and "channels" in refused["error"]
    made = (await boss.call("POST", path, {"channels": ["sms", "telegram"]}, status=201))["broadcast"]
    assert made["total"] == 6 and made["state"] == "awaiting_approval"  # 5 numbers + 1 chat > 5
    assert http_sms.messages == [] and telegram_api.sent() == []


async def test_a_back_end_away_is_a_503_naming_it(gateways, http_sms, people, incidents_config):
    incidents_config()
    dead = {"backend": "http", "backend_url": f"http://127.0.0.1:{free_port()}", "backend_retries": 0}
    gw = await gateways(**http_sms_sections(http_sms), bots=dead)
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    status, body = await boss.raw("POST", f"/api/incidents/{incident['id']}/broadcasts", {"channels": ["sms"]})
    assert status == 503 and "back end" in body["error"] and body["error_zh"]
    numbers = {"numbers": ["13800138001"]}  # numbers given: no back end needed
    assert (await boss.call("POST", f"/api/incidents/{incident['id']}/broadcasts", numbers, status=201))["broadcast"]


async def test_telegram_resumes_after_a_restart_without_sending_twice(
    gateways, telegram_api, people, incidents_config, redis_client, key_prefix
):
    incidents_config(per_channel={"telegram": 1})  # one chat a second: the restart comes in the middle
    chats = ["5001", "5002", "5003", "5004", "5005"]
    for chat, phone in zip(chats, CHAOYANG_PHONES, strict=True):
        await _bind(redis_client, key_prefix, "telegram", chat, phone)
    sections = telegram_sections(telegram_api)
    gw = await gateways(**sections)
    port = gw.port
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    path = f"/api/incidents/{incident['id']}/broadcasts"
    await boss.call("POST", path, {"channels": ["telegram"]}, status=201)
    await telegram_api.wait_for("sendMessage", 2, timeout=10)
    await gw.close()
    assert len(telegram_api.sent()) < len(chats)
    gw2 = await gateways(port=port, **sections)
    boss2 = await supervisor(people, gw2.base)
    done = await eventually(lambda: _done(boss2, incident["id"]), timeout=20)
    assert done["channels"]["telegram"]["queued"] + done["channels"]["telegram"]["duplicates"] == len(chats)
    await telegram_api.wait_for("sendMessage", len(chats), timeout=10)
    assert sorted(p["chat_id"] for p in telegram_api.sent()) == [int(c) for c in chats]  # each once
