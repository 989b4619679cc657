"""The web chat widget in a real browser: open, send, see the reply, use a quick reply."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.browser


async def test_chat_in_the_widget(browser, gateway_url, artifacts):
    page = await browser.new_page(viewport={"width": 390, "height": 780}, locale="en-US")
    await page.goto(gateway_url)  # an English browser: the page is in English, the customer writes Chinese
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    await page.fill("#chat-input", "你好")
    await page.click("#chat-send")
    await expect(page.locator(".msg-customer").last).to_contain_text("你好")
    bot = page.locator(".msg-bot").last
    await expect(bot).to_contain_text("您好", timeout=10_000)
    chip = page.locator(".quick-reply", has_text="查话费余额").last
    await chip.click()
    await expect(page.locator(".msg-customer").last).to_contain_text("查话费余额")
    await expect(page.locator(".msg-bot").last).to_contain_text("话费余额", timeout=10_000)
    await page.screenshot(path=str(artifacts / "widget-phone.png"))
    await page.close()


async def test_reload_replays_the_conversation_and_english_switch(browser, gateway_url):
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(gateway_url + "?lang=zh")
    await expect(page.locator("#chat-status")).to_have_attribute("data-state", "open", timeout=10_000)
    await page.fill("#chat-input", "how much data do I have left")
    await page.press("#chat-input", "Enter")
    # not signed in: the bot asks for the number to verify before showing any account data
    await expect(page.locator(".msg-bot").last).to_contain_text("mobile number", timeout=10_000)
    await page.reload()  # same visitor cookie: the conversation comes back
    await expect(page.locator(".msg-bot").last).to_contain_text("mobile number", timeout=10_000)
    assert await page.get_attribute("#chat-input", "placeholder") == "请输入您的问题…"
    await page.click("#lang-switch")
    assert await page.get_attribute("#chat-input", "placeholder") == "Type your question…"
    await expect(page.locator("#chat-send")).to_have_text("Send")
    await context.close()
