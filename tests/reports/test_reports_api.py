"""The reports end to end on a real gateway over loopback: a customer's conversation with the bot and one with an
agent (REST channel), the survey, then the supervisor's JSON and CSV reports, the inspection and its override;
the roles and the bad-input errors."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from reports_helpers import Agent

from gateway.app import create_app


@pytest.fixture
async def gw(aiohttp_server, settings, nlu_engine):
    server = await aiohttp_server(create_app(settings, nlu=nlu_engine))
    server.base = str(server.make_url("")).rstrip("/")
    return server


async def say(agent: Agent, sender: str, text: str, n: int) -> list:
    status, body, _ = await agent.raw("POST", "/webhooks/rest/webhook",
                                      {"sender": sender, "message": text, "message_id": f"{sender}-{n}"})  # fmt: skip
    assert status == 200, body
    return body


async def test_a_day_of_one_gateway_in_the_reports(gw):
    agent, boss = Agent(gw.base, "agent1", "demo-agent1"), Agent(gw.base, "super1", "demo-super1")
    try:
        await agent.login()
        await agent.connect()
        await boss.login()
        await say(boss, "bot-only", "查询话费余额", 1)  # answered by the bot
        await say(boss, "to-human", "我要转人工客服", 1)
        chat = (await agent.frame("assigned"))["chat"]["id"]
        await agent.call("POST", f"/api/chats/{chat}/messages", {"text": "您好，请问有什么可以帮您？"})
        await agent.call("POST", f"/api/chats/{chat}/messages", {"text": "不知道，你自己看"})
        await agent.call("POST", f"/api/chats/{chat}/close", {"disposition": "resolved"})
        await say(boss, "to-human", "4", 2)  # the survey: 满意 (80)

        today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        q = f"?from={today}&to={today}"
        async with asyncio.timeout(10):  # the turns are added once a second
            while (levels := (await boss.call("GET", f"/api/reports/service_levels{q}"))["total"])["bot_answers"] < 3:
                await asyncio.sleep(0.2)
        assert levels["conversations"] == 2 and levels["bot_answers"] >= 1 and levels["bot_within_target"] == 1.0
        assert (levels["handoffs"], levels["pickups"], levels["handled"], levels["containment"]) == (1, 1, 1, 0.5)
        sat = await boss.call("GET", f"/api/reports/satisfaction{q}&group_by=agent")
        assert sat["total"]["surveys"] == 1 and sat["total"]["average"] == 80.0
        assert [(g["group"], g["average"]) for g in sat["groups"]] == [("agent1", 80.0)]
        quality = await boss.call("GET", f"/api/reports/quality{q}")
        assert quality["agent_names"]["agent1"] == {"zh": "王小明", "en": "Xiaoming Wang"}
        (inspected,) = quality["inspections"]
        assert inspected["chat"] == chat and inspected["agent"] == "agent1" and inspected["survey"] == 80
        items = {d["item"] for d in inspected["deductions"]}
        assert items == {"closing", "forbidden"}  # greeted, courteous, resolved, satisfied; rude once, no closing
        assert inspected["score"] == 70 and quality["agents"] == [{"agent": "agent1", "inspected": 1,
                                                                   "average": 70.0}]  # fmt: skip
        changed = await boss.call("POST", f"/api/reports/quality/{chat}/override",
                                  {"score": 85, "reason": "客户先辱骂坐席"})  # fmt: skip
        assert changed["score"] == 85 and changed["override_by"] == "super1"
        quality = await boss.call("GET", f"/api/reports/quality{q}")
        assert quality["agents"][0]["average"] == 85.0
        staffing = await boss.call("GET", f"/api/reports/staffing{q}")
        assert len(staffing["hours"]) == 24 and staffing["target"]["service_level"] == 0.8

        status, _, text = await boss.raw("GET", f"/api/reports/satisfaction{q}&group_by=agent&format=csv")
        assert status == 200 and text.startswith("\ufeffgroup,surveys,average") and "agent1,1,80.0" in text
        status, _, text = await boss.raw("GET", f"/api/reports/quality{q}&format=csv&table=inspections")
        assert status == 200 and chat in text and "forbidden phrase" in text

        # roles and bad input: an agent is refused; bad values are 400 naming the field, in both languages
        status, body, _ = await agent.raw("GET", f"/api/reports/quality{q}")
        assert status == 403 and body["error_zh"]
        for path, field in (("/api/reports/satisfaction?from=2026-02-30", "from"),
                            ("/api/reports/service_levels?group_by=agent", "group_by"),
                            ("/api/reports/staffing?agents=-1", "agents"),
                            ("/api/reports/quality?format=xml", "format")):  # fmt: skip
            status, body, _ = await boss.raw("GET", path)
            assert status == 400 and body["field"] == field and body["error_zh"], (path, body)
        status, body, _ = await boss.raw("POST", f"/api/reports/quality/{chat}/override", {"score": 101, "reason": "x"})
        assert status == 400 and body["field"] == "score"
        status, body, _ = await boss.raw("POST", "/api/reports/quality/nochat/override", {"score": 1, "reason": "x"})
        assert status == 404 and body["error_zh"]
        status, _, page = await boss.raw("GET", "/reports?lang=en")
        assert status == 200 and "vendor/echarts/echarts.min.js" in page
    finally:
        await agent.close()
        await boss.close()
