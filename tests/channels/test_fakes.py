"""The fake providers speak the real wire formats: python-telegram-bot and twilio's own code work against them."""

from __future__ import annotations

import asyncio
import base64
import datetime as dtm
import email.utils
import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.warnings import PTBDeprecationWarning
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.channels.fake_sms import FakeHttpSms, FakeTwilio, sms_segments
from tests.channels.fake_telegram import FakeTelegram

CHAT = 424242
CHINESE_100 = ("您好，您的账户余额为十二点五元，本月剩余流量三点二吉字节。" * 4)[:100]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def app(tg: FakeTelegram) -> AsyncIterator[Application]:
    application = ApplicationBuilder().token(tg.token).base_url(tg.base_url).updater(None).build()
    await application.initialize()
    yield application
    await application.shutdown()


@pytest.fixture
async def twilio_fake() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http_sms() -> AsyncIterator[FakeHttpSms]:
    fake = FakeHttpSms(webhook_secret="hook-secret")
    await fake.start()
    yield fake
    await fake.stop()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts a one-route aiohttp server standing for the gateway's webhook; gives its URL."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        application = web.Application()
        application.router.add_post("/hook", handler)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    yield serve
    for runner in runners:
        await runner.cleanup()


def _keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("确认", callback_data="confirm:yes"),
                InlineKeyboardButton("取消", callback_data="c:n"),
            ],
            [InlineKeyboardButton("帮助", url="https://example.com/help")],
        ]
    )


# ---------------------------------------------------------------------------------------------- Telegram / PTB


async def test_ptb_initialize_and_send_message(tg: FakeTelegram, app: Application) -> None:
    assert tg.calls == [("getMe", {})]  # initialize() calls getMe and nothing else
    assert tg.content_types[0] == ""  # getMe is a POST without a body
    assert app.bot.username == "test_cs_bot" and app.bot.id == 123456
    assert app.bot.base_url == f"{tg.base_url}{tg.token}"

    message = await app.bot.send_message(CHAT, "你好", reply_markup=_keyboard())

    assert isinstance(message, telegram.Message)
    assert message.text == "你好" and message.chat.id == CHAT and message.chat.type == "private"
    assert message.from_user is not None and message.from_user.is_bot and message.from_user.id == 123456
    assert message.reply_markup == _keyboard()
    assert tg.content_types[-1] == "application/x-www-form-urlencoded"  # PTB 22.8 form-encodes
    (params,) = tg.sent(CHAT)
    assert params["chat_id"] == CHAT  # "424242" on the wire, decoded to int
    assert params["reply_markup"]["inline_keyboard"][0][0] == {"text": "确认", "callback_data": "confirm:yes"}
    second = await app.bot.send_message(CHAT, "再见")
    assert second.message_id == message.message_id + 1
    assert [p["text"] for p in await tg.wait_for("sendMessage", 2, chat_id=CHAT)] == ["你好", "再见"]
    assert tg.sent(1) == []


