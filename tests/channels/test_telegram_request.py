"""PTB's Bot over ``AiohttpRequest`` (gateway/channels/telegram_request.py): the Bot API model unchanged, the
errors PTB maps from Telegram's answers unchanged, network failures and time-outs as PTB's own exceptions."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from gateway.channels.telegram_request import AiohttpRequest

os.environ.setdefault("PTB_TIMEDELTA", "1")


def bot(base_url: str, token: str = "123456:TEST-token", **timeouts: float) -> Bot:
    return Bot(token, base_url=base_url, request=AiohttpRequest(pool_size=4, **timeouts))


async def test_messages_keyboards_and_telegrams_errors(telegram_api: Any) -> None:
    async with bot(telegram_api.base_url) as b:
        assert (await b.get_me()).username == "test_cs_bot"
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("查话费", callback_data="/check_balance")]])
        sent = await asyncio.gather(*(b.send_message(42, f"您好 {i}", reply_markup=markup) for i in range(10)))
        assert len({m.message_id for m in sent}) == 10 and sent[0].chat.id == 42 and sent[0].text == "您好 0"
        params = telegram_api.sent(42)[0]
        assert params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "/check_balance"

        telegram_api.fail("sendMessage", 1, status=429, retry_after=3)
        with pytest.raises(RetryAfter) as throttled:
            await b.send_message(42, "x")
        assert throttled.value.retry_after.total_seconds() == 3
        telegram_api.blocked_chats.add(7)
        with pytest.raises(Forbidden):
            await b.send_message(7, "x")
        with pytest.raises(BadRequest):
            await b.send_message(42, "")  # Telegram: message text is empty
        telegram_api.fail("sendMessage", 1, status=502)
        with pytest.raises(NetworkError):
            await b.send_message(42, "x")
        assert (await b.send_message(42, "again")).text == "again"  # the pool is still good


async def test_unreachable_api_is_a_network_error_without_the_token() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    token = "654321:SECRET-token-value"
    request = AiohttpRequest(pool_size=1, connect_timeout=2.0)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as failed:
            await request.post(f"http://127.0.0.1:{port}/bot{token}/getMe")
        assert "SECRET" not in str(failed.value) and "SECRET" not in repr(failed.value)
    finally:
        await request.shutdown()


@pytest.fixture
async def slow_api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A Bot API that takes 2 s for getMe, and records the multipart parts of sendDocument."""
    parts: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        if request.match_info["method"] == "getMe":
            await asyncio.sleep(2)
            return web.json_response({"ok": True, "result": {}})
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            parts.append({"name": part.name, "filename": part.filename, "body": await part.read()})  # type: ignore[union-attr]
        message = {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"},
                   "document": {"file_id": "f", "file_unique_id": "u", "file_name": "a.txt"}}  # fmt: skip
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/bot", parts
    await runner.cleanup()


async def test_a_slow_api_times_out_and_files_go_as_multipart(slow_api: tuple[str, list[dict[str, Any]]]) -> None:
    base_url, parts = slow_api
    b = bot(base_url, read_timeout=0.3)
    await b.request.initialize()  # not Bot.initialize: its getMe is the slow call
    try:
        with pytest.raises(TimedOut):
            await b.get_me()
        with pytest.raises(TimedOut):  # a per-call timeout overrides the default
            await b.get_me(read_timeout=0.2)
        await b.send_document(42, InputFile(b"hello file", filename="a.txt"), caption="账单")
        by_name = {p["name"]: p for p in parts}
        assert by_name["document"]["body"] == b"hello file" and by_name["document"]["filename"] == "a.txt"
        assert by_name["caption"]["body"].decode() == "账单" and by_name["chat_id"]["body"] == b"42"
    finally:
        await b.request.shutdown()
