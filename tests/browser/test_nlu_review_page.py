"""The learning loop in real Chromium: an agent marks a message the bot misunderstood in the console, and a
supervisor decides on /nlu/review (accept, another label), retrains and switches — in English and Chinese, under
the gateway's Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from gateway.app import create_app
from gateway.nlu_review_api import LOOP
from handoff.config import load_handoff_config
from nlu.data import load_rasa_yaml
from nlu.review import label_of
from tests.gateway.test_nlu_review import write_base
from tests.handoff.conftest import SECRET, WebCustomer

pytestmark = pytest.mark.browser


def watch(page: Page) -> list[str]:
    """Page errors and Content-Security-Policy violations."""
    seen: list[str] = []
    page.on("pageerror", lambda e: seen.append(str(e)))
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


@pytest.fixture
async def server(aiohttp_server: Any, make_settings: Any, nlu_engine: Any, tmp_path: Path) -> Any:
    nlu = {"review_dir": str(tmp_path / "review"), "review_threshold": 0.95, "retrain_folds": 2,
           "retrain_data": [str(write_base(tmp_path / "base.yml"))], "retrain_tolerance": 0.02}  # fmt: skip
    settings = make_settings(webchat={"token_secret": SECRET}, nlu=nlu)
    app = create_app(settings, nlu=nlu_engine, handoff_config=load_handoff_config())
    srv = await aiohttp_server(app)
    srv.base = str(srv.make_url("")).rstrip("/")
    return srv


async def sign_in(page: Page, base: str, path: str, name: str, password: str) -> None:
    await page.goto(f"{base}{path}")
    await page.fill("#login-name", name)
    await page.fill("#login-password", password)
    await page.press("#login-password", "Enter")


async def test_agent_marks_what_the_bot_misunderstood(browser, server):
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = await context.new_page()
    errors = watch(page)
    await sign_in(page, server.base, "/agent?lang=zh", "agent1", "demo-agent1")
    await expect(page.locator("#console")).to_be_visible(timeout=10_000)
    customer = WebCustomer(server.base)
    try:
        await customer.connect()
        await customer.send("宽带好像又有点那个")
        await customer.expect(lambda f: f.get("from") == "bot")
        await customer.send("转人工")
        tab = page.locator(".chat-tab").first
        await expect(tab).to_be_visible(timeout=10_000)
        await tab.click()
        await page.click("#relabel-btn")
        panel = page.locator("#relabel-panel")
        await expect(panel).to_contain_text("机器人把客户的哪句话理解错了", timeout=10_000)
        select = panel.locator("select").first
        await expect(panel.locator("label").first).to_have_text("宽带好像又有点那个")
        await select.select_option("broadband_repair")
        await panel.locator(".relabel-send").first.click()
        await expect(panel.locator(".relabel-note").first).to_have_text("已提交，等待主管审核", timeout=10_000)
    finally:
        await customer.close()
        await context.close()  # the console's socket closes before the server stops
    pending = await server.app[LOOP].store.pending()
    assert [(s["text"], s["agent_label"], s["source"]) for s in pending] == [
        ("宽带好像又有点那个", "broadband_repair", "agent")
    ]
    assert not errors, errors


async def test_supervisor_reviews_retrains_and_switches(browser, server, nlu_engine, artifacts):
    loop = server.app[LOOP]
    await loop.collector.label("my fibre is kinda being weird again", "en", "greet", 0.41, "broadband_repair", "agent1")
    candidates = ("can u do the usual thing for me", "I need that thing from last time", "hmm the app thingy")
    unsure = next(t for t in candidates if nlu_engine.parse(t).confidence < 0.95)
    loop.collector.offer(nlu_engine, nlu_engine.parse(unsure))
    await loop.collector.flush()
    await loop.collector.label("话费那个东西给我停一下", "zh", "query_balance", 0.38, "unsubscribe", "agent2")
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = await context.new_page()
    errors = watch(page)
    await sign_in(page, server.base, "/nlu/review?lang=en", "super1", "demo-super1")
    rows = page.locator("#samples tbody tr")
    await expect(rows).to_have_count(3, timeout=10_000)
    await expect(page.locator("#model-line")).to_have_text(
        "Model in use: the one the gateway started with (no switch yet)"
    )
    first = rows.filter(has_text="my fibre is kinda being weird again")
    await expect(first.locator(".act-accept")).to_have_text("Accept: Broadband repair")  # the agent's label
    await first.locator(".act-accept").click()
    await expect(rows).to_have_count(2)
    second = rows.filter(has_text=unsure)
    await second.locator(".label-select").select_option("out_of_scope")
    await second.locator(".act-label").click()
    await expect(rows).to_have_count(1)  # the third waits
    assert {(e.text, label_of(e)) for e in load_rasa_yaml(loop.review_file)} == {
        ("my fibre is kinda being weird again", "broadband_repair"),
        (unsure, "out_of_scope"),
    }
    await page.click("#retrain-btn")
    await expect(page.locator("#result-line")).to_contain_text("New model: cross-validated accuracy", timeout=50_000)
    await expect(page.locator("#result-reviewed")).to_contain_text("(2 new of 2)")
    await expect(page.locator("#refusal")).to_be_hidden()
    await page.screenshot(path=str(artifacts / "nlu-review.png"))
    await page.click("#switch-btn")
    await expect(page.locator(".toast").last).to_contain_text("Switched: every gateway process", timeout=10_000)
    serving = loop.follower.serving
    assert serving and (await loop.models.active())["id"] == serving
    await expect(page.locator("#model-line")).to_contain_text(f"Model in use {serving}")
    await expect(page.locator("#switch-btn")).to_be_hidden()
    assert server.app[LOOP].follower.serving == serving
    await page.click("#lang-switch")
    await expect(page.locator("#model-line")).to_contain_text(f"当前模型 {serving}")
    await expect(page.locator("#samples-title")).to_contain_text("待审核样本")
    await context.close()
    assert not errors, errors


async def test_the_review_page_is_for_supervisors(browser, server):
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    errors = watch(page)
    await sign_in(page, server.base, "/nlu/review", "agent1", "demo-agent1")
    await expect(page.locator("#denied")).to_contain_text("仅主管和管理员可审核NLU样本", timeout=10_000)
    await expect(page.locator("#review")).to_be_hidden()
    await context.close()
    assert not errors, errors