async def test_ptb_other_methods(tg: FakeTelegram, app: Application) -> None:
    assert await app.bot.set_webhook(
        "http://127.0.0.1:9/telegram/webhook", secret_token="s3cr3t-_x", allowed_updates=["message", "callback_query"]
    )
    assert tg.webhook is not None
    assert tg.webhook["allowed_updates"] == ["message", "callback_query"] and tg.webhook["secret_token"] == "s3cr3t-_x"
    info = await app.bot.get_webhook_info()
    assert info.url == "http://127.0.0.1:9/telegram/webhook" and info.allowed_updates == ("message", "callback_query")
    assert await app.bot.set_my_commands([("start", "开始"), ("help", "帮助")], language_code="zh")
    assert [c.command for c in await app.bot.get_my_commands(language_code="zh")] == ["start", "help"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await app.bot.set_my_commands([("Start!", "x")])
    assert await app.bot.send_chat_action(CHAT, "typing")
    assert await app.bot.answer_callback_query("123", text="已确认")
    sent = await app.bot.send_message(CHAT, "请确认", reply_markup=_keyboard())
    edited = await app.bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
    assert isinstance(edited, telegram.Message) and edited.reply_markup is None and edited.edit_date is not None
    with pytest.raises(BadRequest, match=r"^Message is not modified"):
        await app.bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
    assert await app.bot.edit_message_reply_markup(inline_message_id="abc", reply_markup=_keyboard()) is True
    assert await app.bot.delete_webhook()
    assert tg.webhook is None
    assert (await app.bot.get_webhook_info()).url == ""


async def test_ptb_retry_after(tg: FakeTelegram, app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    tg.fail("sendMessage", 1, status=429, retry_after=2)
    # Without PTB_TIMEDELTA, RetryAfter's own constructor warns (PTBDeprecationWarning): under this project's
    # filterwarnings = error the call raises the warning instead of RetryAfter.
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    with pytest.raises(PTBDeprecationWarning):
        await app.bot.send_message(CHAT, "hi")
    assert tg.results[-1][2] is False

    tg.fail("*", 1, status=429, retry_after=2)
    with pytest.warns(PTBDeprecationWarning), pytest.raises(RetryAfter) as caught:
        await app.bot.send_message(CHAT, "hi")
    with pytest.warns(PTBDeprecationWarning):
        assert caught.value.retry_after == 2 and type(caught.value.retry_after) is int

    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # opt in: no warning, a timedelta
    tg.fail("sendMessage", 1, status=429, retry_after=2)
    with pytest.raises(RetryAfter) as caught:
        await app.bot.send_message(CHAT, "hi")
    assert caught.value.retry_after == dtm.timedelta(seconds=2)
    assert str(caught.value) == "Flood control exceeded. Retry in 0:00:02"

    tg.fail("sendMessage", 1, status=429)  # no "parameters": just a NetworkError
    with pytest.raises(NetworkError, match=r"^Too Many Requests: retry after 1$"):
        await app.bot.send_message(CHAT, "hi")
    assert tg.sent() == []
    await app.bot.send_message(CHAT, "hi")  # failures are used up
    assert len(tg.sent()) == 1


async def test_ptb_error_classes(tg: FakeTelegram, app: Application) -> None:
    tg.blocked_chats.add(CHAT)
    with pytest.raises(Forbidden, match=r"^Forbidden: bot was blocked by the user$"):
        await app.bot.send_message(CHAT, "hi")
    tg.blocked_chats.clear()

    tg.fail("sendMessage", 1, status=500)
    with pytest.raises(NetworkError, match=r"^Internal Server Error$") as caught:
        await app.bot.send_message(CHAT, "hi")
    assert type(caught.value) is NetworkError

    with pytest.raises(BadRequest, match=r"^Message is too long$"):
        await app.bot.send_message(CHAT, "字" * 4097)
    await app.bot.send_message(CHAT, "字" * 4096)
    with pytest.raises(BadRequest, match=r"^Message text is empty$"):
        await app.bot.send_message(CHAT, "  ")
    tg.missing_chats.add(7)
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await app.bot.send_message(7, "hi")
    # PTB does not check callback_data length itself; Telegram (the fake) does, on bytes
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="确" * 22)]])  # 66 bytes
    with pytest.raises(BadRequest, match=r"^Button_data_invalid$"):
        await app.bot.send_message(CHAT, "hi", reply_markup=too_long)
    await app.bot.send_message(
        CHAT, "hi", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="a" * 64)]])
    )
    with pytest.raises(BadRequest, match=r"^Can't parse entities: unsupported start tag"):
        await app.bot.send_message(CHAT, "余额 <5 元", parse_mode="HTML")
    ok = await app.bot.send_message(CHAT, "<b>余额</b> &lt;5 元", parse_mode="HTML")
    assert ok.text == "余额 <5 元"
    with pytest.raises(BadRequest, match=r"^Can't parse entities: character '\.' is reserved"):
        await app.bot.send_message(CHAT, "余额 12.5 元", parse_mode="MarkdownV2")
    await app.bot.send_message(CHAT, "*余额* 12\\.5 元 [详情](https://example.com/a.b)", parse_mode="MarkdownV2")
    with pytest.raises(EndPointNotFound):
        await app.bot.do_api_request("noSuchMethod")

    tg.down = True
    with pytest.raises(NetworkError, match=r"^Bad Gateway \(502\)\. Parsing the server response") as caught:
        await app.bot.send_message(CHAT, "hi")
    assert type(caught.value) is NetworkError
    tg.down = False


