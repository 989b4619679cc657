"""The widget as a customer meets it, in real Chromium: the greeting and its starter buttons on an empty
conversation, a paste cut at the server's length limit (said, held back, sent next), earlier quick replies
inert once the conversation moved on (also after a reload), Chinese IME input, long text, server errors in
the page's language and a reconnect that does not wait out its back-off when the customer sends."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from bots.templates import Renderer
from gateway.channels.webchat_greeting import GreetingConfigError, load_greeting
from nlu import INTENTS

pytestmark = pytest.mark.browser
OPEN = 15_000  # ms: a loaded 2-core machine


async def open_chat(browser: Any, url: str, locale: str = "zh-CN", **kw: Any) -> Page:
    context = await browser.new_context(viewport={"width": 390, "height": 780}, locale=locale, **kw)
    page = await context.new_page()
    await page.goto(url)
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=OPEN)
    return page


def greeting_texts(lang: str) -> tuple[str, list[str], list[str]]:
    """What the packaged config and templates say the greeting is (text, button titles, payloads)."""
    config, r = load_greeting(None, frozenset(INTENTS)), Renderer()
    titles = [r.text("webchat_greeting", s.title, lang, "webchat") for s in config.starters]
    return r.text("webchat_greeting", "text", lang, "webchat", phone=None), titles, [s.payload for s in config.starters]


async def test_greeting_with_starters_on_an_empty_conversation(browser, gateway_url):
    text, titles, payloads = greeting_texts("zh")
    assert "/query_balance" in payloads and "/request_human" in payloads and len(titles) >= 4
    page = await open_chat(browser, gateway_url)
    greeting = page.locator(".msg-bot.greeting")
    await expect(greeting).to_have_count(1)
    await expect(greeting.locator(".bubble")).to_have_text(text)
    await expect(greeting.locator(".quick-reply")).to_have_text(titles)
    # the zh/EN switch re-renders it from the same frame
    _, en_titles, _ = greeting_texts("en")
    await page.click("#lang-switch")
    await expect(greeting.locator(".quick-reply")).to_have_text(en_titles)
    await page.click("#lang-switch")
    await expect(greeting.locator(".quick-reply")).to_have_text(titles)

    # a starter runs its flow; the transcript shows the title, never the payload
    data = titles[payloads.index("/query_data_usage")]
    await greeting.locator(".quick-reply", has_text=data).click()
    await expect(page.locator(".msg-customer")).to_have_text([data])
    await expect(page.locator(".msg-bot:not(.greeting)").last).to_contain_text("手机号", timeout=OPEN)
    assert "/query" not in await page.locator("#chat-log").inner_text()
    await expect(greeting.locator(".quick-reply:enabled")).to_have_count(0)  # the greeting's buttons are done

    # a returning customer sees the history, not the greeting again
    await page.reload()
    await expect(page.locator(".msg-customer")).to_have_text([data], timeout=OPEN)
    await expect(page.locator(".msg-bot").first).to_contain_text("手机号", timeout=OPEN)
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=OPEN)
    await expect(page.locator(".greeting")).to_have_count(0)
    await page.context.close()

    # an English browser gets it in English
    en_text, _, _ = greeting_texts("en")
    page = await open_chat(browser, gateway_url, locale="en-US")
    await expect(page.locator(".greeting .bubble")).to_have_text(en_text)
    await expect(page.locator(".greeting .quick-reply")).to_have_text(en_titles)
    await page.context.close()


async def test_greeting_follows_the_configuration_folder(browser, aiohttp_server, settings, nlu_engine, tmp_path):
    from gateway.app import create_app

    (tmp_path / "webchat_greeting.yml").write_text(
        "enabled: true\nstarters:\n  - {title: agent, payload: /request_human}\n", encoding="utf-8")  # fmt: skip
    server = await aiohttp_server(create_app(dataclasses.replace(settings, source=str(tmp_path)), nlu=nlu_engine))
    page = await open_chat(browser, str(server.make_url("/")))
    await expect(page.locator(".greeting .quick-reply")).to_have_text(["转人工"])
    await page.context.close()

    (tmp_path / "webchat_greeting.yml").write_text("enabled: false\n", encoding="utf-8")
    server = await aiohttp_server(create_app(dataclasses.replace(settings, source=str(tmp_path)), nlu=nlu_engine))
    page = await open_chat(browser, str(server.make_url("/")))
    await page.fill("#chat-input", "你好")
    await page.press("#chat-input", "Enter")
    await expect(page.locator(".msg-bot")).to_have_count(1, timeout=OPEN)
    await expect(page.locator(".greeting")).to_have_count(0)
    await page.context.close()


def test_a_greeting_naming_what_does_not_exist_stops_start_up(tmp_path):
    path = tmp_path / "webchat_greeting.yml"
    for body, says in [("starters:\n  - {title: agent, payload: /call_me_maybe}\n", "/call_me_maybe"),
                       ("starters:\n  - {title: agent}\n", "starters[0]"),
                       ("enabled: true\ngreeting: hi\n", "unknown key")]:  # fmt: skip
        path.write_text(body, encoding="utf-8")
        with pytest.raises(GreetingConfigError, match=re.escape(says)):
            load_greeting(str(tmp_path), frozenset(INTENTS))


async def paste(page: Page, text: str) -> None:
    """A real paste: the text on Chromium's clipboard, then Ctrl+V in the box."""
    await page.evaluate("(t) => navigator.clipboard.writeText(t)", text)
    await page.focus("#chat-input")
    await page.keyboard.press("Control+V")


