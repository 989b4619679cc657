"""The incident room in real Chromium: a supervisor signs in, reports an incident with the form, moves it through
its stages with the buttons (a stale button after another supervisor's move shows the 409 in Chinese), edits the
customer notice (a REST customer gets it at once), gives a department member a task (overdue: among the room's
reminders), broadcasts the notice by SMS (its progress per channel), reads the district table and the sentiment,
sets a goodwill offer, adds a note, fetches the review as Markdown and HTML, accepts an early warning proposed by the
detector, and reads it all in English on the switch."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp

from gateway import redisconn
from gateway.rkeys import deployment_keys
from gateway.security import mint_customer_token
from handoff.incidents.config import DetectorConfig
from handoff.incidents.detector import Counts, Detector
from handoff.incidents.web import DESK
from tests.browser.shots import screenshots_dir
from tests.handoff.conftest import SECRET, AgentClient


async def ask(base: str, text: str) -> str:
    body = {"sender": "b1", "message": text, "metadata": {"token": mint_customer_token("13800138000", SECRET)}}
    async with aiohttp.ClientSession() as session, session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
        return "\n".join(r["text"] for r in await resp.json())


async def test_incident_room(browser, aiohttp_server, make_settings, nlu_engine, redis_url, key_prefix, artifacts,
                             tmp_path, monkeypatch):  # fmt: skip
    from gateway.app import create_app

    (tmp_path / "incidents.yml").write_text(
        'broadcast: {quiet_hours: ["00:00", "00:00"]}\n'
        "tasks: {departments: {network_ops: {zh: 网络运维部, en: Network operations, members: [王工, 李工]}}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("INCIDENTS_CONFIG", str(tmp_path / "incidents.yml"))  # no quiet hours while it runs

    server = await aiohttp_server(create_app(make_settings(webchat={"token_secret": SECRET}), nlu=nlu_engine))
    base = str(server.make_url("")).rstrip("/")
    page = await browser.new_page(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(base + "/incidents")
    await page.fill("#login-name", "super1")
    await page.fill("#login-password", "demo-super1")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert await page.text_content("h1") == "重大事件指挥室"
    assert "暂无事件" in (await page.text_content("#list") or "")

    # report one with the form
    await page.fill("#new-title", "台风致朝阳区基站退服")
    await page.select_option("#new-category", "natural_disaster")
    await page.select_option("#new-severity", "2")
    await page.fill("#new-districts", "朝阳区，海淀区")
    await page.check("#new-services input[value=mobile]")
    await page.click("#new-form button[type=submit]")
    await page.wait_for_selector("#record:not([hidden])")
    incident_id = (await page.text_content("#r-title") or "").split(" · ")[0]
    assert incident_id.startswith("INC")
    assert await page.text_content("dd[data-fact=c_stage]") == "已上报"
    assert await page.text_content("dd[data-fact=f_districts]") == "朝阳区, 海淀区"
    assert [await b.get_attribute("data-to") for b in await page.locator("#stages button").all()] == [
        "assessed",
        "closed",
    ]

    # the stages, by the buttons
    await page.click("#stages button[data-to=assessed]")
    await page.locator("dd[data-fact=c_stage]", has_text="已评估").wait_for()
    assert "故障通知" in await ask(base, "网络是不是出故障了")
    # another supervisor moves it meanwhile: this page's button is stale, the 409 is shown in Chinese. The page's
    # poll (every 4 s: the list first, then the record) is held meanwhile, or it would redraw the buttons first
    released = asyncio.Event()

    async def hold(route: Any) -> None:
        await released.wait()
        await route.continue_()

    await page.route(re.compile(r".*/api/incidents$"), hold)
    other = AgentClient(base, "super1", "demo-super1")
    await other.login()
    await other.call("POST", f"/api/incidents/{incident_id}/transition", {"to": "plan"})
    await other.close()
    await page.click("#stages button[data-to=plan]")
    released.set()
    await page.locator("#stage-error", has_text="不能变为").wait_for()
    await page.unroute(re.compile(r".*/api/incidents$"), hold)
    assert await page.text_content("dd[data-fact=c_stage]") == "已制定方案"
    await page.click("#stages button[data-to=acting]")
    await page.locator("dd[data-fact=c_stage]", has_text="处置中").wait_for()

    # the notice editor: recovery time and the Chinese text, at once in the bot's answers
    eta = time.localtime(time.time() + 3 * 3600)
    await page.fill("#eta", time.strftime("%Y-%m-%dT%H:%M", eta))
    await page.fill("#notice-zh", "朝阳区部分基站因台风退服，抢修中。")
    await page.click("#notice-form button[type=submit]")
    await page.locator("#notice-note", has_text="已保存").wait_for()
    answer = await ask(base, "手机没信号了")
    assert answer.startswith("朝阳区部分基站因台风退服，抢修中。") and "前恢复" in answer
    # a task for a department, overdue, then done
    await page.select_option("#task-department", "network_ops")
    await page.select_option("#task-assignee", "王工")  # a member of the department (config/incidents.yml)
    await page.fill("#task-title", "恢复37个基站")
    await page.fill("#task-deadline", time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() - 120)))
    await page.click("#task-form button[type=submit]")
    task = page.locator("#tasks li[data-state=open]", has_text="恢复37个基站")
    await task.wait_for()
    assert "网络运维部 · 王工" in (await task.text_content() or "") and await task.locator(".late").count() == 1
    await server.app[DESK].remind()  # (the worker looks every 30 s) the overdue task is among the room's reminders
    reminder = page.locator("#reminders li[data-type=incident_task_overdue]", has_text="恢复37个基站")
    await reminder.wait_for(timeout=10_000)  # the page polls
    assert "网络运维部的任务“恢复37个基站”已逾期" in (await reminder.text_content() or "")
    await task.locator("button.done-btn").click()
    await page.locator("#tasks li[data-state=done]", has_text="super1").wait_for()
    # the notice by SMS (the demo's logging provider): one invalid number counted, the rest done
    assert "尚未群发" in (await page.text_content("#broadcasts") or "")
    await page.fill("#broadcast-numbers", "13800138000\n13800138001, not-a-number")
    await page.click("#broadcast-form button[type=submit]")
    await page.locator("#broadcasts li[data-state=sending]").wait_for()
    done = page.locator("#broadcasts li[data-state=done]", has_text="共 2 位，已排队 2")
    await done.wait_for(timeout=15_000)  # the page re-reads the record every few seconds
    assert "无效 1" in (await done.text_content() or "")
    assert "短信：共 2，已排队 2" in (await done.locator("li[data-channel=sms]").text_content() or "")
    # the room's metrics: the district table (two notices in 朝阳区 so far), the sentiment
    row = page.locator("#districts tr[data-district=朝阳区]")
    assert [c.strip() for c in await row.locator("td").all_text_contents()][2:] == ["2", "0"]
    assert "客户情绪（收到通知的 2 条消息）" in (await page.text_content("#sentiment") or "")
    await page.fill("#note-text", "网络部已派出应急通信车")
    await page.click("#note-form button[type=submit]")
    await page.locator("#timeline li", has_text="应急通信车").wait_for()
    await page.select_option("#note-publish", "en")  # a status update pushed to the English notice
    await page.fill("#note-text", "Emergency vehicles are on site.")
    await page.click("#note-form button[type=submit]")
    await page.locator("#timeline li", has_text="published as the en notice").wait_for()
    assert await page.input_value("#notice-en") == "Emergency vehicles are on site."
    timeline = await page.locator("#timeline li").all_text_contents()
    assert len(timeline) == 10 and "已上报" in timeline[0] and "super1" in timeline[0]
    # a goodwill offer, granted when the incident closes
    assert await page.text_content("#compensation") == "未设置补偿"
    await page.select_option("#comp-kind", "data")
    await page.fill("#comp-amount", "500")
    await page.click("#compensation-form button[type=submit]")
    await page.locator("#compensation[data-state=planned]", has_text="500 MB，关联投诉的客户").wait_for()
    assert await page.is_hidden("#compensation-form")
    await page.fill("#lessons", "备用电源不足")
    await page.click("#lessons-form button[type=submit]")
    await page.locator("#timeline li", has_text="备用电源不足").wait_for()
    review = await page.evaluate("""async () => {
        const r = await fetch(document.getElementById('review-md').href, {credentials: 'same-origin'});
        return [r.status, await r.text()];
    }""")
    assert review[0] == 200 and review[1].startswith("# 事件总结报告") and "备用电源不足" in review[1]
    html = await page.evaluate("""async () => {
        const r = await fetch(document.getElementById('review-html').href, {credentials: 'same-origin'});
        const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
        return [r.status, doc.querySelector('h1').textContent, doc.querySelectorAll('table').length];
    }""")
    assert html[0] == 200 and html[1].startswith("事件总结报告") and html[2] >= 2
    await page.click("#list tbody tr")  # the counters, read again
    await page.locator("[data-kpi=k_notices] .kpi-value", has_text="2").wait_for()

    # an early warning: a surge the detector proposes, accepted from the room
    client = redisconn.client(redis_url)
    counts = Counts()
    for i in range(30):
        counts.add("丰台区", "sms", "complaint", f"丰台区没信号 {i}")
    await counts.flush(client, deployment_keys(key_prefix))
    assert await Detector(client, deployment_keys(key_prefix), DetectorConfig()).evaluate()
    await client.aclose()
    proposal = page.locator(".proposal", has_text="丰台区").first
    await proposal.wait_for(timeout=10_000)  # the page polls
    assert "30 条网络咨询/投诉" in (await proposal.text_content() or "")
    await page.screenshot(path=str(screenshots_dir() / "incidents-zh.png"), full_page=True)  # the README's
    await proposal.locator("button.accept").click()
    await page.locator("#r-title", has_text="丰台区").wait_for()
    assert await page.text_content("dd[data-fact=f_source]") == "预警"

    # English
    await page.click("#lang-switch")
    assert await page.text_content("h1") == "Incident room"
    assert await page.text_content("dd[data-fact=c_stage]") == "Reported"
    assert "Move to: Assessed" in (await page.text_content("#stages") or "")
    assert "Acting" in (await page.text_content("#list") or "")
    await page.screenshot(path=str(artifacts / "incidents-en.png"), full_page=True)
    assert errors == []
