"""Two real browser pages: a customer in the widget asks for a human; an agent logs in to the
console, takes the chat, they write both ways, the agent closes, the customer answers the survey.
Both pages run under the gateway's Content-Security-Policy without a violation; the chat page can be framed
by the operator's site (webchat.allowed_origins) and by no other, the console by none."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser


def csp_watch(page: Page) -> list[str]:
    """Console messages about the Content-Security-Policy (Chromium reports every violation there)."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


async def test_customer_and_agent_in_two_pages(browser, gateway_url, artifacts, redis_client, key_prefix):
    agent = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")).new_page()
    agent_csp = csp_watch(agent)
    await agent.goto(gateway_url + "agent?lang=zh")
    await expect(agent.locator("#login-form")).to_be_visible(timeout=10_000)
    await agent.fill("#login-name", "agent1")
    await agent.fill("#login-password", "demo-agent1")
    await agent.click("#login-submit")
    await expect(agent.locator("#console")).to_be_visible(timeout=10_000)
    await expect(agent.locator("#agent-name")).to_contain_text("王小明")

    customer = await (await browser.new_context(viewport={"width": 390, "height": 780})).new_page()
    customer_csp = csp_watch(customer)
    await customer.goto(gateway_url + "?lang=zh")
    await expect(customer.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    await customer.fill("#chat-input", "我要转人工客服")
    await customer.click("#chat-send")
    await expect(customer.locator(".msg-system").last).to_contain_text("王小明", timeout=10_000)  # agent joined

    tab = agent.locator(".chat-tab").first
    await expect(tab).to_be_visible(timeout=10_000)
    await tab.click()
    await expect(agent.locator("#transcript .entry-customer").first).to_contain_text("我要转人工客服")
    await agent.fill("#reply-input", "您好，我是王小明，请问有什么可以帮您？")
    await agent.click("#reply-send")
    await expect(customer.locator(".msg-agent").last).to_contain_text("请问有什么可以帮您", timeout=10_000)

    await customer.fill("#chat-input", "我家宽带从早上开始就连不上")
    await customer.press("#chat-input", "Enter")
    await expect(agent.locator("#transcript .entry-customer").last).to_contain_text("宽带从早上开始", timeout=10_000)
    await agent.screenshot(path=str(artifacts / "agent-console.png"))

    await agent.select_option("#close-select", "resolved")
    await agent.click("#close-btn")
    await expect(agent.locator("#close-confirm")).to_contain_text("已解决")  # closing asks first
    await agent.click("#close-yes")
    await expect(agent.locator(".chat-tab")).to_have_count(0, timeout=10_000)
    survey = customer.locator(".quick-reply", has_text="非常满意").last
    await expect(survey).to_be_visible(timeout=10_000)
    await survey.click()
    await expect(customer.locator(".msg-bot").last).to_contain_text("意见或建议", timeout=10_000)
    await customer.fill("#chat-input", "客服很耐心")
    await customer.press("#chat-input", "Enter")
    await expect(customer.locator(".msg-bot").last).to_contain_text("感谢您的反馈", timeout=10_000)
    await customer.screenshot(path=str(artifacts / "widget-after-survey.png"))

    ((_, fields),) = await redis_client.xrange(f"{key_prefix}{{handoff}}:surveys")
    entry = json.loads(fields[b"e"])
    assert entry["score"] == 100 and entry["agent"] == "agent1" and entry["channel"] == "webchat"
    assert agent_csp == [] and customer_csp == []  # everything worked under the CSP, nothing was refused
    for page in (agent, customer):  # their sockets closed now, the gateway stops at once
        await page.context.close()


async def test_the_chat_page_is_framed_only_by_the_operators_site_and_the_console_by_none(
    browser, aiohttp_server, make_settings, nlu_engine
):
    from gateway.app import create_app

    gateway: dict[str, str] = {}

    async def host_page(request: web.Request) -> web.Response:  # the operator's site, embedding the gateway
        base = gateway["url"]
        html = (f'<!doctype html><iframe name="chat" src="{base}/?lang=zh"></iframe>'
                f'<iframe name="console" src="{base}/agent"></iframe>')  # fmt: skip
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", host_page)
    operator, stranger = await aiohttp_server(app), await aiohttp_server(app)  # two origins (two ports)
    origin = str(operator.make_url("")).rstrip("/")
    settings = make_settings(webchat={"allowed_origins": (origin,)})
    server = await aiohttp_server(create_app(settings, nlu=nlu_engine))
    gateway["url"] = str(server.make_url("")).rstrip("/")
    pages: list[Page] = []

    async def frames_on(site: Any) -> tuple[Any, Any, list[str]]:
        page = await (await browser.new_context()).new_page()
        pages.append(page)
        refused = csp_watch(page)
        await page.goto(str(site.make_url("/")))
        await page.wait_for_timeout(1500)
        return page.frame(name="chat"), page.frame(name="console"), refused

    chat, console, refused = await frames_on(operator)
    await expect(chat.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    assert await console.locator("#login-form").count() == 0  # the console refuses every frame
    assert any("frame-ancestors 'none'" in m for m in refused), refused
    chat, console, refused = await frames_on(stranger)
    assert await chat.locator("#chat-status").count() == 0 and await console.locator("#login-form").count() == 0
    assert any("frame-ancestors 'self' " + origin in m for m in refused), refused
    for page in pages:
        await page.context.close()


async def test_a_message_left_when_no_one_was_there_is_answered_from_the_console(browser, gateway_url):
    customer = await (await browser.new_context(viewport={"width": 390, "height": 780})).new_page()
    await customer.goto(gateway_url + "?lang=zh")
    await expect(customer.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    await customer.fill("#chat-input", "我要转人工客服")
    await customer.click("#chat-send")
    await expect(customer.locator(".msg-bot").last).to_contain_text("留言", timeout=10_000)  # nobody online
    await customer.fill("#chat-input", "明天上午请给我回电话，宽带的事")
    await customer.press("#chat-input", "Enter")
    await expect(customer.locator(".msg-bot").last).to_contain_text("留言已记录", timeout=10_000)

    agent = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")).new_page()
    await agent.goto(gateway_url + "agent?lang=zh")
    await expect(agent.locator("#login-form")).to_be_visible(timeout=10_000)
    await agent.fill("#login-name", "agent1")
    await agent.fill("#login-password", "demo-agent1")
    await agent.click("#login-submit")
    task = agent.locator(".cb-item").first
    await expect(task).to_contain_text("宽带的事", timeout=10_000)
    await expect(agent.locator("#cb-count")).to_have_text("1")
    await task.locator(".cb-reply").fill("您好，明天上午十点工程师会联系您。")
    await task.locator(".cb-reply-btn").click()
    await expect(agent.locator("#cb-empty")).to_be_visible(timeout=10_000)
    await expect(customer.locator(".msg-agent").last).to_contain_text("明天上午十点", timeout=10_000)
    for page in (agent, customer):  # their sockets closed now, the gateway stops at once
        await page.context.close()
