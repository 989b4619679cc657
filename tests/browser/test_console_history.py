"""History, search and supervisors' tools in the console, in real Chromium (Chinese):

- a customer's earlier chat with people is listed in the customer panel when they come back, opens read-only with
  its intents in Chinese, and exports as a download; search finds it by text;
- a supervisor watches a live chat as it happens, whispers to the agent (the agent sees it at once, the customer
  never), sees the queue by skill, and takes the chat over (the agent is told, the tab goes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.test_console_shift import agent_page, close_all, customer_page

pytestmark = pytest.mark.browser


async def test_an_earlier_chat_is_listed_read_only_exported_and_found(browser, gateway_url):
    agent = await agent_page(browser, gateway_url)
    customer = await customer_page(browser, gateway_url)
    tab = agent.locator(".chat-tab").first
    await expect(tab).to_be_visible(timeout=10_000)
    await tab.click()
    await customer.fill("#chat-input", "家里宽带断了，一直连不上")
    await customer.click("#chat-send")
    await expect(agent.locator("#transcript .entry-customer").last).to_contain_text("宽带断了", timeout=10_000)
    await agent.fill("#reply-input", "已为您派单维修")
    await agent.keyboard.press("Enter")
    await expect(customer.locator(".msg-agent").last).to_contain_text("已为您派单维修", timeout=10_000)
    await agent.click("#close-btn")
    await agent.click("#close-yes")
    await expect(agent.locator(".chat-tab")).to_have_count(0, timeout=10_000)
    await customer.locator(".quick-reply", has_text="非常满意").click()  # the survey: 100
    await expect(customer.locator(".msg-bot").last).to_be_visible(timeout=10_000)
    await customer.wait_for_timeout(300)
    await customer.fill("#chat-input", "服务很好")
    await customer.click("#chat-send")
    await customer.wait_for_timeout(500)
    await customer.fill("#chat-input", "转人工")  # the same customer comes back
    await customer.click("#chat-send")

    await expect(agent.locator(".chat-tab")).to_have_count(1, timeout=10_000)
    await agent.locator(".chat-tab").first.click()
    card = agent.locator("#history-card")
    await expect(card).to_be_visible()
    earlier = card.locator(".history-open")
    await expect(earlier).to_have_count(1, timeout=10_000)
    await expect(earlier).to_contain_text("已解决")
    await expect(earlier).to_contain_text("100 分")
    await earlier.click()
    viewer = agent.locator("#viewer")
    await expect(viewer).to_be_visible()
    await expect(agent.locator("#viewer-mode")).to_have_text("只读 · 已结束的会话")
    await expect(agent.locator("#viewer-transcript .entry-customer").first).to_contain_text("我要转人工客服")
    await expect(agent.locator("#viewer-transcript")).to_contain_text("已为您派单维修")
    await expect(agent.locator("#viewer-transcript .entry-nlu").first).to_contain_text("NLU 转人工")
    assert await agent.locator("#viewer-transcript .entry-nlu", has_text="request_human").count() == 0
    assert await agent.locator("#whisper-form").is_hidden()
    async with agent.expect_download() as info:
        await agent.click("#export-txt")
    download = await info.value
    text = Path(await download.path()).read_text(encoding="utf-8")
    assert download.suggested_filename.endswith(".txt") and "客户" in text and "已为您派单维修" in text
    await agent.click("#viewer-close")
    await expect(viewer).to_be_hidden()

    await agent.click("#search-btn")
    await agent.click("#search-mine")  # the chats this agent closed: the first one, read-only
    results = agent.locator("#search-results .history-open")
    await expect(results).to_have_count(1, timeout=10_000)
    await expect(agent.locator("#s-agent")).to_have_value("agent1")
    await agent.fill("#s-agent", "")
    await agent.fill("#s-text", "宽带")
    await agent.click("#search-submit")
    await expect(agent.locator("#search-note")).to_contain_text("找到 1 条", timeout=10_000)
    await expect(results.first).to_contain_text("宽带断了")
    await results.first.click()
    await expect(viewer).to_be_visible()  # (the hidden viewer still holds the first viewing's transcript)
    await expect(agent.locator("#viewer-transcript")).to_contain_text("已为您派单维修")
    await agent.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()
    await close_all(agent, customer)


async def test_a_supervisor_watches_whispers_sees_the_queue_by_skill_and_takes_over(browser, gateway_url, artifacts):
    base = gateway_url
    agent = await agent_page(browser, base)
    boss_page = await (await browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")).new_page()
    boss = await agent_page(browser, base, "super1", page=boss_page)
    customer = await customer_page(browser, base)
    await expect(agent.locator(".chat-tab")).to_have_count(1, timeout=10_000)
    await agent.locator(".chat-tab").first.click()

    await agent.select_option("#status-select", "away")  # nobody takes the next chats: they wait in the queue
    await expect(agent.locator("body")).to_have_attribute("data-status", "away")
    waiting = await customer_page(browser, base, "我要投诉网络信号差")
    english = await customer_page(browser, base, "I want to talk to a human agent")
    rows = boss.locator("#by-skill tbody tr[data-skill]")
    await expect(rows.first).to_be_visible(timeout=10_000)
    await expect(boss.locator('#by-skill tr[data-skill="zh"] td').nth(1)).to_have_text("1", timeout=10_000)
    await expect(boss.locator('#by-skill tr[data-skill="en"] td').nth(0)).to_have_text("英文")

    live = boss.locator("#live-chats .live-chat")
    await expect(live).to_have_count(1, timeout=12_000)
    await expect(live.first).to_contain_text("王小明")
    await boss.screenshot(path=str(artifacts / "supervisor-zh.png"))
    await live.first.locator(".watch-btn").click()
    await expect(boss.locator("#viewer")).to_be_visible()
    await expect(boss.locator("#whisper-form")).to_be_visible()
    await customer.fill("#chat-input", "我的话费怎么多扣了二十块")
    await customer.click("#chat-send")
    said = boss.locator("#viewer-transcript .entry-customer").last
    await expect(said).to_contain_text("多扣了二十块", timeout=10_000)
    await boss.fill("#whisper-input", "先核对本月账单明细")
    await boss.click("#whisper-send")
    whisper = agent.locator("#transcript .entry-whisper")
    await expect(whisper).to_contain_text("先核对本月账单明细", timeout=10_000)
    await expect(whisper).to_contain_text("主管悄悄话")
    await expect(boss.locator("#viewer-transcript .entry-whisper")).to_have_count(1)  # once, not per frame
    await boss.screenshot(path=str(artifacts / "supervisor-watch-zh.png"))

    boss.once("dialog", lambda dialog: dialog.accept())
    await boss.click("#takeover-btn")
    await expect(agent.locator(".toast", has_text="李主管 已接管会话")).to_be_visible(timeout=10_000)
    await expect(agent.locator(".chat-tab")).to_have_count(0, timeout=10_000)
    await expect(boss.locator(".chat-tab")).to_have_count(1, timeout=10_000)
    await expect(customer.locator(".msg-system").last).to_contain_text("李主管", timeout=10_000)
    await customer.wait_for_timeout(300)
    assert "先核对本月账单明细" not in await customer.locator("#chat-log, body").first.inner_text()
    await boss.click("#lang-switch")  # the same view in English
    await expect(boss.locator('#by-skill th[data-h="colLongest"]')).to_have_text("Longest wait")
    await expect(boss.locator("#search-btn")).to_have_text("Search history")
    await expect(boss.locator('#by-skill tr[data-skill="zh"] td').first).to_have_text("Chinese")
    await close_all(agent, boss, customer, waiting, english)
