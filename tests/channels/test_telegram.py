"""Telegram end to end: python-telegram-bot inside the gateway, updates posted to its webhook the way
Telegram posts them, replies read off a local fake of the Bot API (Telegram's JSON wire format)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp

from handoff.config import load_handoff_config
from tests.channels.conftest import TG_SECRET, eventually, metric, telegram_sections

CHAT = 424242


async def post(gw: Any, update: dict[str, Any], secret: str | None = TG_SECRET) -> tuple[int, Any]:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    url = f"{gw.base}/channels/telegram/webhook"
    async with aiohttp.ClientSession() as session, session.post(url, json=update, headers=headers) as resp:
        return resp.status, await resp.json()


class Chat:
    """One Telegram user talking to the bot: updates in, the bot's messages out."""

    def __init__(self, gw: Any, api: Any, chat_id: int = CHAT, lang: str = "zh-hans") -> None:
        self.gw, self.api, self.chat_id, self.lang = gw, api, chat_id, lang
        self.update_id = chat_id * 1000

    async def say(self, text: str, expect: int = 1) -> list[dict[str, Any]]:
        before = len(self.api.sent(self.chat_id))
        self.update_id += 1
        status, body = await post(self.gw, self.api.text_update(self.update_id, self.chat_id, text,
                                                                 language_code=self.lang))  # fmt: skip
        assert status == 200 and body == {"ok": True}, body
        if not expect:
            return []
        await self.api.wait_for("sendMessage", before + expect, chat_id=self.chat_id)
        return self.api.sent(self.chat_id)[before:]

    async def press(self, data: str, expect: int = 1) -> list[dict[str, Any]]:
        before = len(self.api.sent(self.chat_id))
        self.update_id += 1
        status, _ = await post(self.gw, self.api.callback_update(self.update_id, self.chat_id, data,
                                                                 language_code=self.lang))  # fmt: skip
        assert status == 200
        await self.api.wait_for("sendMessage", before + expect, chat_id=self.chat_id)
        return self.api.sent(self.chat_id)[before:]


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


async def test_start_binding_and_a_self_service_question(gateways, telegram_api, caplog):
    gw = await gateways(**telegram_sections(telegram_api))
    me = Chat(gw, telegram_api)
    welcome = (await me.say("/start"))[0]
    assert "智能客服" in welcome["text"] and "/human" in welcome["text"]
    assert buttons(welcome) == [("查话费余额", "/query_balance"), ("查流量", "/query_data_usage"),
                                ("查账单", "/query_bill"), ("转人工客服", "/request_human")]  # fmt: skip
    english = Chat(gw, telegram_api, chat_id=777, lang="en")
    assert "customer-service assistant" in (await english.say("/start"))[0]["text"]
    # an account question: the Telegram user proves the number with a one-time code sent by SMS
    ask = (await me.say("/bind"))[0]["text"]
    assert "手机号" in ask
    sent = (await me.say("13800138000"))[0]["text"]
    assert "138****8000" in sent
    code = await eventually(lambda: _code(caplog), timeout=5)
    bound = (await me.say(code))[0]["text"]
    assert "绑定" in bound
    balance = (await me.say("我还有多少话费"))[0]["text"]
    assert "86.50" in balance
    # a quick reply: the button's callback query is answered and its request handled
    usage = (await me.press("/query_data_usage"))[0]["text"]
    assert "流量" in usage
    await telegram_api.wait_for("answerCallbackQuery")
    # /unbind works like the words
    assert "解除" in (await me.say("/unbind"))[0]["text"]


def _code(caplog: Any) -> str | None:
    texts = [r.getMessage() for r in caplog.records if r.name == "gateway.sms"]
    found = re.search(r"(\d{6})", texts[-1]) if texts else None
    return found.group(1) if found else None


async def test_media_duplicates_forged_and_malformed_updates(gateways, telegram_api):
    gw = await gateways(**telegram_sections(telegram_api))
    me = Chat(gw, telegram_api)
    for update in (telegram_api.photo_update(1, CHAT), telegram_api.sticker_update(2, CHAT)):
        assert (await post(gw, update))[0] == 200
    replies = await telegram_api.wait_for("sendMessage", 2, chat_id=CHAT)
    assert "暂时无法识别图片" in replies[0]["text"] and "表情" in replies[1]["text"]
    update = telegram_api.text_update(3, CHAT, "查一下流量")
    statuses = await asyncio.gather(post(gw, update), post(gw, update))  # Telegram retried while we worked
    assert [s for s, _ in statuses] == [200, 200]
    assert (await post(gw, update))[0] == 200  # and once more, later
    await telegram_api.wait_for("sendMessage", 3, chat_id=CHAT)
    for secret, problem in (("wrong", "Secret-Token"), (None, "Secret-Token")):
        status, body = await post(gw, telegram_api.text_update(4, CHAT, "查余额"), secret=secret)
        assert status == 403 and problem in body["error"]
    async with aiohttp.ClientSession() as session:
        headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        # an update we cannot use is answered 200 (else Telegram delivers it again and again), and not handled
        for raw, problem in ((b"{not json", "not valid JSON"), (b'{"message": {}}', "message"),
                             (b'{"update_id": "7"}', "update_id"), (b"[1, 2]", "object")):  # fmt: skip
            async with session.post(f"{gw.base}/channels/telegram/webhook", data=raw, headers=headers) as resp:
                answer = await resp.json()
                assert resp.status == 200 and answer["handled"] is False and problem in answer["reason"], answer
    group = telegram_api.text_update(5, -100123, "查余额", chat_type="supergroup")
    assert (await post(gw, group))[0] == 200  # group chats are not served
    await asyncio.sleep(0.5)
    assert len(telegram_api.sent(CHAT)) == 3 and telegram_api.sent(-100123) == []
    assert me.chat_id == CHAT