async def test_ptb_wrong_token_and_connection_refused(tg: FakeTelegram) -> None:
    wrong = ApplicationBuilder().token("123456:WRONG").base_url(tg.base_url).updater(None).build()
    with pytest.raises(InvalidToken, match=r"was rejected by the server"):
        await wrong.initialize()
    await wrong.bot.shutdown()

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = ApplicationBuilder().token(tg.token).base_url(f"http://127.0.0.1:{port}/bot").updater(None).build()
    with pytest.raises(NetworkError, match=r"^httpx\.ConnectError") as caught:
        await closed.initialize()
    assert not isinstance(caught.value, TimedOut)
    await closed.bot.shutdown()


async def test_fake_accepts_json_and_multipart(tg: FakeTelegram) -> None:
    markup = {"inline_keyboard": [[{"text": "是", "callback_data": "y"}]]}
    async with httpx.AsyncClient(base_url=f"{tg.base_url}{tg.token}") as client:
        as_json = await client.post("/sendMessage", json={"chat_id": str(CHAT), "text": "j", "reply_markup": markup})
        as_form = await client.post(
            "/sendmessage", data={"chat_id": CHAT, "text": "f", "reply_markup": json.dumps(markup)}
        )
        as_multipart = await client.post(
            "/sendMessage",
            data={"chat_id": str(CHAT), "text": "m", "disable_notification": "true"},
            files={"document": ("a.txt", b"abc", "text/plain")},
        )
        unknown = await client.post("/sendMessages", json={})
        empty = await client.post("/sendMessage", json={"text": "x"})
        bad_markup = await client.post("/sendMessage", data={"chat_id": CHAT, "text": "x", "reply_markup": "{"})
    assert [r.status_code for r in (as_json, as_form, as_multipart)] == [200, 200, 200]
    assert as_json.json()["result"]["reply_markup"] == markup
    assert tg.content_types[:3] == ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
    for params in tg.sent():
        assert params["chat_id"] == CHAT
    assert tg.sent()[2]["disable_notification"] is True and tg.sent()[2]["document"]["size"] == 3
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    assert empty.json() == {"ok": False, "error_code": 400, "description": "Bad Request: chat_id is empty"}
    assert bad_markup.json()["description"] == "Bad Request: can't parse reply keyboard markup JSON object"
    async with httpx.AsyncClient() as client:
        unauthorized = await client.post(f"{tg.base_url}999:nope/getMe")
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_fail_payload_shape(tg: FakeTelegram) -> None:
    tg.fail("sendMessage", 2, status=429, retry_after=3)
    async with httpx.AsyncClient(base_url=f"{tg.base_url}{tg.token}") as client:
        first = await client.post("/sendMessage", json={"chat_id": 1, "text": "a"})
        other = await client.post("/getMe")
        second = await client.post("/sendMessage", json={"chat_id": 1, "text": "a"})
        third = await client.post("/sendMessage", json={"chat_id": 1, "text": "a"})
    assert first.status_code == 429
    assert first.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert other.status_code == 200 and second.status_code == 429 and third.status_code == 200
    assert len(tg.calls) == 4 and len(tg.sent()) == 1
    assert len(await tg.wait_for("sendMessage", 3, include_failed=True)) == 3