async def test_a_paste_over_the_limit_is_said_held_back_and_sent_next(browser, aiohttp_server, make_settings,
                                                                     nlu_engine):  # fmt: skip
    from gateway.app import create_app

    limit = 300  # the server's limit, whatever it is configured to: the page follows it
    server = await aiohttp_server(create_app(make_settings(pipeline={"max_message_chars": limit}), nlu=nlu_engine))
    page = await open_chat(browser, str(server.make_url("/")), permissions=["clipboard-read", "clipboard-write"])
    # emoji are one character each for the server (code points), two UTF-16 units for a textarea's maxlength
    text = "".join(f"第{i}段😀" for i in range(170))  # 10×4 + 90×5 + 70×6 = 910 code points
    total = len(text)
    parts = [text[i : i + limit] for i in range(0, total, limit)]
    assert total == 910 and len(parts) == 4
    await paste(page, text)
    notice = page.locator("#chat-limit")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text(f"{limit} 字")
    await expect(page.locator("#chat-count")).to_have_text(f"{limit}/{limit}")
    for i, part in enumerate(parts):  # each part in the box in turn, the notice saying how much is still held
        assert await page.input_value("#chat-input") == part
        held = total - limit * (i + 1)
        if held > 0:
            await expect(notice).to_contain_text(f"末尾 {held} 字")
        else:
            await expect(notice).to_be_hidden()
        await page.press("#chat-input", "Enter")
    # every part reached the server and came back (accepted, in order): nothing dropped, nothing refused
    customer = page.locator(".msg-customer:not(.pending)")
    await expect(customer).to_have_count(len(parts), timeout=OPEN)
    assert "".join(await customer.all_inner_texts()) == text
    await expect(page.locator(".msg-error")).to_have_count(0)
    await page.wait_for_function("JSON.parse(sessionStorage.getItem('gw_chat.outbox') || '[]').length === 0")

    # discarding the rest is the customer's choice, in English too
    await page.click("#lang-switch")
    await paste(page, "x" * (limit + 7))
    await expect(notice).to_contain_text("last 7 characters")
    await page.click("#chat-limit-dismiss")
    await expect(notice).to_be_hidden()
    await page.press("#chat-input", "Enter")
    assert await page.input_value("#chat-input") == ""
    await page.context.close()


