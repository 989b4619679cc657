"""The agent console through a shift, in real Chromium: customers in the widget, an agent in the console.

- a reply never goes to the wrong customer: a draft belongs to its chat, a pushed chat never takes the composer;
- the header's presence is the server's, also after the gateway restarts;
- SLA chips come from the server's clocks (a chat answered at once shows none);
- the console speaks the agent's language: no English event tags, no raw ids, one label per visitor.
"""

from __future__ import annotations

import dataclasses
import re

import aiohttp
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser


async def agent_page(
    browser: Browser, base: str, name: str = "agent1", lang: str = "zh", page: Page | None = None
) -> Page:
    if page is None:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")).new_page()
    await page.goto(f"{base}agent?lang={lang}")
    await expect(page.locator("#login-form")).to_be_visible(timeout=10_000)
    await page.fill("#login-name", name)
    await page.fill("#login-password", f"demo-{name}")
    await page.click("#login-submit")
    await expect(page.locator("#console")).to_be_visible(timeout=10_000)
    await expect(page.locator("#conn-status")).to_have_attribute("data-state", "open", timeout=10_000)
    return page


async def customer_page(browser: Browser, base: str, text: str = "我要转人工客服") -> Page:
    page = await (await browser.new_context(viewport={"width": 390, "height": 780})).new_page()
    await page.goto(base + "?lang=zh")
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    await page.fill("#chat-input", text)
    await page.click("#chat-send")
    return page


async def close_all(*pages: Page) -> None:
    for page in pages:
        await page.context.close()


async def test_a_pushed_chat_never_takes_the_draft_and_enter_replies_to_the_chat_it_was_typed_in(
    browser, gateway_url, artifacts
):
    agent = await agent_page(browser, gateway_url)
    a = await customer_page(browser, gateway_url)
    await expect(a.locator(".msg-system").last).to_contain_text("王小明", timeout=10_000)
    tab_a = agent.locator(".chat-tab").first
    await expect(tab_a).to_be_visible(timeout=10_000)
    await tab_a.click()
    chat_a = await tab_a.get_attribute("data-chat")
    await expect(agent.locator("#transcript .entry-customer").first).to_contain_text("我要转人工客服")
    await agent.locator("#reply-input").click()
    await agent.keyboard.type("您好，您的宽带")  # half a message in A's chat

    b = await customer_page(browser, gateway_url, "人工服务")  # a second customer, pushed to the same agent
    await expect(b.locator(".msg-system").last).to_contain_text("王小明", timeout=10_000)
    await expect(agent.locator(".chat-tab")).to_have_count(2, timeout=10_000)
    await agent.wait_for_timeout(300)  # whatever the console does on the push has happened
    await agent.keyboard.type("故障已经派单")  # the agent keeps typing: still A's chat
    assert await agent.evaluate("document.activeElement.id") == "reply-input"
    await expect(agent.locator(".chat-tab.active")).to_have_attribute("data-chat", chat_a)
    await expect(agent.locator("#reply-input")).to_have_value("您好，您的宽带故障已经派单")

    await agent.select_option("#close-select", "follow_up")  # A's close reason, A's only
    tab_b = agent.locator(".chat-tab").nth(1)
    chat_b = await tab_b.get_attribute("data-chat")
    await expect(tab_b.locator(".badge")).to_be_visible()  # B is new: marked, not opened
    await agent.screenshot(path=str(artifacts / "console-zh.png"))
    assert chat_b != chat_a
    await tab_b.click()  # B's composer is B's: empty
    await expect(agent.locator("#reply-input")).to_have_value("")
    await expect(agent.locator("#close-select")).to_have_value("resolved")
    await agent.locator(f'.chat-tab[data-chat="{chat_a}"]').click()  # back to A: the draft is there
    await expect(agent.locator("#reply-input")).to_have_value("您好，您的宽带故障已经派单")
    await expect(agent.locator("#close-select")).to_have_value("follow_up")
    await agent.locator("#reply-input").press("End")
    await agent.keyboard.type("。")
    await agent.keyboard.press("Enter")

    await expect(a.locator(".msg-agent").last).to_have_text(re.compile("您好，您的宽带故障已经派单。$"), timeout=10_000)
    await expect(agent.locator("#reply-input")).to_have_value("")
    await agent.wait_for_timeout(500)
    assert await b.locator(".msg-agent").count() == 0  # B got nothing
    await agent.locator(f'.chat-tab[data-chat="{chat_b}"]').click()
    await expect(agent.locator("#reply-input")).to_have_value("")
    await close_all(agent, a, b)