async def test_updates_parse_with_ptb(tg: FakeTelegram, app: Application) -> None:
    update = Update.de_json(tg.text_update(1, CHAT, "查询余额"), app.bot)
    assert update.message is not None and update.message.text == "查询余额"
    assert update.message.from_user is not None and update.message.from_user.language_code == "zh-hans"
    assert update.effective_chat is not None and update.effective_chat.id == CHAT

    start = Update.de_json(tg.text_update(2, CHAT, "/start bind_abc"), app.bot)
    assert start.message is not None and start.message.entities[0].type == "bot_command"
    assert start.message.entities[0].offset == 0 and start.message.entities[0].length == len("/start")

    sent = await app.bot.send_message(CHAT, "请确认", reply_markup=_keyboard())
    callback = Update.de_json(tg.callback_update(3, CHAT, "confirm:yes", message_id=sent.message_id), app.bot)
    assert callback.callback_query is not None and callback.callback_query.data == "confirm:yes"
    assert callback.callback_query.message is not None
    assert callback.callback_query.message.message_id == sent.message_id
    assert callback.callback_query.from_user.id == CHAT

    photo = Update.de_json(tg.photo_update(4, CHAT), app.bot)
    assert photo.message is not None and photo.message.text is None and len(photo.message.photo) == 4
    sticker = Update.de_json(tg.sticker_update(5, CHAT), app.bot)
    assert sticker.message is not None and sticker.message.sticker is not None and sticker.message.text is None
    location = Update.de_json(tg.location_update(6, CHAT), app.bot)
    assert location.message is not None and location.message.location is not None
    voice = Update.de_json(tg.voice_update(7, CHAT), app.bot)
    assert voice.message is not None and voice.message.voice is not None
    group = Update.de_json(tg.text_update(8, -1001234, "hi", chat_type="supergroup", user_id=55), app.bot)
    assert group.effective_chat is not None and group.effective_chat.type == "supergroup"
    assert group.effective_user is not None and group.effective_user.id == 55


async def test_process_update_routes_handler_errors_to_error_handlers(tg: FakeTelegram, app: Application) -> None:
    seen: list[BaseException | None] = []
    answered: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("boom")

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer()
        answered.append(update.callback_query.data or "")

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(context.error)

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_error_handler(on_error)
    await app.process_update(Update.de_json(tg.text_update(1, CHAT, "/start"), app.bot))  # does not raise
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)
    await app.process_update(Update.de_json(tg.callback_update(2, CHAT, "confirm:yes"), app.bot))
    assert answered == ["confirm:yes"]
    assert len(await tg.wait_for("answerCallbackQuery")) == 1