async def test_earlier_quick_replies_are_inert_once_the_conversation_moved_on(browser, gateway_url):
    page = await open_chat(browser, gateway_url)
    await page.fill("#chat-input", "你好")
    await page.press("#chat-input", "Enter")
    menu = page.locator(".msg-bot").nth(1)  # after the greeting: the bot's menu
    await expect(menu.locator(".quick-reply").first).to_be_enabled(timeout=OPEN)
    chips = await menu.locator(".quick-reply").count()
    assert chips >= 2
    await page.fill("#chat-input", "好的谢谢")  # the customer typed instead of clicking
    await page.press("#chat-input", "Enter")
    await expect(page.locator(".msg-customer")).to_have_count(2)
    await expect(menu.locator(".quick-reply:disabled")).to_have_count(chips)
    await expect(page.locator(".msg-bot")).to_have_count(3, timeout=OPEN)  # greeting, menu, the answer
    await menu.locator(".quick-reply").first.click(force=True)  # a click on an old button does nothing
    await page.wait_for_timeout(300)
    await expect(page.locator(".msg-customer")).to_have_count(2)
    # it looks inert: faded, no pointer
    look = await menu.locator(".quick-reply").first.evaluate(
        "(b) => [getComputedStyle(b).opacity, getComputedStyle(b).cursor]")  # fmt: skip
    assert float(look[0]) < 1 and look[1] == "default"

    # a reply that carries buttons: they stay live until something newer comes; after a reload still so
    await page.fill("#chat-input", "你好")
    await page.press("#chat-input", "Enter")
    last = page.locator(".msg-bot").last
    await expect(page.locator(".msg-bot")).to_have_count(4, timeout=OPEN)
    await expect(last.locator(".quick-reply:enabled")).to_have_count(chips)
    await page.reload()
    await expect(page.locator(".msg-bot")).to_have_count(3, timeout=OPEN)  # the history, no greeting
    await expect(page.locator(".msg-bot").first.locator(".quick-reply:enabled")).to_have_count(0)
    await expect(page.locator(".msg-bot").last.locator(".quick-reply:enabled")).to_have_count(chips)
    # a clicked one is shown as the choice, after the reload too
    title = await page.locator(".msg-bot").last.locator(".quick-reply").first.inner_text()
    await page.locator(".msg-bot").last.locator(".quick-reply").first.click()
    await expect(page.locator(".msg-customer").last).to_have_text(title)
    await expect(page.locator(".msg-bot")).to_have_count(4, timeout=OPEN)  # its answer
    await page.reload()
    await expect(page.locator(".quick-reply.chosen", has_text=title)).to_have_count(1, timeout=OPEN)
    await page.context.close()


async def test_enter_while_composing_pinyin_does_not_send(browser, gateway_url):
    page = await open_chat(browser, gateway_url)
    await page.focus("#chat-input")
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Input.imeSetComposition", {"text": "chafei", "selectionStart": 6, "selectionEnd": 6})
    await page.keyboard.press("Enter")  # confirms the composition: the IME's Enter, not a send
    await page.wait_for_timeout(300)
    await expect(page.locator(".msg-customer")).to_have_count(0)
    await cdp.send("Input.insertText", {"text": "查话费"})  # the composition is committed
    assert (await page.input_value("#chat-input")).strip() == "查话费"
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg-customer")).to_have_text(["查话费"])
    await page.context.close()


async def test_long_text_wraps_and_errors_speak_the_page_language(browser, gateway_url):
    context = await browser.new_context(viewport={"width": 320, "height": 640}, locale="zh-CN")
    page = await context.new_page()
    # a message this tab once queued that the server refuses (over the limit): its error is said in Chinese
    frame = {"type": "message", "text": "长" * 5000, "client_id": "c-too-long", "lang": "zh"}
    await page.add_init_script(
        f"sessionStorage.setItem('gw_chat.outbox', {json.dumps(json.dumps([{'frame': frame}]))})"
    )
    await page.goto(gateway_url)
    await expect(page.locator(".msg-error").first).to_contain_text("消息未发送", timeout=OPEN)
    assert "message not sent" not in await page.locator("#chat-log").inner_text()

    url = "https://example.com/" + "a" * 300
    await page.fill("#chat-input", url)
    await page.press("#chat-input", "Enter")
    await expect(page.locator(".msg-customer").last).to_contain_text("aaaa")
    overflow = await page.evaluate("""() => {
        const log = document.getElementById('chat-log');
        const b = [...document.querySelectorAll('.msg-customer .bubble')].pop().getBoundingClientRect();
        const l = log.getBoundingClientRect();
        return [log.scrollWidth - log.clientWidth, b.right - l.right, document.documentElement.scrollWidth - 320];
    }""")
    assert max(overflow) <= 0, overflow
    await context.close()


