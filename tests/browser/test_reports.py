"""The reports page in real Chromium: a supervisor signs in, the charts (ECharts, vendored) and tables show a month
of seeded history in Chinese, an inspection is reviewed (override), CSV exports download, English on the switch;
the Chinese page is the README's screenshot (docs/reports-zh.png)."""

from __future__ import annotations

import time

from gateway import redisconn
from gateway.rkeys import deployment_keys
from handoff.reports import seed
from handoff.reports.config import configure
from tests.browser.shots import screenshots_dir

DOCS = screenshots_dir()  # docs/ with GW_DOCS_SCREENSHOTS=1 (the README's), else the test artifacts


async def test_reports_page_in_chinese_then_english(browser, gateway_url, redis_url, key_prefix, artifacts):
    now = time.time()
    config = configure(None)
    history = seed.generate(config, 30, 400, now, seed=7)
    client = redisconn.client(redis_url)
    await seed.write(client, deployment_keys(key_prefix), history, now, config.tz)
    await client.aclose()

    page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(gateway_url + "reports")
    await page.fill("#login-name", "super1")
    await page.fill("#login-password", "demo-super1")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert await page.text_content("h1") == "服务质量报表"
    assert await page.text_content("#who") == "已登录：李主管"
    for chart in ("sl-chart", "sat-pie", "sat-trend", "sat-bar", "q-chart", "st-chart"):
        assert await page.locator(f"#{chart} canvas").count() == 1, chart
    kpis = await page.locator(".kpi-label").all_text_contents()
    assert "5 秒内自动应答" in kpis and "15 秒内接起" in kpis and "机器人独立解决率" in kpis
    assert await page.locator("#sl-table tbody tr").count() == 30  # the last 30 days by default, a row a day
    assert await page.locator("#st-table tbody tr").count() == 24
    agents = await page.locator("#q-agents tbody tr").count()
    assert agents >= 3
    assert "王小明 (agent1)" in (await page.locator("#q-agents").text_content() or "")  # as the console names him

    # the lowest-scored inspection: its lines that cost points, then the supervisor's review
    await page.locator("#q-list tbody tr").first.click()
    await page.wait_for_selector("#q-detail:not([hidden])")
    assert await page.locator("#q-deductions li").count() >= 1
    await page.fill("#override-score", "12")  # lower still: it stays in the list of the lowest
    await page.fill("#override-reason", "复核：坐席多次使用服务禁语")
    await page.click("#override-form button[type=submit]")
    await page.locator("#override-note", has_text="已保存复核分数").wait_for()  # (the page's CSP forbids eval)
    first = await page.locator("#q-list tbody tr").first.text_content() or ""
    assert "12（主管复核）" in first

    # one agent's inspections: click the agent, then again for everyone's
    agent = (await page.locator("#q-agents tbody tr").nth(1).locator("td").first.text_content() or "").strip()
    await page.locator("#q-agents tbody tr").nth(1).click()
    await page.locator("#q-filter", has_text=agent).wait_for()
    shown = await page.locator("#q-list tbody tr td:nth-child(2)").all_text_contents()
    assert shown and set(shown) == {agent}
    await page.locator("#q-agents tbody tr", has_text=agent + " ✓").click()
    await page.locator("#q-filter:empty").wait_for(state="attached")

    csv = await page.evaluate("""async () => {
        const href = document.querySelector("a.csv[data-csv='quality:agents']").href;
        const r = await fetch(href, {credentials: 'same-origin'});
        return [r.status, r.headers.get('content-type'), await r.text()];
    }""")
    assert (
        csv[0] == 200
        and csv[1].startswith("text/csv")
        and csv[2].lstrip("\ufeff").startswith("agent,inspected,average")
    )

    await page.select_option("#sat-group", "complaint_type")
    await page.locator("#sat-table tbody tr", has_text="非投诉").wait_for()
    assert "网络" in (await page.locator("#sat-table").text_content() or "")
    await page.select_option("#sat-group", "district")
    await page.locator("#sat-table tbody tr", has_text="海淀区").wait_for()
    assert "海淀区" in (await page.locator("#sat-table").text_content() or "")
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(DOCS / "reports-zh.png"), full_page=True,
                          clip={"x": 0, "y": 0, "width": 1280, "height": 1560})  # fmt: skip

    await page.screenshot(path=str(artifacts / "reports-zh-full.png"), full_page=True)
    await page.click("#lang-switch")
    assert await page.text_content("h1") == "Service quality reports"
    assert await page.text_content("#who") == "Signed in: Supervisor Li"
    kpis = await page.locator(".kpi-label").all_text_contents()
    assert "Automated answers within 5 s" in kpis and "Picked up within 15 s" in kpis
    assert "Staffing advice (Erlang C)" in (await page.text_content("#st-title") or "")
    await page.screenshot(path=str(artifacts / "reports-en.png"))
    assert errors == []


async def test_an_agent_is_told_the_reports_are_for_supervisors(browser, gateway_url):
    page = await browser.new_page(locale="en-GB")
    await page.goto(gateway_url + "reports?lang=en")
    await page.fill("#login-name", "agent1")
    await page.fill("#login-password", "demo-agent1")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#login-error:not([hidden])")
    assert await page.text_content("#login-error") == "Only supervisors and admins can see the reports"
    assert await page.locator("#reports").is_hidden()