async def test_429_retry_after_and_an_outage_are_retried_nothing_lost(gateways, telegram_api):
    gw = await gateways(**telegram_sections(telegram_api))
    me = Chat(gw, telegram_api)
    telegram_api.fail("sendMessage", 1, status=429, retry_after=1)
    started = time.monotonic()
    await me.say("/help", expect=0)
    await telegram_api.wait_for("sendMessage", 1, chat_id=CHAT, timeout=5)
    assert time.monotonic() - started >= 0.9  # not before Telegram's retry_after
    telegram_api.down = True
    await me.say("/start", expect=0)
    await me.say("查一下流量", expect=0)
    await asyncio.sleep(1.0)
    assert len(telegram_api.sent(CHAT)) == 1
    telegram_api.down = False
    later = await telegram_api.wait_for("sendMessage", 3, chat_id=CHAT, timeout=8)
    assert "智能客服" in later[1]["text"] and "流量" in later[2]["text"]  # in the order they were written
    # a user who blocked the bot is given up on; others are not held up
    telegram_api.blocked_chats.add(CHAT)
    await me.say("/start", expect=0)
    other = Chat(gw, telegram_api, chat_id=555)
    assert (await other.say("/start"))[0]["text"]
    await eventually(lambda: metric(gw, 'outbox_dead_total{channel="telegram"}'), timeout=5)
    assert await metric(gw, 'outbox_dead_total{channel="telegram"}') == 1
    assert await metric(gw, 'outbox_retries_total{channel="telegram"}') >= 2  # the 429 and the outage


async def test_a_complaint_reaches_an_agent_whose_reply_and_typing_reach_telegram(gateways, telegram_api, agents):
    gw = await gateways(handoff=load_handoff_config().replace(push=False), **telegram_sections(telegram_api))
    me = Chat(gw, telegram_api)
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    ack = (await me.say("我要投诉你们的客服态度太差了，打了三次电话都没人解决问题"))[0]["text"]
    assert "投诉" in ack
    chat = next(c for c in (await agent.call("GET", "/api/queue"))["chats"] if c["channel"] == "telegram")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")
    await agent.ws.send_json({"type": "typing", "chat": chat["id"]})  # type: ignore[union-attr]
    await telegram_api.wait_for("sendChatAction", 1)
    await agent.call("POST", f"/api/chats/{chat['id']}/messages", {"text": "您好，非常抱歉给您带来不好的体验。"})
    replies = await telegram_api.wait_for("sendMessage", 3, chat_id=CHAT)
    assert any("非常抱歉" in m["text"] for m in replies)
    await me.say("好的，请尽快处理", expect=0)  # goes to the agent, not the bot
    frame = await agent.expect(lambda f: f.get("type") == "message" and f["entry"]["kind"] == "customer")
    assert frame["entry"]["text"] == "好的，请尽快处理"


async def test_webhook_and_commands_are_registered_at_start_up(gateways, telegram_api):
    gw = await gateways(**telegram_sections(telegram_api, set_webhook=True))
    await telegram_api.wait_for("setWebhook", 1)
    assert telegram_api.webhook["url"] == f"{gw.base}/channels/telegram/webhook"
    assert telegram_api.webhook["secret_token"] == TG_SECRET
    assert set(telegram_api.webhook["allowed_updates"]) == {"message", "callback_query"}
    await telegram_api.wait_for("setMyCommands", 2)
    commands = {key: [c["command"] for c in value] for key, value in telegram_api.commands.items()}
    assert all(cmds == ["start", "help", "human", "bind", "unbind"] for cmds in commands.values())
    # Telegram itself now delivers to the registered URL with the secret
    assert await telegram_api.deliver(telegram_api.text_update(9, CHAT, "/start")) == 200
    await telegram_api.wait_for("sendMessage", 1, chat_id=CHAT)


async def test_the_bot_token_never_reaches_the_logs(gateways, telegram_api, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="gateway")
    caplog.set_level(logging.INFO)
    gw = await gateways(**telegram_sections(telegram_api))
    await Chat(gw, telegram_api).say("/start")
    secret_part = telegram_api.token.split(":", 1)[1]
    assert caplog.records and not any(secret_part in r.getMessage() for r in caplog.records)