async def test_sending_while_disconnected_reconnects_at_once(browser, gateway_url):
    """The gateway was away long enough for the back-off to grow; the customer types: it goes at once."""
    context = await browser.new_context(viewport={"width": 390, "height": 780}, locale="zh-CN")
    page = await context.new_page()
    state: dict[str, Any] = {"down": False, "live": None, "attempts": 0}

    async def route(ws: Any) -> None:
        if state["down"]:  # the gateway is away: the connection fails
            state["attempts"] += 1
            await ws.close()
        else:
            ws.connect_to_server()
            state["live"] = ws

    await page.route_web_socket("**/ws/chat*", route)
    await page.goto(gateway_url)
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=OPEN)
    state["down"] = True
    await state["live"].close()
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "closed", timeout=OPEN)
    await expect(page.locator("#chat-status")).to_have_text("已断开，正在重连…")
    await page.wait_for_timeout(8000)  # attempts at 0.5, 1.5, 3.5 and 7.5 s: the next one waits 8 s
    assert state["attempts"] >= 4
    state["down"] = False
    await page.fill("#chat-input", "还在吗")
    await page.press("#chat-input", "Enter")
    # sent on a new connection well before the back-off would have run out
    await expect(page.locator(".msg-customer:not(.pending)")).to_have_text(["还在吗"], timeout=3000)
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open")
    await expect(page.locator(".msg-bot").last).not_to_have_class("msg msg-bot greeting", timeout=OPEN)
    await context.close()


async def test_queue_notice_says_the_place_and_gives_way_to_an_agent_who_joins_at_once(
    browser, aiohttp_server, settings, nlu_engine
):
    """Frames published for the visitor the way the handoff sends them (Redis stream + pub/sub → socket)."""
    from gateway.app import create_app
    from gateway.channels.webchat import WEBCHAT

    server = await aiohttp_server(create_app(settings, nlu=nlu_engine))
    page = await open_chat(browser, str(server.make_url("/")))
    cookies = await page.context.cookies()
    visitor = next(c["value"] for c in cookies if c["name"] == settings.webchat.cookie_name)
    hub = server.app[WEBCHAT].hub
    await hub.publish(visitor, {"type": "queued", "from": "system", "text": "", "position": 1, "eta_seconds": 150})
    system = page.locator(".msg-system")
    await expect(system).to_have_text(["您现在排在第1位，预计等待约3分钟，请稍候。"])  # 1 = next, not "1 ahead"
    await page.click("#lang-switch")
    await expect(system).to_have_text(["You're number 1 in the queue; the wait is about 3 min."])
    await page.click("#lang-switch")
    # picked up straight away: the place and the agent in the same second would contradict each other
    await hub.publish(visitor, {"type": "agent_joined", "from": "system", "text": "", "agent": "王小明"})
    await expect(system).to_have_text(["客服 王小明 为您服务"])
    # a place that was true for a while (something came in between) stays in the transcript
    await hub.publish(visitor, {"type": "agent_left", "from": "system", "text": ""})
    await hub.publish(visitor, {"type": "queued", "from": "system", "text": "", "position": 2, "eta_seconds": 0})
    await hub.publish(visitor, {"type": "message", "from": "bot", "text": "请稍候"})
    await hub.publish(visitor, {"type": "agent_joined", "from": "system", "text": "", "agent": "李娜"})
    await expect(system).to_have_text(
        ["客服 王小明 为您服务", "客服已离开", "您现在排在第2位，请稍候。", "客服 李娜 为您服务"]
    )
    await page.reload()  # the replayed history reads the same
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=OPEN)
    await expect(system).to_have_text(
        ["客服 王小明 为您服务", "客服已离开", "您现在排在第2位，请稍候。", "客服 李娜 为您服务"]
    )
    await page.context.close()


async def test_a_logged_in_customer_is_greeted_by_masked_number(browser, aiohttp_server, make_settings, nlu_engine):
    import time

    import jwt

    from gateway.app import create_app

    secret = "widget-greeting-secret-" * 2
    server = await aiohttp_server(create_app(make_settings(webchat={"token_secret": secret}), nlu=nlu_engine))
    now = int(time.time())
    token = jwt.encode({"sub": "13800138000", "iat": now, "exp": now + 600}, secret, algorithm="HS256")
    page = await open_chat(browser, str(server.make_url("/")) + f"?token={token}")
    greeting = page.locator(".greeting .bubble")
    await expect(greeting).to_contain_text("138****8000")
    assert "13800138000" not in await page.locator("#chat-log").inner_text()
    await page.context.close()
