"""Privacy in real Chromium: an agent holding a chat reveals the customer's number with a reason (shown for 60 s, then
masked again — the page's clock is driven forward); a supervisor reads the audit trail on /audit (filters, the
customer searched by number, English) without export; an admin downloads the CSV; an agent is refused the page.
No Content-Security-Policy violation."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from gateway.rkeys import deployment_keys
from handoff.agents import AgentStore
from tests.browser.shots import screenshots_dir
from tests.handoff.conftest import WebCustomer, handoff_config, make_gateway  # noqa: F401

pytestmark = pytest.mark.browser
PHONE = "13800138000"
DOCS = screenshots_dir()


def csp_watch(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


async def sign_in(browser, base: str, name: str, password: str, clock: bool = False) -> tuple[Page, list[str]]:
    page = await (await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN",
                                            accept_downloads=True)).new_page()  # fmt: skip
    if clock:
        await page.clock.install()
    seen = csp_watch(page)
    await page.goto(f"{base}/agent?lang=zh")
    await expect(page.locator("#login-form")).to_be_visible(timeout=10_000)
    await page.fill("#login-name", name)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await expect(page.locator("#console")).to_be_visible(timeout=10_000)
    return page, seen


async def test_reveal_in_the_console_and_the_audit_page(browser, make_gateway, redis_client, key_prefix):  # noqa: F811
    gw = await make_gateway()
    await AgentStore(redis_client, deployment_keys(key_prefix)).add("root1", "admin-password-123", role="admin",
                                                                    skills=("zh",))  # fmt: skip
    agent, agent_csp = await sign_in(browser, gw.base, "agent1", "demo-agent1", clock=True)
    customer = WebCustomer(gw.base, PHONE)
    await customer.connect()
    try:
        await customer.send("转人工")
        tab = agent.locator(".chat-tab").first
        await expect(tab).to_be_visible(timeout=15_000)
        await tab.click()
        number = agent.locator("#profile .profile-list dd").first
        await expect(number).to_contain_text("138****8000", timeout=10_000)
        await agent.click("#profile .reveal-btn")
        await agent.fill("#profile .reveal-reason", "abc")
        await agent.click("#profile .reveal-ok")
        await expect(agent.locator(".toast").last).to_contain_text("至少 4 个字")
        await agent.fill("#profile .reveal-reason", "客户要求回电确认装机地址")
        await agent.click("#profile .reveal-ok")
        await expect(number.locator(".revealed-number")).to_have_text(PHONE)
        await expect(number).to_contain_text("秒后隐藏")
        await agent.locator("#profile").screenshot(path=str(DOCS / "console-reveal-zh.png"))
        await agent.clock.run_for(61_000)
        await expect(number).not_to_contain_text(PHONE)
        await expect(number).to_contain_text("138****8000")
        await expect(number.locator(".reveal-btn")).to_be_visible()  # may be revealed again (audited again)

        await expect(agent.locator("#audit-link")).to_have_count(0)  # agents have no audit trail to read
        boss, boss_csp = await sign_in(browser, gw.base, "super1", "demo-super1")
        await boss.click("#audit-link")
        await expect(boss).to_have_url(re.compile(r"/audit\?lang=zh$"))
        rows = boss.locator("#rows tr")
        await expect(rows.first).to_be_visible(timeout=10_000)
        reveal = boss.locator("#rows tr", has=boss.locator('[data-kind="reveal"]'))
        await expect(reveal).to_have_count(1)
        await expect(reveal).to_contain_text("客户要求回电确认装机地址")
        await expect(reveal).to_contain_text("agent1")
        await expect(reveal).not_to_contain_text(PHONE)
        await expect(boss.locator("#export")).to_be_hidden()  # supervisors read, admins export
        await boss.fill("#f-customer", f"+86 {PHONE}")
        await boss.click("#filters button[type=submit]")
        await expect(rows).to_have_count(1)
        await expect(rows.first.locator(".what")).to_have_text("查看完整号码")
        await boss.screenshot(path=str(DOCS / "audit-zh.png"), full_page=True)
        await boss.fill("#f-customer", "")
        await boss.select_option("#f-what", "sign_in")
        await boss.click("#filters button[type=submit]")
        await expect(rows).to_have_count(2)  # agent1 and super1 signed in
        await boss.click("#lang-switch")
        await expect(boss.locator(".brand")).to_have_text("Audit trail")
        await expect(rows.first.locator(".what")).to_have_text("signed in")
        await boss.fill("#f-customer", "12")
        await boss.click("#filters button[type=submit]")
        await expect(boss.locator("#error")).to_contain_text("full phone number")

        root, root_csp = await sign_in(browser, gw.base, "root1", "admin-password-123")
        await root.goto(f"{gw.base}/audit?lang=zh")
        await expect(root.locator("#export-csv")).to_be_visible(timeout=10_000)
        await root.select_option("#f-what", "reveal")
        await root.click("#filters button[type=submit]")
        await expect(root.locator("#rows tr")).to_have_count(1)
        async with root.expect_download() as download_info:
            await root.click("#export-csv")
        download = await download_info.value
        text = Path(await download.path()).read_text(encoding="utf-8-sig")
        found = list(csv.DictReader(io.StringIO(text)))
        assert [(r["who"], r["what"], r["reason"]) for r in found] == [("agent1", "reveal", "客户要求回电确认装机地址")]
        await root.reload()
        await root.select_option("#f-what", "audit_export")
        await root.click("#filters button[type=submit]")
        await expect(root.locator("#rows tr")).to_have_count(1)  # the export itself is in the trail
        await expect(root.locator("#rows tr").first).to_contain_text("root1")

        await agent.goto(f"{gw.base}/audit")
        await expect(agent.locator("#refused")).to_be_visible(timeout=10_000)
        await expect(agent.locator("#audit-view")).to_be_hidden()
        assert agent_csp == [] and boss_csp == [] and root_csp == []
        for page in (agent, boss, root):
            await page.context.close()
    finally:
        await customer.close()
