"""The Cases page in real Chromium: an agent signs in on the console, follows its header link to /cases, sees their
case with its clocks counting, opens it (history, customer masked, account facts), moves it on with a note and a
reply the customer receives, adds a note, switches to English; a supervisor sees the assignee filter, another agent
an empty list. No Content-Security-Policy violation."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.shots import screenshots_dir
from tests.cases.conftest import complain
from tests.handoff.conftest import WebCustomer, handoff_config, make_gateway  # noqa: F401

pytestmark = pytest.mark.browser
DOCS = screenshots_dir()  # docs/ with GW_DOCS_SCREENSHOTS=1 (the README's), else the test artifacts


def csp_watch(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


async def sign_in(browser, base: str, name: str, password: str, lang: str = "zh") -> tuple[Page, list[str]]:
    page = await (await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN")).new_page()
    seen = csp_watch(page)
    await page.goto(f"{base}/agent?lang={lang}")
    await expect(page.locator("#login-form")).to_be_visible(timeout=10_000)
    await page.fill("#login-name", name)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await expect(page.locator("#console")).to_be_visible(timeout=10_000)
    return page, seen


async def test_the_cases_page(browser, make_gateway, handoff_config):  # noqa: F811
    quiet = handoff_config.replace(on_complaint={t: False for t in ("service", "business", "network", "other")})
    gw = await make_gateway(quiet)
    customer = WebCustomer(gw.base)
    await customer.connect()
    try:
        ticket = await complain(customer, "我要投诉，家里宽带三天都连不上网")
        page, seen = await sign_in(browser, gw.base, "agent1", "demo-agent1")
        await page.click("#cases-link")
        await expect(page).to_have_url(re.compile(r"/cases$"))
        row = page.locator(f'tr[data-ticket="{ticket}"]')
        await expect(row).to_be_visible(timeout=10_000)
        await expect(row).to_contain_text("已派单")
        clock = row.locator('[data-clock="first_response"]')
        first = await clock.text_content()
        assert first and first.startswith(("剩余 29:", "剩余 30:")), first
        await expect(clock).not_to_have_text(first, timeout=5_000)  # counting

        await row.click()
        await expect(page.locator("#case-ticket")).to_have_text(ticket)
        await expect(page.locator("#case-facts")).to_contain_text("138****8000")
        await expect(page.locator("#case-facts")).to_contain_text("朝阳区")
        await expect(page.locator("#case-history li")).to_have_count(3)
        await expect(page.locator("#case-history")).to_contain_text("已分析 → 已派单")
        await page.fill("#move-note", "已联系客户")
        await page.click('.move-btn[data-to="in_progress"]')
        await expect(page.locator("#case-stage")).to_have_text("处理中")
        await expect(page.locator("#case-clocks")).to_contain_text("已达成")
        await page.fill("#move-reply", "工程师明天上午上门检修")
        await page.click('.move-btn[data-to="replied"]')
        await expect(page.locator("#case-stage")).to_have_text("已答复")
        told = await customer.expect(lambda f: ticket in f.get("text", "") and "处理答复" in f["text"], timeout=10)
        assert "工程师明天上午上门检修" in told["text"]
        await page.fill("#note-text", "客户要求上午上门")
        await page.click("#note-form button")
        await expect(page.locator("#case-notes")).to_contain_text("客户要求上午上门")
        await expect(page.locator("#case-history")).to_contain_text("已联系客户")
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(DOCS / "cases-zh.png"), full_page=True)  # the README's

        await page.click("#lang-switch")
        await expect(page.locator("#case-stage")).to_have_text("replied")
        await expect(page.locator("#list-title")).to_contain_text("Cases")
        await expect(page.locator('.move-btn[data-to="resolved"]')).to_have_text("resolved")
        assert seen == []

        supervisor, sup_seen = await sign_in(browser, gw.base, "super1", "demo-super1")
        await supervisor.goto(f"{gw.base}/cases#{ticket}")
        await expect(supervisor.locator("#f-assignee-box")).to_be_visible(timeout=10_000)
        await expect(supervisor.locator("#case-ticket")).to_have_text(ticket)
        other, _ = await sign_in(browser, gw.base, "agent2", "demo-agent2")
        await other.goto(f"{gw.base}/cases")
        await expect(other.locator("#empty")).to_be_visible(timeout=10_000)
        await expect(other.locator("#f-assignee-box")).to_be_hidden()
        assert sup_seen == []
    finally:
        await customer.close()


async def test_signed_out_the_page_points_to_the_console(browser, make_gateway):  # noqa: F811
    gw = await make_gateway()
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{gw.base}/cases?lang=en")
    await expect(page.locator("#signed-out")).to_be_visible(timeout=10_000)
    await expect(page.locator("#signed-out")).to_contain_text("sign in")


async def test_a_case_running_late_turns_orange_then_red_and_is_escalated(browser, make_gateway, handoff_config):  # noqa: F811
    quiet = handoff_config.replace(on_complaint={t: False for t in ("service", "business", "network", "other")})
    cases = quiet.cases.with_clocks(first_response={"due": 6, "warn_before": 4, "head_after": 600})
    gw = await make_gateway(quiet.replace(cases=cases))
    customer = WebCustomer(gw.base)
    await customer.connect()
    try:
        page, seen = await sign_in(browser, gw.base, "super1", "demo-super1")
        console = await page.context.new_page()  # the same supervisor's agent console, open beside the cases
        await console.goto(f"{gw.base}/agent?lang=zh")
        await expect(console.locator("#cases-link")).to_have_text("投诉工单")
        await expect(console.locator("#conn-status")).to_have_attribute("data-state", "open", timeout=10_000)
        ticket = await complain(customer, "投诉：信号太差")  # its clocks start now, with the console listening
        await page.goto(f"{gw.base}/cases#{ticket}")
        clock = page.locator(f'tr[data-ticket="{ticket}"] [data-clock="first_response"]')
        await expect(clock).to_have_class(re.compile("clock-warn"), timeout=10_000)
        toasts = console.locator("#toasts")  # the console told the supervisor as the clock ran
        await expect(toasts).to_contain_text(f"投诉工单 {ticket}：首次响应即将超时", timeout=10_000)
        await expect(page.locator("#alerts")).to_contain_text("1 张即将超时")
        await expect(clock).to_have_class(re.compile("clock-over"), timeout=10_000)
        await expect(clock).to_contain_text("已超时")
        await expect(page.locator("#alerts")).to_contain_text("1 张已超时")
        async with asyncio.timeout(10):  # the case again (the server's worker may fire a moment after the page)
            while not await page.locator("#case-escalation").is_visible():
                await page.locator(f'tr[data-ticket="{ticket}"]').click()
                await asyncio.sleep(0.5)
        await expect(page.locator("#case-escalation")).to_contain_text("super1")
        await expect(page.locator("#case-history")).to_contain_text("升级")
        await expect(toasts).to_contain_text(f"投诉工单 {ticket}：首次响应已超时，已升级给主管", timeout=10_000)
        await console.click("#lang-switch")
        await expect(console.locator("#cases-link")).to_have_text("Cases")
        assert seen == []
    finally:
        await customer.close()