async def test_the_header_shows_the_servers_presence_after_a_restart(browser, aiohttp_server, settings, nlu_engine):
    from gateway.app import create_app

    first = await aiohttp_server(create_app(settings, nlu=nlu_engine))
    base, port = str(first.make_url("/")), first.port
    page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")).new_page()
    held, routes = [True], []

    async def through(ws: WebSocketRoute) -> None:  # the console's socket, passed on to the gateway unless held
        if not held[0]:
            routes.extend([ws, ws.connect_to_server()])
        else:
            await ws.close()

    await page.route_web_socket(re.compile(r"/ws/agent$"), through)
    held[0] = False
    agent = await agent_page(browser, base, page=page)
    await agent.select_option("#status-select", "away")
    await expect(agent.locator("body")).to_have_attribute("data-status", "away")
    assert await agent.evaluate("fetch('/api/agent/me').then((r) => r.json()).then((d) => d.status)") == "away"

    held[0] = True  # the console cannot reconnect until we say so
    for route in routes:
        await route.close()
    await expect(agent.locator("#conn-status")).to_have_attribute("data-state", "closed", timeout=5_000)
    await first.close()  # the gateway restarts…
    await aiohttp_server(create_app(settings, nlu=nlu_engine), port=port)
    sign_in = {"name": "agent1", "password": "demo-agent1"}  # …and meanwhile the agent signs in elsewhere: online
    async with aiohttp.ClientSession() as http, http.post(base + "api/agent/login", json=sign_in) as r:
        assert r.status == 200, await r.text()
    held[0] = False
    await expect(agent.locator("#conn-status")).to_have_attribute("data-state", "open", timeout=15_000)
    status = await agent.evaluate("fetch('/api/agent/me').then((r) => r.json()).then((d) => d.status)")
    assert status == "online"
    await expect(agent.locator("#status-select")).to_have_value(status, timeout=5_000)  # as the server has it
    await expect(agent.locator("body")).to_have_attribute("data-status", status)
    await agent.reload()  # and a reload says the same
    await expect(agent.locator("#console")).to_be_visible(timeout=10_000)
    await expect(agent.locator("#status-select")).to_have_value(status)
    held[0] = True
    for route in routes:
        await route.close()
    await close_all(agent)


async def test_a_chat_answered_at_once_shows_no_sla_chip(browser, aiohttp_server, settings, nlu_engine):
    from gateway.app import create_app
    from handoff.config import Clock, load_handoff_config

    config = load_handoff_config(settings.source)
    clocks = {**config.clocks, "first_reply": Clock(1.0, 2.0)}  # a first reply due within 2 s
    config = dataclasses.replace(config, push=False, clocks=clocks)  # pull: the agent accepts from the queue
    server = await aiohttp_server(create_app(settings, nlu=nlu_engine, handoff_config=config))
    base = str(server.make_url("/"))
    agent = await agent_page(browser, base)
    customer = await customer_page(browser, base)
    accept = agent.locator(".queue-item .accept-btn").first
    await expect(accept).to_be_visible(timeout=10_000)
    await accept.click()
    await expect(agent.locator(".chat-tab")).to_have_count(1, timeout=10_000)
    await agent.fill("#reply-input", "您好，请讲")
    await agent.keyboard.press("Enter")  # answered at once
    await expect(customer.locator(".msg-agent").last).to_contain_text("您好，请讲", timeout=10_000)
    await agent.wait_for_timeout(3000)  # past the first reply's due time
    mine = await agent.evaluate("fetch('/api/queue').then((r) => r.json()).then((d) => d.mine)")
    assert [c["sla"] for c in mine] == [[]]  # the server: no clock runs
    await expect(agent.locator(".chat-tab .tab-sla")).to_have_count(0)  # the console: no chip
    assert await agent.locator(".toast-breach").count() == 0
    await close_all(agent, customer)


def overlaps(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    if not a or not b:
        return False
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or
                a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])  # fmt: skip


