"""Rasa as the bot against a local fake of a Rasa server's REST channel and tracker API (Rasa's wire format; the
real server: test_rasa_real.py): turns on REST, Telegram and SMS with buttons, images and custom payloads, a
handoff to an agent over the console API and back (survey, then ``/restart`` for Rasa), Rasa down or slow."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bots.rasa_bot import APOLOGY, RESTART_FIELD, RasaBot, RasaConfig, render
from gateway.app import create_app
from gateway.keys import PIPELINE, RKEYS
from gateway.settings import BotSettings
from tests.bots.fake_rasa import BALANCE, GREET, HANDOFF, IMAGE, FakeRasa
from tests.bots.rasa_support import agent_clients, post, rasa_gateways, rest, telegram_ready, texts
from tests.channels.conftest import SMS_SECRET, TG_SECRET, eventually, http_sms_sections, telegram_sections
from tests.channels.fake_sms import FakeHttpSms
from tests.channels.fake_telegram import FakeTelegram


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """Requested before ``gateway``: stopped after it (a gateway stopping against a dead Bot API waits)."""
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sms() -> AsyncIterator[FakeHttpSms]:
    fake = FakeHttpSms(webhook_secret=SMS_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def gateway(make_settings: Any, nlu_engine: Any) -> AsyncIterator[Callable[..., Any]]:
    async with rasa_gateways(make_settings, nlu_engine) as make:
        yield make


@pytest.fixture
async def agents() -> AsyncIterator[Callable[..., Any]]:
    async with agent_clients() as make:
        yield make


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    fake = FakeRasa()
    await fake.start()
    yield fake
    await fake.stop()


async def test_a_rest_turn_shows_rasas_text_buttons_and_images(gateway, rasa):
    gw = await gateway(RasaConfig(rasa.base_url))
    greeting = await rest(gw, "rest-1", "你好")
    assert greeting[0]["text"] == GREET + "\n官网: https://example.com"  # a link button is a line with its URL
    assert greeting[0]["buttons"] == [{"title": "查话费", "payload": "/query_balance"},
                                      {"title": "转人工", "payload": "/human_handoff"}]  # fmt: skip
    ((sender, message, metadata),) = rasa.received
    assert message == "你好" and metadata == {"channel": "rest", "lang": "zh", "public": False}
    assert sender != "rest-1" and len(sender) == 32  # the gateway's conversation id, never the channel's sender
    balance = await rest(gw, "rest-1", "/query_balance")  # the button's payload goes to Rasa as it is
    assert texts(balance) == [BALANCE, IMAGE]  # an image is a link
    assert rasa.messages(sender) == ["你好", "/query_balance"]
    shown = await rest(gw, "rest-1", "图表")  # custom payloads: a text is shown, a chart is not; a video as a link
    assert texts(shown) == ["自定义文字", "https://example.com/v.mp4"]
    assert shown[0]["buttons"] == [{"title": "好", "payload": "/affirm"}]


async def test_telegram_gets_rasas_buttons_as_a_keyboard_and_sms_picks_one_by_number(telegram, sms, gateway, rasa):
    gw = await gateway(RasaConfig(rasa.base_url), **telegram_sections(telegram), **http_sms_sections(sms))
    await eventually(lambda: telegram_ready(gw), timeout=5)  # PTB has reached the Bot API
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    update = telegram.text_update(1, 4242, "你好", language_code="zh-hans")
    await post(gw, "/channels/telegram/webhook", json=update, headers=secret)
    (sent,) = await telegram.wait_for("sendMessage", 1, chat_id=4242)
    assert sent["text"].startswith(GREET)
    keyboard = [(b["text"], b["callback_data"]) for row in sent["reply_markup"]["inline_keyboard"] for b in row]
    assert keyboard == [("查话费", "/query_balance"), ("转人工", "/human_handoff")]
    press = telegram.callback_update(2, 4242, "/query_balance", language_code="zh-hans")
    await post(gw, "/channels/telegram/webhook", json=press, headers=secret)
    answers = await telegram.wait_for("sendMessage", 3, chat_id=4242)
    assert [a["text"] for a in answers[1:]] == [BALANCE, IMAGE]
    # SMS: the buttons are numbered lines; "1" is the first one's payload for Rasa
    for n, body in enumerate(("你好", "1")):
        raw, signed = sms.inbound_body("+8613800138000", "10658000", body, f"sms-{n}")
        await post(gw, "/channels/sms/webhook", data=raw, headers=signed)
        await sms.wait_messages(n + 1)
    menu, balance = sms.sent_to("+8613800138000")
    assert GREET in menu and "1. 查话费" in menu
    assert BALANCE in balance
    sender = next(s for s, m, meta in rasa.received if meta.get("channel") == "sms")
    assert rasa.messages(sender) == ["你好", "/query_balance"]


async def test_rasas_handoff_payload_reaches_an_agent_and_rasa_restarts_afterwards(gateway, rasa, agents, redis_client):
    gw = await gateway(RasaConfig(rasa.base_url))
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    handed = await rest(gw, "rest-h", "转人工")
    assert handed[0]["text"] == HANDOFF and len(handed) == 2  # Rasa's words, then the queue's (an agent comes)
    assigned = await agent.expect(lambda f: f["type"] == "assigned")
    chat_id = assigned["chat"]["id"]
    assert set(assigned["chat"]["skills"]) >= {"zh", "network"}  # Rasa's skill routes the chat
    sender = rasa.received[0][0]
    assert sender == chat_id  # the chat is the conversation Rasa knew
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，我是王小明。"})
    while_human = await rest(gw, "rest-h", "我的网络很慢")
    assert any("王小明" in t for t in texts(while_human))  # the agent's message, delivered with the next reply
    assert rasa.messages(sender) == ["转人工"]  # Rasa heard nothing while a person had the conversation
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    survey = await rest(gw, "rest-h", "满意")  # the gateway's survey, not Rasa
    assert any("意见或建议" in t for t in texts(survey))
    assert any("感谢您的反馈" in t for t in texts(await rest(gw, "rest-h", "很好")))
    assert rasa.messages(sender) == ["转人工"]
    state_key = gw.app[RKEYS].sender("rest", "rest-h")  # the sender's hash, as the gateway names it
    assert await redis_client.hget(state_key, RESTART_FIELD) == sender.encode()
    back = await rest(gw, "rest-h", "你好")
    assert back[0]["text"].startswith(GREET)
    assert rasa.messages(sender) == ["转人工", "/restart", "你好"]  # a clean tracker, then the customer
    assert await redis_client.hget(state_key, RESTART_FIELD) is None
    transcript = (await agent.call("GET", f"/api/chats/{chat_id}"))["transcript"]
    assert [e["reason"] for e in transcript if e.get("event") == "handoff"] == ["request_human"]
    assert any(e["kind"] == "bot" and e["text"] == HANDOFF for e in transcript)  # the agent reads Rasa's turns


async def test_the_handoff_intent_read_from_rasas_tracker(gateway, rasa, agents):
    gw = await gateway(RasaConfig(rasa.base_url, handoff_payload="", handoff_intent="human_handoff"))
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    assert texts(await rest(gw, "rest-i", "你好"))[0].startswith(GREET)  # greet: no handoff
    handed = await rest(gw, "rest-i", "找人工")  # Rasa's answer has no payload; its intent is human_handoff
    assert handed[0]["text"] == HANDOFF and len(handed) == 2
    await agent.expect(lambda f: f["type"] == "assigned")
    assert rasa.tracker_calls == 2
    by_action = await gateway(RasaConfig(rasa.base_url, handoff_payload="", handoff_action="utter_handoff_plain"))
    assert len(await rest(by_action, "rest-a", "找人工")) == 2


async def test_rasa_down_or_slow_gets_an_apology_and_the_agent_button_still_works(gateway, rasa, agents):
    gw = await gateway(RasaConfig(rasa.base_url, timeout=1.0), pipeline={"reply_deadline": 3.0})
    rasa.down = True
    (sorry,) = await rest(gw, "rest-d", "我要查话费")
    assert sorry["text"] == APOLOGY["zh"] and sorry["buttons"] == [{"title": "转人工客服", "payload": "/request_human"}]
    (sorry_en,) = await rest(gw, "rest-e", "what is my balance please")
    assert sorry_en["text"] == APOLOGY["en"]
    rasa.down, rasa.delay = False, 2.0  # slower than rasa_timeout
    (slow,) = await rest(gw, "rest-d", "还在吗")
    assert slow["text"] == APOLOGY["zh"]
    rasa.delay = 0.0
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    handed = await rest(gw, "rest-d", "/request_human")  # the apology's button: the gateway hands over itself
    assert len(handed) == 1 and "人工客服" in handed[0]["text"]
    chat_id = (await agent.expect(lambda f: f["type"] == "assigned"))["chat"]["id"]
    transcript = (await agent.call("GET", f"/api/chats/{chat_id}"))["transcript"]
    said = [e["text"] for e in transcript if e["kind"] == "customer"]
    assert said[:2] == ["我要查话费", "还在吗"]  # nothing lost: the agent reads what Rasa never answered
    assert sum(1 for e in transcript if e.get("event") == "rasa_unavailable") == 2
    assert rasa.messages() == ["我要查话费", "what is my balance please", "还在吗"]


def test_render_reads_rasas_response_shapes():
    handoff = {"handoff": True, "complaint_type": "business", "reason": "complaint"}
    out = render([{"recipient_id": "x", "text": "a", "quick_replies": [{"title": "Y", "payload": "/affirm"}]},
                  {"recipient_id": "x", "custom": handoff},
                  {"recipient_id": "x", "image": {"payload": {"src": "https://e.x/i.png"}}},
                  {"recipient_id": "x", "custom": {}}, "junk"],  # type: ignore[list-item]
                 "handoff")  # fmt: skip
    assert [(r.text, [b.payload for b in r.buttons]) for r in out.replies] == [
        ("a", ["/affirm"]),
        ("https://e.x/i.png", []),
    ]
    assert out.handover is not None and out.handover.complaint_type == "business"
    assert out.handover.reason == "complaint"
    assert render([{"custom": {"handoff": True}}], "").handover is None  # handoff payloads switched off


@pytest.mark.skipif("engine" not in {f.name for f in dataclasses.fields(BotSettings)},
                    reason="the bots.engine settings (gateway/settings.py hunk) are not merged yet")  # fmt: skip
async def test_settings_choose_the_engine(make_settings, nlu_engine, aiohttp_client, rasa):
    from gateway.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"bots\.rasa_url"):
        load_settings(env={}, bots={"engine": "rasa"})
    with pytest.raises(SettingsError, match=r"bots\.engine"):
        load_settings(env={}, bots={"engine": "dialogflow"})
    settings = make_settings(bots={"engine": "rasa", "rasa_url": rasa.base_url, "rasa_resume_message": ""})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    bot = client.app[PIPELINE].bot
    assert isinstance(bot, RasaBot) and bot.config.resume_message == "" and bot.config.url == rasa.base_url
    resp = await client.post("/webhooks/rest/webhook", json={"sender": "s", "message": "你好"})
    assert (await resp.json())[0]["text"].startswith(GREET)
