"""FakeWeChat speaks WeChat's real formats: wechatpy's own signature checks, crypto, parser and client work with it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import xmltodict
from aiohttp import web
from wechatpy import WeChatClient, create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import ClickEvent, SubscribeEvent, SubscribeScanEvent, UnsubscribeEvent, ViewEvent
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException
from wechatpy.messages import ImageMessage, LocationMessage, TextMessage, VoiceMessage
from wechatpy.utils import check_signature

from tests.channels.fake_wechat import DEFAULT_AES_KEY, FakeWeChat, new_aes_key, openid

USER = openid(1)
OLD_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
async def wx() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat(old_aes_key=OLD_KEY)
    await fake.start()
    yield fake
    await fake.stop()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts a one-route aiohttp server standing for the gateway's WeChat URL; gives its URL."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        application = web.Application()
        application.router.add_route("*", "/wechat", handler)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/wechat"

    yield serve
    for runner in runners:
        await runner.cleanup()


async def api(wx: FakeWeChat, path: str, *, params: dict | None = None, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        if body is None:
            request = session.get(f"{wx.api_base}{path}", params=params)
        else:
            data = body if isinstance(body, bytes) else aiohttp.JsonPayload(body, dumps=_dumps)
            request = session.post(f"{wx.api_base}{path}", params=params, data=data)
        async with request as resp:
            if resp.status != 200:
                return resp.status, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/json")
            return resp.status, await resp.json()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def fetch_token(wx: FakeWeChat) -> str:
    query = {"grant_type": "client_credential", "appid": wx.appid, "secret": wx.secret}
    _, answer = await api(wx, "token", params=query)
    return answer["access_token"]


async def send(wx: FakeWeChat, token: str | None, message: dict) -> dict:
    status, answer = await api(wx, "message/custom/send", params={"access_token": token} if token else {}, body=message)
    assert status == 200  # WeChat answers errors with HTTP 200
    return answer


def text(to: str, content: str) -> dict:
    return {"touser": to, "msgtype": "text", "text": {"content": content}}


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- push formats


def test_helpers() -> None:
    assert len(USER) == 28 and USER.startswith("o") and USER == openid(1) != openid(2)
    key = new_aes_key()
    assert len(key) == 43 and key.isalnum()
    WeChatCrypto("t", key, "wx1")  # wechatpy asserts a 32-byte key
    for bad in ("short", key + "A", key[:42] + "!"):
        with pytest.raises(ValueError, match="EncodingAESKey"):
            FakeWeChat(encoding_aes_key=bad)


def test_verify_query_and_plaintext_push_pass_wechatpy_check_signature() -> None:
    wx = FakeWeChat()
    query = wx.verify_query("7531598426")
    assert set(query) == {"signature", "timestamp", "nonce", "echostr"} and query["echostr"] == "7531598426"
    check_signature(wx.token, query["signature"], query["timestamp"], query["nonce"])
    assert query["signature"] == sha1_sorted(wx.token, query["timestamp"], query["nonce"])
    assert query["nonce"].isdigit() and abs(int(query["timestamp"]) - time.time()) < 5
    with pytest.raises(InvalidSignatureException):
        check_signature("another-token", query["signature"], query["timestamp"], query["nonce"])

    xml = wx.text_xml(USER, "查话费 <&> ]]> 完", 23456789012345678, create_time=1_700_000_000)
    params, body = wx.push(xml)
    assert list(params) == ["signature", "timestamp", "nonce", "openid"] and params["openid"] == USER
    check_signature(wx.token, params["signature"], params["timestamp"], params["nonce"])
    assert body == xml.encode()
    message = parse_message(body)
    assert isinstance(message, TextMessage)
    assert message.content == "查话费 <&> ]]> 完" and message.id == 23456789012345678
    assert message.source == USER and message.target == wx.original_id and message.time == 1_700_000_000
    root = xmltodict.parse(xml)["xml"]
    assert list(root) == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId"]

    fixed = wx.push(xml, timestamp=1_700_000_123, nonce="42")[0]
    assert fixed["timestamp"] == "1700000123" and fixed["nonce"] == "42"
    assert fixed["signature"] == sha1_sorted(wx.token, "1700000123", "42")


def test_safe_mode_push_decrypts_with_wechatpy() -> None:
    wx = FakeWeChat()
    xml = wx.text_xml(USER, "你好，我要办宽带", 1001)
    params, body = wx.push(xml, safe=True)
    assert list(params) == ["signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature"]
    assert params["encrypt_type"] == "aes"
    check_signature(wx.token, params["signature"], params["timestamp"], params["nonce"])  # still present
    envelope = xmltodict.parse(body)["xml"]
    assert list(envelope) == ["ToUserName", "Encrypt"] and envelope["ToUserName"] == wx.original_id
    assert params["msg_signature"] == sha1_sorted(wx.token, params["timestamp"], params["nonce"], envelope["Encrypt"])

    crypto = WeChatCrypto(wx.token, wx.encoding_aes_key, wx.appid)
    inner = crypto.decrypt_message(body, params["msg_signature"], params["timestamp"], params["nonce"])
    assert inner == xml
    message = parse_message(inner)
    assert isinstance(message, TextMessage) and message.content == "你好，我要办宽带" and message.id == 1001
    # str bodies and a pre-parsed dict work too
    assert crypto.decrypt_message(body.decode(), params["msg_signature"], params["timestamp"], params["nonce"]) == xml
    assert crypto.decrypt_message(envelope, params["msg_signature"], params["timestamp"], params["nonce"]) == xml

    with pytest.raises(InvalidSignatureException):
        crypto.decrypt_message(body, params["signature"], params["timestamp"], params["nonce"])
    with pytest.raises(InvalidSignatureException):  # the signature covers the timestamp
        crypto.decrypt_message(body, params["msg_signature"], str(int(params["timestamp"]) + 1), params["nonce"])
    # a retry re-encrypts: another ciphertext (random 16-byte prefix), the same message
    _, again = wx.push(xml, safe=True)
    assert xmltodict.parse(again)["xml"]["Encrypt"] != envelope["Encrypt"]


def test_old_key_push_decrypts_only_with_the_old_key() -> None:
    wx = FakeWeChat(old_aes_key=OLD_KEY)
    xml = wx.text_xml(USER, "轮换密钥", 7)
    params, body = wx.push(xml, safe=True, key=wx.old_aes_key)
    sig, ts, nonce = params["msg_signature"], params["timestamp"], params["nonce"]
    assert WeChatCrypto(wx.token, OLD_KEY, wx.appid).decrypt_message(body, sig, ts, nonce) == xml
    # with the current key the signature still checks (it does not involve the key) but decryption fails with
    # struct.error, UnicodeDecodeError or InvalidAppIdException depending on the garbage: catch Exception
    failed: Exception | None = None
    try:
        WeChatCrypto(wx.token, wx.encoding_aes_key, wx.appid).decrypt_message(body, sig, ts, nonce)
    except Exception as exc:
        failed = exc
    assert failed is not None and not isinstance(failed, InvalidSignatureException)
    # the default key is the current one
    params, body = wx.push(xml, safe=True)
    decrypted = WeChatCrypto(wx.token, DEFAULT_AES_KEY, wx.appid).decrypt_message(
        body, params["msg_signature"], params["timestamp"], params["nonce"]
    )
    assert decrypted == xml


def test_events_and_media_parse_with_wechatpy() -> None:
    wx = FakeWeChat()
    subscribe = parse_message(wx.event_xml(USER, "subscribe", create_time=1_700_000_000))
    assert isinstance(subscribe, SubscribeEvent) and subscribe.key == "" and subscribe.id == 0
    assert subscribe.type == "event" and subscribe.event == "subscribe" and subscribe.source == USER
    assert "MsgId" not in xmltodict.parse(wx.event_xml(USER, "subscribe"))["xml"]
    assert isinstance(parse_message(wx.event_xml(USER, "unsubscribe")), UnsubscribeEvent)
    click = parse_message(wx.event_xml(USER, "CLICK", "MENU_BILL"))
    assert isinstance(click, ClickEvent) and click.key == "MENU_BILL" and click.event == "click"
    view = parse_message(wx.event_xml(USER, "VIEW", "https://example.com/"))
    assert isinstance(view, ViewEvent) and view.url == "https://example.com/"
    scan = parse_message(wx.event_xml(USER, "subscribe", "qrscene_123", ticket="gQH47joAAAAAAAAAASxod"))
    assert isinstance(scan, SubscribeScanEvent) and scan.scene_id == "123" and scan.ticket == "gQH47joAAAAAAAAAASxod"

    image = parse_message(wx.image_xml(USER, 55))
    assert isinstance(image, ImageMessage) and image.id == 55 and image.media_id and image.image.startswith("http")
    voice = parse_message(wx.voice_xml(USER, 56, recognition="查询余额"))
    assert isinstance(voice, VoiceMessage) and voice.format == "amr" and voice.recognition == "查询余额"
    location = parse_message(wx.location_xml(USER, 57))
    assert isinstance(location, LocationMessage) and location.label.startswith("北京")
    assert float(location.location_x) == pytest.approx(39.908722)

    menu_choice = wx.text_xml(USER, "满意", bizmsgmenuid="101")
    choice = parse_message(menu_choice)
    assert isinstance(choice, TextMessage) and choice.content == "满意"
    assert xmltodict.parse(menu_choice)["xml"]["bizmsgmenuid"] == "101"
    first, second = parse_message(wx.text_xml(USER, "a")), parse_message(wx.text_xml(USER, "b"))
    assert second.id == first.id + 1 and first.id > 10**16  # automatic MsgIds look like WeChat's


# ---------------------------------------------------------------------------------------------- API server


async def test_token_endpoint(wx: FakeWeChat) -> None:
    first = await fetch_token(wx)
    assert wx.token_requests == 1 and wx.access_token == first and len(first) > 100
    query = {"grant_type": "client_credential", "appid": wx.appid, "secret": wx.secret}
    _, answer = await api(wx, "token", params=query)
    assert answer == {"access_token": answer["access_token"], "expires_in": 7200}
    assert answer["access_token"] != first and wx.token_requests == 2

    query = {"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": wx.secret}
    assert (await api(wx, "token", params=query))[1] == {"errcode": 40013, "errmsg": "invalid appid"}
    query = {"grant_type": "client_credential", "appid": wx.appid, "secret": "wrong"}
    assert (await api(wx, "token", params=query))[1]["errcode"] == 40125
    query = {"grant_type": "password", "appid": wx.appid, "secret": wx.secret}
    assert (await api(wx, "token", params=query))[1]["errcode"] == 40002
    assert wx.token_requests == 5 and len(wx.tokens_issued) == 2

    wx.fail(1, endpoint="token")
    assert (await api(wx, "token", params={"grant_type": "client_credential"}))[1] == {
        "errcode": -1,
        "errmsg": "system error",
    }


async def test_send_and_token_invalidation(wx: FakeWeChat) -> None:
    token = await fetch_token(wx)
    greeting = "您好，请问有什么可以帮您？"
    assert await send(wx, token, text(USER, greeting)) == {"errcode": 0, "errmsg": "ok"}
    assert wx.texts_to(USER) == [greeting] and wx.sent == [text(USER, greeting)]

    newer = await fetch_token(wx)  # issuing a new token invalidates the old one
    answer = await send(wx, token, text(USER, "x"))
    assert answer == {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
    assert (await send(wx, "made-up", text(USER, "x")))["errcode"] == 40001
    assert (await send(wx, None, text(USER, "x")))["errcode"] == 41001
    assert (await send(wx, newer, text(USER, "第二条")))["errcode"] == 0

    wx.expire_tokens()
    assert (await send(wx, newer, text(USER, "x"))) == {"errcode": 42001, "errmsg": "access_token expired"}
    fresh = await fetch_token(wx)
    assert (await send(wx, fresh, text(USER, "第三条")))["errcode"] == 0
    assert (await send(wx, newer, text(USER, "x")))["errcode"] == 42001  # still expired, not "not latest"
    assert wx.texts_to(USER) == [greeting, "第二条", "第三条"] and wx.token_requests == 3
    assert [c["response"]["errcode"] for c in wx.calls if c["path"] == "message/custom/send"] == [
        0, 40001, 40001, 41001, 0, 42001, 0, 42001,
    ]  # fmt: skip


async def test_send_limits_and_failures(wx: FakeWeChat) -> None:
    token = await fetch_token(wx)
    other = openid(2)
    wx.window_closed.add(other)
    answer = await send(wx, token, text(other, "x"))
    assert answer == {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}

    wx.quota[USER] = 2
    assert [(await send(wx, token, text(USER, f"m{i}")))["errcode"] for i in range(3)] == [0, 0, 45047]
    assert wx.quota[USER] == 0 and wx.texts_to(USER) == ["m0", "m1"]
    del wx.quota[USER]

    assert (await send(wx, token, text(USER, "a" * 2048)))["errcode"] == 0
    assert (await send(wx, token, text(USER, "a" * 2049)))["errcode"] == 45002
    assert (await send(wx, token, text(USER, "字" * 683)))["errcode"] == 45002  # 2049 UTF-8 bytes
    assert (await send(wx, token, text(USER, "")))["errcode"] == 44004
    assert (await send(wx, token, {"touser": USER, "msgtype": "fax", "fax": {}}))["errcode"] == 40008
    assert (await send(wx, token, {"msgtype": "text", "text": {"content": "x"}}))["errcode"] == 40003
    status, answer = await api(wx, "message/custom/send", params={"access_token": token}, body=b"{not json")
    assert status == 200 and answer["errcode"] == 47001

    menu = {
        "head_content": "您对本次服务是否满意呢？",
        "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}],
        "tail_content": "欢迎再次光临",
    }
    assert (await send(wx, token, {"touser": USER, "msgtype": "msgmenu", "msgmenu": menu}))["errcode"] == 0
    assert (await send(wx, token, {"touser": USER, "msgtype": "msgmenu", "msgmenu": {"list": []}}))["errcode"] == 47001
    assert wx.sent[-1]["msgmenu"] == menu and wx.texts_to(USER)[-1] == "a" * 2048

    wx.fail(2, 45009, "reach max api daily quota limit")
    assert (await send(wx, token, text(USER, "x"))) == {"errcode": 45009, "errmsg": "reach max api daily quota limit"}
    assert (await send(wx, token, text(USER, "x")))["errcode"] == 45009
    wx.fail(1)
    assert (await send(wx, token, text(USER, "x"))) == {"errcode": -1, "errmsg": "system error"}
    assert (await send(wx, token, text(USER, "ok")))["errcode"] == 0

    status, answer = await api(
        wx, "message/custom/typing", params={"access_token": token}, body={"touser": USER, "command": "Typing"}
    )
    assert answer == {"errcode": 0, "errmsg": "ok"} and wx.typing == [{"touser": USER, "command": "Typing"}]

    wx.down = True
    status, page = await api(wx, "message/custom/send", params={"access_token": token}, body=text(USER, "x"))
    assert status == 502 and "502 Bad Gateway" in page
    assert (await api(wx, "token", params={}))[0] == 502
    wx.down = False
    assert wx.texts_to(USER)[-1] == "ok"


async def test_wait_sent(wx: FakeWeChat) -> None:
    token = await fetch_token(wx)

    async def later() -> None:
        await asyncio.sleep(0.05)
        await send(wx, token, text(USER, "一"))
        await send(wx, token, text(openid(3), "二"))

    task = asyncio.create_task(later())
    assert [m["text"]["content"] for m in await wx.wait_sent(1, openid=openid(3))] == ["二"]
    assert len(await wx.wait_sent(2)) == 2
    await task
    with pytest.raises(AssertionError, match="expected 3 custom message"):
        await wx.wait_sent(3, timeout=0.1)


async def test_wechatpy_client_against_the_fake(wx: FakeWeChat) -> None:
    client = WeChatClient(wx.appid, wx.secret, timeout=5)
    client.API_BASE_URL = wx.api_base
    # wechatpy 1.8.18's WeChatClient.fetch_access_token hard-codes https://api.weixin.qq.com/cgi-bin/token (it
    # ignores API_BASE_URL): point it at the fake too.
    client.fetch_access_token = lambda: client._fetch_access_token(  # type: ignore[method-assign]
        url=f"{wx.api_base}token",
        params={"grant_type": "client_credential", "appid": client.appid, "secret": client.secret},
    )
    try:
        result = await asyncio.to_thread(client.message.send_text, USER, "你好")
        assert result == {"errcode": 0, "errmsg": "ok"} and wx.texts_to(USER) == ["你好"]
        assert wx.token_requests == 1 and client.access_token == wx.access_token
        await asyncio.to_thread(client.message.send_text, USER, "再见")
        assert wx.token_requests == 1  # cached

        await fetch_token(wx)  # someone else refreshed the token: wechatpy retries once after 40001
        await asyncio.to_thread(client.message.send_text, USER, "第三条")
        assert wx.token_requests == 3 and wx.texts_to(USER) == ["你好", "再见", "第三条"]
        wx.expire_tokens()  # 42001: the same
        await asyncio.to_thread(client.message.send_text, USER, "第四条")
        assert wx.token_requests == 4

        menu = {"head_content": "请选择", "list": [{"id": "1", "content": "查话费"}], "tail_content": ""}
        await asyncio.to_thread(client.message.send_msg_menu, USER, menu)
        assert wx.sent[-1] == {"touser": USER, "msgtype": "msgmenu", "msgmenu": menu}

        wx.window_closed.add(USER)
        with pytest.raises(WeChatClientException) as caught:
            await asyncio.to_thread(client.message.send_text, USER, "x")
        assert caught.value.errcode == 45015
        wx.window_closed.clear()
        wx.down = True
        with pytest.raises(WeChatClientException) as caught:
            await asyncio.to_thread(client.message.send_text, USER, "x")
        assert caught.value.errcode is None and caught.value.response.status_code == 502
    finally:
        client._http.close()


# ---------------------------------------------------------------------------------------------- delivery


def _gateway_like(wx: FakeWeChat, seen: list[str]) -> Handler:
    """What the gateway has to do, with wechatpy: verify, decrypt (current key, then the old one), reply."""

    async def handler(request: web.Request) -> web.Response:
        q = request.query
        try:
            check_signature(wx.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            return web.Response(status=403, text="bad signature")
        if request.method == "GET":
            return web.Response(text=q["echostr"])
        body = await request.read()
        key_used = None
        if q.get("encrypt_type") == "aes":
            for key in (wx.encoding_aes_key, wx.old_aes_key):
                try:
                    xml = WeChatCrypto(wx.token, key, wx.appid).decrypt_message(
                        body, q["msg_signature"], q["timestamp"], q["nonce"]
                    )
                except InvalidSignatureException:
                    return web.Response(status=403, text="bad msg_signature")
                except Exception:
                    continue
                key_used = key
                break
            else:
                return web.Response(status=400, text="undecryptable")
        else:
            xml = body.decode()
        message = parse_message(xml)
        seen.append(message.content)
        if message.content == "稍后":
            return web.Response(text="success")
        reply = create_reply(f"收到：{message.content}", message)
        if key_used is None:
            return web.Response(text=reply.render(), content_type="application/xml")
        encrypted = WeChatCrypto(wx.token, key_used, wx.appid).encrypt_message(reply, q["nonce"], q["timestamp"])
        return web.Response(text=encrypted, content_type="application/xml")

    return handler


async def test_post_and_passive_replies(receiver: Callable[[Handler], Awaitable[str]]) -> None:
    wx = FakeWeChat(old_aes_key=OLD_KEY)
    seen: list[str] = []
    url = await receiver(_gateway_like(wx, seen))
    assert await wx.verify(url, "98765") == (200, "98765")

    status, body, seconds = await wx.post(url, wx.text_xml(USER, "明文", 1))
    assert status == 200 and 0 <= seconds < 2 and body.startswith("<xml>")
    assert wx.decrypt_reply(body) == body and wx.reply_text(body) == "收到：明文"
    reply = wx.reply_message(body)
    assert reply is not None and reply.source == wx.original_id and reply.target == USER

    status, body, _ = await wx.post(url, wx.text_xml(USER, "密文", 2), safe=True)
    assert status == 200 and "<Encrypt>" in body and "<MsgSignature>" in body and "收到" not in body
    assert wx.reply_text(body) == "收到：密文"
    status, body, _ = await wx.post(url, wx.text_xml(USER, "旧钥", 3), safe=True, key=OLD_KEY)
    assert wx.reply_text(body) == "收到：旧钥"
    assert wx.reply_text(body, key=OLD_KEY) == "收到：旧钥"
    with pytest.raises(AssertionError, match="does not decrypt"):
        wx.decrypt_reply(body, key=wx.encoding_aes_key)
    with pytest.raises(AssertionError, match="bad MsgSignature"):
        wx.decrypt_reply(body.replace("<Nonce><![CDATA[", "<Nonce><![CDATA[1"))
    with pytest.raises(AssertionError, match="not WeChat XML"):
        wx.decrypt_reply("OK")

    status, body, _ = await wx.post(url, wx.text_xml(USER, "稍后", 4), safe=True)
    assert (status, body) == (200, "success") and wx.decrypt_reply(body) is None and wx.reply_text("") is None
    assert seen == ["明文", "密文", "旧钥", "稍后"]

    params, push_body = wx.push(wx.text_xml(USER, "篡改", 5))
    params["signature"] = "0" * 40
    async with aiohttp.ClientSession() as session, session.post(url, params=params, data=push_body) as resp:
        assert resp.status == 403


async def test_post_like_wechat_retries_while_the_first_is_pending(
    receiver: Callable[[Handler], Awaitable[str]],
) -> None:
    wx = FakeWeChat()
    arrivals: list[tuple[float, int, str]] = []  # (time, requests in flight on arrival, query)
    in_flight = 0

    async def slow_first(request: web.Request) -> web.Response:
        nonlocal in_flight
        arrivals.append((time.monotonic(), in_flight, request.query_string))
        in_flight += 1
        body = await request.read()
        try:
            if len(arrivals) == 1:
                await asyncio.sleep(0.5)
            assert body
            return web.Response(text="success")
        finally:
            in_flight -= 1

    url = await receiver(slow_first)
    started = time.monotonic()
    results = await wx.post_like_wechat(url, wx.text_xml(USER, "重试", 9), wait=0.15, retries=3)
    assert len(results) == 2 and [status for status, _, _ in results] == [200, 200]
    assert results[0][2] >= 0.45 and results[1][2] < 0.15
    assert arrivals[1][1] == 1  # the retry arrived while the first request was still being handled
    # the retry waited for its 0.15 s (less the first request's own delay in reaching the server on a busy machine)
    assert 0.05 <= arrivals[1][0] - arrivals[0][0] < 0.45
    assert arrivals[0][2] == arrivals[1][2]  # by default the same request again
    assert time.monotonic() - started < 1.5

    # nobody answers in time: 1 + 3 attempts, all open together
    arrivals.clear()

    async def always_slow(request: web.Request) -> web.Response:
        nonlocal in_flight
        arrivals.append((time.monotonic(), in_flight, request.query_string))
        in_flight += 1
        try:
            await asyncio.sleep(0.4)
            return web.Response(text="")
        finally:
            in_flight -= 1

    url = await receiver(always_slow)
    results = await wx.post_like_wechat(url, wx.text_xml(USER, "慢", 10), safe=True, wait=0.05, retries=3, resign=True)
    assert [status for status, _, _ in results] == [200] * 4
    assert [n for _, n, _ in arrivals] == [0, 1, 2, 3]
    assert len({query for _, _, query in arrivals}) == 4  # resign: new nonce and msg_signature each time

    # abandon=True: like WeChat cutting the connection after `wait`
    arrivals.clear()
    results = await wx.post_like_wechat(url, wx.text_xml(USER, "断开", 11), wait=0.05, retries=2, abandon=True)
    assert [(status, body) for status, body, _ in results] == [(0, "")] * 3
    assert all(0.04 <= seconds < 0.2 for _, _, seconds in results) and len(arrivals) == 3

    status, body, _ = await wx.post("http://127.0.0.1:9/wechat", wx.text_xml(USER, "x", 12), timeout=1)
    assert status == 0 and "Connect" in body