async def test_deliver_to_webhook(tg: FakeTelegram, app: Application, receiver) -> None:
    got: list[tuple[dict, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.json_response({"method": "sendMessage", "chat_id": CHAT, "text": "webhook reply"})

    url = await receiver(hook)
    await app.bot.set_webhook(url, secret_token="tok")
    assert await tg.deliver(tg.text_update(10, CHAT, "你好")) == 200
    assert got[0][0]["message"]["text"] == "你好" and got[0][1] == "tok"
    assert tg.sent(CHAT)[0]["text"] == "webhook reply"  # a method in the webhook answer is executed


# ---------------------------------------------------------------------------------------------- Twilio


def test_segments() -> None:
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2 and sms_segments("a" * 306) == 2
    assert sms_segments("{" * 80) == 1 and sms_segments("{" * 81) == 2
    assert sms_segments("字" * 70) == 1 and sms_segments("字" * 71) == 2 and sms_segments(CHINESE_100) == 2
    assert sms_segments("😀" * 35) == 1 and sms_segments("😀" * 36) == 2


def test_twilio_inbound_form_is_signed(twilio_fake: FakeTwilio) -> None:
    url = "https://gw.example.com/channels/sms/twilio?x=1"
    params, headers = twilio_fake.inbound_form(url, "+8613800138000", "+14155550100", "查询余额")
    assert params["Body"] == "查询余额" and params["NumMedia"] == "0" and params["NumSegments"] == "1"
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"]
    assert re.fullmatch(r"SM[0-9a-f]{32}", params["MessageSid"])
    assert params["AccountSid"] == twilio_fake.account_sid and params["FromCountry"] == "CN"
    validator = RequestValidator(twilio_fake.auth_token)
    assert validator.validate(url, params, headers["X-Twilio-Signature"])
    assert not validator.validate(url, {**params, "Body": "tampered"}, headers["X-Twilio-Signature"])
    assert not RequestValidator("other").validate(url, params, headers["X-Twilio-Signature"])


async def test_twilio_messages_endpoint(twilio_fake: FakeTwilio) -> None:
    url = f"{twilio_fake.base_url}/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages.json"
    auth = {"Authorization": aiohttp.encode_basic_auth(twilio_fake.account_sid, twilio_fake.auth_token)}
    form = {"To": "+8613800138000", "From": "+14155550100", "Body": CHINESE_100, "StatusCallback": "http://x/cb"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=form, headers=auth) as resp:
            assert resp.status == 201
            created = await resp.json()
        async with session.post(
            url, data=form, headers={"Authorization": aiohttp.encode_basic_auth(twilio_fake.account_sid, "wrong")}
        ) as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == 20003
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
        async with session.post(url, data=form) as resp:
            assert resp.status == 401
        twilio_fake.invalid_numbers.add("+8613900000000")
        async with session.post(url, data={**form, "To": "+8613900000000"}, headers=auth) as resp:
            assert resp.status == 400
            assert await resp.json() == {
                "code": 21211,
                "message": "The 'To' number +8613900000000 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            }
        async with session.post(url, data={"To": "+8613800138000", "Body": "x"}, headers=auth) as resp:
            assert (await resp.json())["code"] == 21603
        twilio_fake.fail(1, status=500)
        async with session.post(url, data=form, headers=auth) as resp:
            assert resp.status == 500 and (await resp.json())["code"] == 20500
        twilio_fake.down = True
        async with session.post(url, data=form, headers=auth) as resp:
            assert resp.status == 503
        twilio_fake.down = False
        service = {"To": "+8613800138000", "MessagingServiceSid": "MG" + "1" * 32, "Body": "Your code is 123456"}
        async with session.post(url, data=service, headers=auth) as resp:
            via_service = await resp.json()
        async with session.get(twilio_fake.base_url + created["uri"], headers=auth) as resp:
            assert (await resp.json())["sid"] == created["sid"]

    assert re.fullmatch(r"SM[0-9a-f]{32}", created["sid"])
    assert created["num_segments"] == "2" and created["status"] == "queued"
    assert created["to"] == "+8613800138000" and created["from"] == "+14155550100" and created["body"] == CHINESE_100
    assert created["direction"] == "outbound-api" and created["account_sid"] == twilio_fake.account_sid
    assert created["uri"] == f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages/{created['sid']}.json"
    assert email.utils.parsedate_to_datetime(created["date_created"]).tzinfo is not None
    assert created["date_created"].endswith("+0000")
    assert via_service["status"] == "accepted" and via_service["from"] is None and via_service["num_segments"] == "1"
    stored = (await twilio_fake.wait_messages(2))[0]
    assert stored["StatusCallback"] == "http://x/cb" and stored["num_segments"] == 2
    assert twilio_fake.sent_to("+8613800138000") == [CHINESE_100, "Your code is 123456"]


# twilio's AsyncTwilioHttpClient still uses aiohttp.BasicAuth and request(auth=...), both deprecated in aiohttp 3.14
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")
async def test_twilio_library_client_against_fake(twilio_fake: FakeTwilio) -> None:
    http_client = AsyncTwilioHttpClient()
    client = Client(twilio_fake.account_sid, twilio_fake.auth_token, http_client=http_client)
    client.api.base_url = twilio_fake.base_url
    try:
        message = await client.messages.create_async(to="+8613800138000", from_="+14155550100", body="您好" * 40)
        assert message.sid is not None and message.sid.startswith("SM") and message.num_segments == "2"
        assert message.status == "queued" and message.date_created is not None
        twilio_fake.invalid_numbers.add("+10000000000")
        with pytest.raises(TwilioRestException) as caught:
            await client.messages.create_async(to="+10000000000", from_="+14155550100", body="x")
        assert caught.value.status == 400 and caught.value.code == 21211
    finally:
        assert http_client.session is not None
        await http_client.session.close()
    assert twilio_fake.messages[0]["To"] == "+8613800138000"


async def test_twilio_status_callback(twilio_fake: FakeTwilio, receiver) -> None:
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        form = dict(await request.post())
        valid = RequestValidator(twilio_fake.auth_token).validate(
            str(request.url), form, request.headers.get("X-Twilio-Signature", "")
        )
        received.append(form)
        return web.Response(status=204 if valid else 403)

    url = await receiver(hook)
    auth = {"Authorization": aiohttp.encode_basic_auth(twilio_fake.account_sid, twilio_fake.auth_token)}
    send_url = f"{twilio_fake.base_url}/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages.json"
    form = {"To": "+8613800138000", "From": "+14155550100", "Body": "hi"}
    async with aiohttp.ClientSession() as session, session.post(send_url, data=form, headers=auth) as resp:
        sid = (await resp.json())["sid"]
    assert await twilio_fake.post_status_callback(url, sid, "delivered") == 204
    assert received[0]["MessageStatus"] == "delivered" == received[0]["SmsStatus"]
    assert received[0]["MessageSid"] == sid and received[0]["To"] == "+8613800138000" and "ErrorCode" not in received[0]
    assert await twilio_fake.post_status_callback(url, sid, "undelivered") == 204
    assert received[1]["ErrorCode"] == "30003" and twilio_fake.message(sid)["status"] == "undelivered"
    params, headers = twilio_fake.inbound_form(url, "+8613800138000", "+14155550100", "你好")
    async with aiohttp.ClientSession() as session, session.post(url, data=params, headers=headers) as resp:
        assert resp.status == 204
    assert await twilio_fake.post_inbound(url, "+8613800138000", "+14155550100", "再见") == 204


# ---------------------------------------------------------------------------------------------- generic HTTP SMS


async def test_http_sms(http_sms: FakeHttpSms, receiver) -> None:
    url = f"{http_sms.base_url}/send"
    good = {"Authorization": "Bearer sms-key"}
    body = {"to": "+8613800138000", "from": "10001", "text": CHINESE_100, "reference": "r1", "callback_url": None}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=good) as resp:
            assert resp.status == 200
            answer = await resp.json()
        async with session.post(url, json=body, headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401 and "error" in await resp.json()
        async with session.post(url, json=body) as resp:
            assert resp.status == 401
        async with session.post(url, data=b"{not json", headers={**good, "Content-Type": "application/json"}) as resp:
            assert resp.status == 400 and "error" in await resp.json()
        async with session.post(url, json={k: v for k, v in body.items() if k != "text"}, headers=good) as resp:
            assert resp.status == 400 and "text" in (await resp.json())["error"]
        http_sms.fail(1, status=502)
        async with session.post(url, json=body, headers=good) as resp:
            assert resp.status == 502
        http_sms.down = True
        async with session.post(url, json=body, headers=good) as resp:
            assert resp.status == 503
        http_sms.down = False

        reports: list[dict] = []

        async def hook(request: web.Request) -> web.Response:
            raw = await request.read()
            expected = "sha256=" + hmac.new(b"hook-secret", raw, hashlib.sha256).hexdigest()
            if request.headers.get("X-Signature") != expected:
                return web.Response(status=403)
            reports.append(json.loads(raw))
            return web.Response(status=200)

        callback = await receiver(hook)

        async def later() -> None:
            await asyncio.sleep(0.05)
            async with session.post(
                url, json={**body, "text": "ok", "reference": "r2", "callback_url": callback}, headers=good
            ) as resp:
                assert resp.status == 200

        task = asyncio.create_task(later())
        messages = await http_sms.wait_messages(2, timeout=2)
        await task
    assert answer["segments"] == 2 and answer["id"] == messages[0]["id"]
    assert http_sms.sent_to("+8613800138000") == [CHINESE_100, "ok"]
    assert await http_sms.post_report(messages[1]["id"], "delivered") == 200
    assert all(abs(r.pop("timestamp") - time.time()) < 5 for r in reports)  # signed with the body
    assert reports == [{"id": messages[1]["id"], "status": "delivered", "reference": "r2", "to": "+8613800138000"}]
    assert await http_sms.post_report("unknown", "failed", error="absent", url=callback) == 200
    assert reports[-1].pop("timestamp") and reports[-1] == {"id": "unknown", "status": "failed", "error": "absent"}
    assert await http_sms.post_inbound(callback, "+8613800138000", "10001", "CXYE", "in-1") == 200
    assert reports[-1].pop("timestamp") and reports[-1] == {"from": "+8613800138000", "to": "10001", "text": "CXYE",
                                                            "id": "in-1"}  # fmt: skip
    with pytest.raises(AssertionError, match=r"expected 3"):
        await http_sms.wait_messages(3, timeout=0.05)


def test_basic_auth_header_shape() -> None:
    """What aiohttp.encode_basic_auth sends is what Twilio expects: base64(AccountSid:AuthToken)."""
    header = aiohttp.encode_basic_auth("AC" + "0" * 32, "twilio-token")
    assert header == "Basic " + base64.b64encode(f"AC{'0' * 32}:twilio-token".encode()).decode()
