"""The npm package rasa-webchat (vendored unmodified under tests/data/rasa-webchat/) in real Chromium, on an
operator's page of another origin, against the gateway's Socket.IO channel: the widget opens, a customer asks in
Chinese, quick replies show and work, a reload keeps the session and the conversation goes on, and after a handoff
the agent's messages (one sent while the page was away) and the survey reach the widget."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from gateway.app import create_app
from gateway.channels.socketio import SOCKETIO
from handoff.config import load_handoff_config
from tests.handoff.conftest import AgentClient

pytestmark = pytest.mark.browser
VENDORED = Path(__file__).resolve().parents[1] / "data" / "rasa-webchat"
LEVELS = ["非常满意", "满意", "一般", "不满意", "非常不满意"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """The operator's own site (another origin than the gateway's) serving the page and the vendored bundle."""
    app = web.Application()
    app.router.add_static("/", VENDORED)
    server = TestServer(app, host="127.0.0.1", port=_free_port())
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def gateway(site: str, make_settings: Any, nlu_engine: Any) -> AsyncIterator[str]:
    port = _free_port()
    settings = make_settings(server={"public_url": f"http://127.0.0.1:{port}"}, webchat={"allowed_origins": [site]})
    app = create_app(settings, nlu=nlu_engine, handoff_config=load_handoff_config())
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    # Engine.IO's heartbeat short (every 1 s, 2 s to answer): a page gone while its socket was still long-polling (a
    # loaded machine upgrades late) is seen gone in ~3 s, not at the default 45 s (the test waits 10 s for that)
    app[SOCKETIO].sio.eio.ping_interval, app[SOCKETIO].sio.eio.ping_timeout = 1, 2
    APPS[f"http://127.0.0.1:{port}"] = app
    yield f"http://127.0.0.1:{port}"
    APPS.pop(f"http://127.0.0.1:{port}", None)
    await server.close()


APPS: dict[str, web.Application] = {}  # the gateway fixture's app by its URL


@pytest.fixture
async def agent(gateway: str) -> AsyncIterator[AgentClient]:
    client = AgentClient(gateway, "agent1", "demo-agent1")
    yield client
    await client.close()


async def _open(page: Page, site: str, gateway: str) -> None:
    await page.goto(f"{site}/index.html?gateway={gateway}")
    launcher = page.locator(".rw-launcher")
    await expect(launcher).to_be_visible(timeout=15_000)  # shown once connected (hideWhenNotConnected)
    if not await page.locator(".rw-conversation-container").is_visible():  # a reload keeps it open or closed
        await launcher.click()
    await expect(page.locator(".rw-new-message")).to_be_visible(timeout=15_000)


async def _send(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    await box.fill(text)
    await box.press("Enter")


def _session(raw: str | None) -> str:
    assert raw, "the widget keeps its session in localStorage (chat_session)"
    return json.loads(raw)["session_id"]


async def test_the_real_widget_against_the_gateway(browser, site, gateway, agent, artifacts):
    page = await browser.new_page(locale="zh-CN")
    await page.route("**/fonts.googleapis.com/**", lambda route: route.abort())  # the widget's CSS asks for a font
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await _open(page, site, gateway)
    session = _session(await page.evaluate("localStorage.getItem('chat_session')"))

    await _send(page, "你好，我想查一下话费")
    await expect(page.locator(".rw-client").last).to_contain_text("你好，我想查一下话费")
    await _send(page, "你好")
    replies = page.locator(".rw-replies .rw-reply")
    await expect(replies.filter(has_text="查话费余额")).to_be_visible(timeout=10_000)
    await expect(replies.filter(has_text="转人工客服")).to_be_visible()
    await replies.filter(has_text="查话费余额").click()  # a quick reply: its payload goes, its title shows
    await expect(page.locator(".rw-client").last).to_contain_text("查话费余额")
    await expect(page.locator(".rw-response").last).to_contain_text("请回复您的手机号码", timeout=10_000)

    await page.reload()  # the same session, the conversation shown again and going on where it was
    await _open(page, site, gateway)
    assert _session(await page.evaluate("localStorage.getItem('chat_session')")) == session
    await expect(page.locator(".rw-response").filter(has_text="请回复您的手机号码")).to_have_count(1)
    await _send(page, "13800138000")  # the answer to the question asked before the reload
    await expect(page.locator(".rw-response").last).to_contain_text("验证码已发送到138****8000", timeout=10_000)

    await agent.login()
    await agent.connect()
    await _send(page, "帮我转人工客服")
    await expect(page.locator(".rw-response").filter(has_text="王小明").last).to_be_visible(timeout=10_000)
    chat_id = (await agent.expect(lambda f: f["type"] == "assigned", timeout=10))["chat"]["id"]
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，我是王小明，请问有什么可以帮您？"})
    await expect(page.locator(".rw-response").last).to_contain_text("请问有什么可以帮您", timeout=10_000)
    await _send(page, "我的宽带一直掉线")
    heard = await agent.expect(lambda f: f["type"] == "message" and f["entry"]["kind"] == "customer", timeout=10)
    assert heard["entry"]["text"] == "我的宽带一直掉线"

    hub = APPS[gateway][SOCKETIO].hub
    assert session.split(".")[0] in hub.local  # the page's socket, on this gateway
    await page.goto("about:blank")  # the customer's page is away when the agent answers…
    # …once the server saw it go (what is written into a socket the page closed a
    async with asyncio.timeout(10):  # moment before, unknown to the server yet, is lost: the widget acknowledges
        while session.split(".")[0] in hub.local:  # nothing — README, "Embed with rasa-webchat")
            await asyncio.sleep(0.05)
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "已为您重置端口，请重启光猫试试。"})
    await _open(page, site, gateway)  # …and the answer is there when it comes back, once
    await expect(page.locator(".rw-response").filter(has_text="已为您重置端口")).to_have_count(1, timeout=10_000)

    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    survey = page.locator(".rw-replies .rw-reply")
    await expect(survey.filter(has_text="非常不满意")).to_be_visible(timeout=10_000)
    assert [t.strip() for t in await survey.all_inner_texts()] == LEVELS
    await survey.filter(has_text="非常满意").click()
    await expect(page.locator(".rw-response").last).to_contain_text("意见或建议", timeout=10_000)
    await _send(page, "处理得很快")
    await expect(page.locator(".rw-response").last).to_contain_text("感谢您的反馈", timeout=10_000)
    await page.screenshot(path=str(artifacts / "rasa-webchat.png"))
    assert errors == []