async def test_a_shift_in_chinese_capacity_labels_transfer_and_close(browser, aiohttp_server, settings, nlu_engine):
    from gateway.app import create_app
    from handoff.config import load_handoff_config

    config = load_handoff_config(settings.source)
    demo = tuple(dataclasses.replace(a, capacity=1) if a.name == "agent1" else a for a in config.demo_agents)
    server = await aiohttp_server(
        create_app(settings, nlu=nlu_engine, handoff_config=dataclasses.replace(config, demo_agents=demo))
    )
    base = str(server.make_url("/"))

    page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")).new_page()
    await page.goto(base + "agent?lang=zh")
    await page.fill("#login-name", "agent1")
    await page.fill("#login-password", "wrong-password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).to_have_text("账号或密码错误")  # in Chinese on the Chinese page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    agent = await agent_page(browser, base, page=page)

    a = await (await browser.new_context(viewport={"width": 390, "height": 780})).new_page()
    await a.goto(base + "?lang=zh")
    await expect(a.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    await a.fill("#chat-input", "你好")
    await a.click("#chat-send")
    await a.locator(".quick-reply", has_text="查话费余额").last.click()  # a quick reply, then a human
    await expect(a.locator(".msg-bot").last).to_contain_text("话费", timeout=10_000)
    await a.fill("#chat-input", "我要转人工客服")
    await a.click("#chat-send")
    await expect(a.locator(".msg-system").last).to_contain_text("王小明", timeout=10_000)
    tab = agent.locator(".chat-tab").first
    await expect(tab).to_be_visible(timeout=10_000)
    await expect(tab.locator(".tab-customer")).to_have_text(re.compile(r"^访客 [0-9A-F]{4}$"))  # a label of its own
    await expect(agent.locator("#transcript .entry-event").first).to_be_visible(timeout=10_000)
    transcript = await agent.locator("#transcript").inner_text()
    assert "排队 · 客户要求转人工" in transcript and "转人工 · 客户要求转人工" in transcript, transcript
    assert "查话费余额" in transcript, transcript  # what the customer clicked, not its payload
    side = (
        transcript + await agent.locator("#profile").inner_text() + await agent.locator(".chat-tab").first.inner_text()
    )
    for raw in ("queued", "handoff", "agent1", " · request_human", "/query"):
        assert raw not in side, (raw, side)
    assert not re.search(r"[0-9a-f]{16}", side), side  # no raw chat ids
    toast_boxes = [await tst.bounding_box() for tst in await agent.locator(".toast").all()]
    assert toast_boxes  # "新会话已分配给您" is up now
    for box in toast_boxes:  # and covers neither the close button nor the tab strip
        assert not overlaps(box, await agent.locator("#close-btn").bounding_box())
        assert not overlaps(box, await agent.locator("#my-chats").bounding_box())

    b = await customer_page(browser, base)  # agent1 is at capacity (1): B waits in the queue
    item = agent.locator(".queue-item").first
    await expect(item).to_be_visible(timeout=10_000)
    await expect(item.locator(".qi-customer")).to_have_text(re.compile(r"^访客 [0-9A-F]{4}$"))
    await expect(item.locator(".accept-btn")).to_be_disabled()
    await expect(agent.locator("#capacity-note")).to_contain_text("接待上限")
    await agent.keyboard.press("Alt+a")  # the shortcut says why too
    await expect(agent.locator(".toast").last).to_contain_text("接待上限")

    await agent.click("#transfer-btn")  # only agents online, and skill groups
    options = agent.locator("#transfer-target option")
    await expect(options.filter(has_text="技能组 · 网络")).to_have_count(1, timeout=5_000)
    assert await options.filter(has_text="Lisa Chen").count() == 0  # agent2 is offline
    sign_in = {"name": "agent2", "password": "demo-agent2"}
    async with aiohttp.ClientSession() as http, http.post(base + "api/agent/login", json=sign_in) as r:
        assert r.status == 200
    await agent.click("#transfer-cancel")
    await agent.click("#transfer-btn")
    await expect(options.filter(has_text="Lisa Chen")).to_have_count(1, timeout=5_000)
    await agent.click("#transfer-cancel")

    await agent.select_option("#close-select", "follow_up")
    await agent.click("#close-btn")  # closing asks first
    await expect(agent.locator("#close-confirm")).to_contain_text("需跟进")
    await agent.click("#close-no")
    await expect(agent.locator(".chat-tab")).to_have_count(1)
    await agent.click("#lang-switch")  # the same console in English
    await expect(agent.locator("#transcript")).to_contain_text("Queued · Asked for an agent")
    await expect(agent.locator(".chat-tab .tab-customer")).to_have_text(re.compile(r"^Visitor [0-9A-F]{4}$"))
    await expect(agent.locator("#capacity-note")).to_contain_text("at capacity")
    await agent.click("#lang-switch")
    await agent.click("#close-btn")
    await agent.click("#close-yes")
    await expect(agent.locator(".chat-tab")).to_have_count(0, timeout=10_000)
    await expect(agent.locator("#capacity-note")).to_be_hidden(timeout=10_000)
    assert errors == []
    await close_all(agent, a, b)


async def test_keyboard_next_chat_and_canned_search(browser, gateway_url):
    agent = await agent_page(browser, gateway_url)
    a = await customer_page(browser, gateway_url)
    await expect(agent.locator(".chat-tab")).to_have_count(1, timeout=10_000)
    b = await customer_page(browser, gateway_url, "人工服务")
    await expect(agent.locator(".chat-tab")).to_have_count(2, timeout=10_000)
    first, second = [await tab.get_attribute("data-chat") for tab in await agent.locator(".chat-tab").all()]
    await expect(agent.locator(".chat-tab.active")).to_have_attribute("data-chat", first)
    await agent.locator("#reply-input").click()
    await agent.keyboard.press("Alt+ArrowDown")  # next chat
    await expect(agent.locator(".chat-tab.active")).to_have_attribute("data-chat", second)
    await expect(agent.locator(".chat-tab.active .badge")).to_be_hidden()  # opened: read
    await agent.keyboard.press("Alt+ArrowUp")
    await expect(agent.locator(".chat-tab.active")).to_have_attribute("data-chat", first)

    await agent.locator("#reply-input").focus()
    await agent.keyboard.type("/")  # canned replies, searched by title or text
    await expect(agent.locator("#canned-pop")).to_be_visible()
    hits = agent.locator("#canned-pop .canned-hit")
    await expect(hits.first).to_be_visible()
    title = await hits.first.locator("strong").inner_text()
    await agent.keyboard.type(title[:2])
    await expect(hits.first.locator("strong")).to_contain_text(title[:2])
    text = await hits.first.locator("span").inner_text()
    await agent.keyboard.press("Enter")  # Enter picks the reply, it does not send "/…"
    await expect(agent.locator("#canned-pop")).to_be_hidden()
    value = await agent.locator("#reply-input").input_value()
    assert value.startswith(text.rstrip("…")[:10]) and not value.startswith("/"), (value, text)
    await agent.keyboard.press("Enter")  # now it goes, to the open chat
    await expect(a.locator(".msg-agent").last).to_contain_text(value[:10], timeout=10_000)
    assert await b.locator(".msg-agent").count() == 0
    await close_all(agent, a, b)


async def test_a_chat_transferred_in_never_takes_the_draft(browser, gateway_url):
    agent = await agent_page(browser, gateway_url)
    a = await customer_page(browser, gateway_url)
    await expect(agent.locator(".chat-tab")).to_have_count(1, timeout=10_000)
    await agent.locator("#reply-input").click()
    await agent.keyboard.type("请您重启一下")

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:  # a colleague
        sign_in = {"name": "agent2", "password": "demo-agent2"}
        async with other.post(gateway_url + "api/agent/login", json=sign_in) as r:
            csrf = (await r.json())["csrf"]
        b = await customer_page(browser, gateway_url, "人工服务")  # pushed to the least loaded: agent2
        await expect(b.locator(".msg-system").last).to_contain_text("Lisa", timeout=10_000)
        async with other.get(gateway_url + "api/queue") as r:
            (chat_b,) = [c["id"] for c in (await r.json())["mine"]]
        move = {"to_agent": "agent1", "note": "宽带问题"}
        async with other.post(f"{gateway_url}api/chats/{chat_b}/transfer", json=move,
                              headers={"X-CSRF-Token": csrf}) as r:  # fmt: skip
            assert r.status == 200, await r.text()
    await expect(agent.locator(f'.chat-tab[data-chat="{chat_b}"]')).to_be_visible(timeout=10_000)
    await agent.wait_for_timeout(300)
    await agent.keyboard.type("光猫再试试")  # still A's chat
    await agent.keyboard.press("Enter")
    await expect(a.locator(".msg-agent").last).to_have_text(re.compile("请您重启一下光猫再试试$"), timeout=10_000)
    await agent.wait_for_timeout(500)
    assert await b.locator(".msg-agent").count() == 0
    await agent.locator(f'.chat-tab[data-chat="{chat_b}"]').click()
    await expect(agent.locator("#reply-input")).to_have_value("")
    await close_all(agent, a, b)
