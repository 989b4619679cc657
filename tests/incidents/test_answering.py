"""While an incident is active: the notice on every channel (REST, web chat, SMS, Telegram — the providers' local
fakes), the estimated recovery as it changes, other districts and other requests untouched, network complaints
linked to the incident (no new case), and queue protection (the queue only when the customer asks again)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway import redisconn
from gateway.security import mint_customer_token
from tests.channels.conftest import eventually, http_sms_sections, telegram_sections
from tests.channels.test_sms import text_in
from tests.channels.test_telegram import Chat
from tests.conftest import one_server_only
from tests.handoff.conftest import SECRET
from tests.incidents.conftest import CHAOYANG, open_incident, rest, supervisor

ZHANG = "13800138000"  # 朝阳区
HAIDIAN = "13800138001"  # a customer elsewhere (海淀区 in the demo data)


def texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r["text"] for r in replies)


async def test_no_incident_no_notice_then_the_notice_with_its_recovery_time(make_gateway, people):
    gw = await make_gateway()
    token = mint_customer_token(ZHANG, SECRET)
    before = texts(await rest(gw.base, "r1", "网络是不是出故障了", token))
    assert "故障通知" not in before and "朝阳区" in before  # the ordinary network answer
    boss = await supervisor(people, gw.base)
    body = {"title": "台风", "category": "natural_disaster", "severity": 2, "districts": [CHAOYANG]}
    reported = await boss.call("POST", "/api/incidents", body, status=201)
    assert "故障通知" not in texts(await rest(gw.base, "r1", "网络是不是出故障了", token))  # reported: not yet told
    await boss.call("POST", f"/api/incidents/{reported['id']}/transition", {"to": "assessed"})
    notice = texts(await rest(gw.base, "r1", "网络是不是出故障了", token))
    assert "故障通知" in notice and "自然灾害" in notice and "恢复时间正在评估中" in notice
    eta = time.time() + 5 * 3600
    await boss.call("POST", f"/api/incidents/{reported['id']}/update", {"eta": eta})
    local = time.localtime(eta)  # the demo's bot time zone is Asia/Shanghai
    shown = texts(await rest(gw.base, "r1", "手机没信号了", token))
    assert "预计" in shown and "前恢复" in shown, shown
    await boss.call("POST", f"/api/incidents/{reported['id']}/update", {"notice_zh": "朝阳区基站因台风退服。"})
    custom = texts(await rest(gw.base, "r1", "手机没信号了", token))
    assert custom.startswith("朝阳区基站因台风退服。") and "预计" in custom and local.tm_year > 2000
    # another district, and another request, are answered as always
    elsewhere = texts(await rest(gw.base, "r2", "is there an outage in Haidian"))
    assert "notice" not in elsewhere.lower()
    assert "86.50" in texts(await rest(gw.base, "r1", "查话费", token))
    english = texts(await rest(gw.base, "r3", "is there an outage in Chaoyang"))
    assert "Service notice" in english and "Chaoyang District" in english
    stats = (await boss.call("GET", f"/api/incidents/{reported['id']}"))["incident"]["stats"]
    assert stats["notices"] == 4 and stats["notices:rest"] == 4
    await boss.call("POST", f"/api/incidents/{reported['id']}/transition", {"to": "closed"})
    assert "故障通知" not in texts(await rest(gw.base, "r1", "网络是不是出故障了", token))


async def test_the_district_asked_for_is_answered_with_the_notice(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    await open_incident(boss)
    asked = texts(await rest(gw.base, "anon", "网络是不是出故障了"))
    assert "区域" in asked and "故障通知" not in asked  # no account, no district named: the flow asks
    assert "故障通知" in texts(await rest(gw.base, "anon", "朝阳区"))


async def test_web_chat_sms_and_telegram_get_the_notice(gateways, http_sms, telegram_api, people):
    gw = await gateways(**http_sms_sections(http_sms), **telegram_sections(telegram_api),
                        webchat={"token_secret": SECRET})  # fmt: skip
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, "acting")
    web = people("customer", gw.base, ZHANG)
    await web.connect()
    await web.send("手机没信号了")
    said = await web.expect(lambda f: f.get("from") == "bot")
    assert "故障通知" in said["text"], said
    await text_in(gw, http_sms, "网络是不是出故障了")
    sms = (await http_sms.wait_messages(1))[-1]["text"]
    assert "故障通知" in sms and "朝阳区" in sms
    tg = (await Chat(gw, telegram_api, lang="en").say("is there an outage in Chaoyang"))[0]["text"]
    assert "Service notice" in tg
    stats = (await boss.call("GET", f"/api/incidents/{incident['id']}"))["incident"]["stats"]
    assert stats["notices:webchat"] == 1 and stats["notices:sms"] == 1 and stats["notices:telegram"] == 1


async def test_network_complaints_are_linked_to_the_incident_not_registered(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    token = mint_customer_token(ZHANG, SECRET)
    first = texts(await rest(gw.base, "c1", "投诉你们的信号太差", token))
    assert "故障通知" in first and incident["id"] in first and "不再单独生成投诉单" in first
    again = texts(await rest(gw.base, "c1", "我要投诉，家里网络断了好几个小时", token))
    assert "共2次" in again and incident["id"] in again
    named = texts(await rest(gw.base, "c2", "朝阳区网络信号很差"))  # no account; the district named
    assert incident["id"] in named
    detail = await boss.call("GET", f"/api/incidents/{incident['id']}")
    assert detail["linked"] == 2 and sorted(link["count"] for link in detail["links"]) == [1, 2]
    assert all("13800138000" not in str(link) for link in detail["links"])  # customers masked
    assert detail["incident"]["stats"]["complaints"] == 3 and detail["incident"]["stats"]["linked"] == 2
    assert (await boss.call("GET", "/api/cases"))["cases"] == []  # no ticket per customer
    assert (await boss.call("GET", "/api/queue"))["chats"] == []  # and nobody queued for it
    # a complaint of another kind, or from elsewhere, is registered as always
    other = texts(await rest(gw.base, "c3", "投诉你们的信号太差", mint_customer_token(HAIDIAN, SECRET)))
    assert "投诉单号" in other
    assert len((await boss.call("GET", "/api/cases"))["cases"]) == 1


async def test_queue_protection_asks_for_a_person_twice(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    token = mint_customer_token(ZHANG, SECRET)
    assert "故障通知" in texts(await rest(gw.base, "q1", "手机没信号了", token))
    protected = texts(await rest(gw.base, "q1", "转人工", token))
    assert "故障通知" in protected and "再次回复" in protected
    assert (await boss.call("GET", "/api/queue"))["chats"] == []
    insisted = texts(await rest(gw.base, "q1", "转人工", token))
    assert "故障通知" not in insisted
    queue = await eventually(lambda: _queued(boss), timeout=5)
    assert len(queue) == 1
    # a request for a person that has nothing to do with the incident goes straight to the queue
    await rest(gw.base, "q2", "转人工", mint_customer_token(HAIDIAN, SECRET))
    assert len(await eventually(lambda: _queued(boss, 2), timeout=5)) == 2
    stats = (await boss.call("GET", f"/api/incidents/{incident['id']}"))["incident"]["stats"]
    assert stats["deflected"] == 1 and stats["insisted"] == 1
    metrics = await eventually(lambda: _metrics(boss, incident["id"]), timeout=5)  # counts reach Redis each second
    assert metrics["inbound_last_hour"] == {CHAOYANG: 1} and metrics["queue"] == 2
    assert metrics["districts"][0] == {"district": CHAOYANG, "affected": True, "inbound_last_hour": 1, "notices": 2,
                                       "linked": 0}  # fmt: skip
    assert metrics["sentiment"]["total"] == 2


async def _queued(boss: Any, at_least: int = 1) -> list[dict[str, Any]] | None:
    chats = (await boss.call("GET", "/api/queue"))["chats"]
    return chats if len(chats) >= at_least else None


async def test_customers_linked_are_told_once_when_it_closes(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    web = people("customer", gw.base, ZHANG)
    await web.connect()
    await web.send("投诉你们的信号太差")
    linked = await web.expect(lambda f: f.get("from") == "bot")
    assert incident["id"] in linked["text"]
    await rest(gw.base, "c2", "朝阳区网络信号很差")
    await boss.call("POST", f"/api/incidents/{incident['id']}/transition", {"to": "closed"})
    told = await web.expect(lambda f: "恢复通知" in f.get("text", ""))
    assert incident["id"] in told["text"] and "朝阳区" in told["text"]
    stats = await eventually(lambda: _stats(boss, incident["id"], "followups", 2), timeout=5)
    assert stats["followups"] == 2
    later = texts(await rest(gw.base, "c2", "查话费"))  # REST cannot push: the follow-up comes with the next reply
    assert "恢复通知" in later
    await boss.call("POST", f"/api/incidents/{incident['id']}/transition", {"to": "reviewed"})
    await asyncio.sleep(0.3)
    assert (await _stats(boss, incident["id"], "followups"))["followups"] == 2  # once


async def test_a_change_on_one_process_reaches_the_others_at_once(make_gateway, people):
    one, two = await make_gateway(), await make_gateway()
    boss = await supervisor(people, one.base)
    incident = await open_incident(boss)
    token = mint_customer_token(ZHANG, SECRET)
    started = time.monotonic()
    await eventually(lambda: _notice_on(two.base, token), timeout=5)
    assert time.monotonic() - started < 3  # pub/sub, not the periodic re-read alone
    await boss.call("POST", f"/api/incidents/{incident['id']}/transition", {"to": "closed"})
    await eventually(lambda: _no_notice_on(two.base, token), timeout=5)


@one_server_only
async def test_no_active_incident_costs_a_turn_no_redis_round_trip(make_gateway, people, redis_url, key_prefix):
    gw = await make_gateway()
    token = mint_customer_token(ZHANG, SECRET)
    await rest(gw.base, "w0", "你好", token)  # warm up
    seen: list[str] = []
    monitor = asyncio.create_task(_monitor(redis_url, f"{key_prefix}{{incidents}}", seen))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    for i in range(10):
        for text in ("网络是不是出故障了", "查话费", "手机没信号了"):
            await rest(gw.base, f"w{i}", text, token)
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.2)
    per_turn = [c for c in seen if any(f"{{incidents}}:{k}" in c for k in ("seen", "insist", "links", "stats"))]
    assert per_turn == []
    rereads = [c for c in seen if c.startswith('"ZREVRANGE"')]
    assert len(rereads) <= 2 + elapsed / 5  # the worker's periodic re-read only, not one per turn (30 turns)
    # an active incident: now the turns write (the proof that the monitor sees them)
    boss = await supervisor(people, gw.base)
    await open_incident(boss)
    await rest(gw.base, "w0", "网络是不是出故障了", token)
    await eventually(lambda: any("{incidents}:seen" in c for c in seen), timeout=5)  # in the second's batch
    monitor.cancel()


async def _monitor(redis_url: str, needle: str, seen: list[str]) -> None:
    client = redisconn.client(redis_url)
    try:
        async with client.monitor() as m:
            async for command in m.listen():
                if needle in command.get("command", ""):
                    seen.append(command["command"])
    finally:
        await client.aclose()


async def _metrics(boss: Any, incident_id: str) -> dict[str, Any] | None:
    metrics = (await boss.call("GET", f"/api/incidents/{incident_id}"))["metrics"]
    return metrics if metrics["inbound_last_hour"].get(CHAOYANG) else None


async def _stats(boss: Any, incident_id: str, name: str, at_least: int = 1) -> dict[str, int] | None:
    stats = (await boss.call("GET", f"/api/incidents/{incident_id}"))["incident"]["stats"]
    return stats if stats.get(name, 0) >= at_least else None


async def _notice_on(base: str, token: str) -> bool:
    return "故障通知" in texts(await rest(base, "p1", "手机没信号了", token))


async def _no_notice_on(base: str, token: str) -> bool:
    return "故障通知" not in texts(await rest(base, "p1", "手机没信号了", token))


async def test_an_unsure_network_question_gets_the_notice_during_an_incident(make_gateway, people):
    gw = await make_gateway()
    unsure = "朝阳区手机没信号"  # the NLU's best guess is network_status, below its confidence threshold
    before = texts(await rest(gw.base, "u1", unsure))
    assert "故障通知" not in before
    boss = await supervisor(people, gw.base)
    await open_incident(boss)
    assert "故障通知" in texts(await rest(gw.base, "u2", unsure))
    assert "故障通知" not in texts(await rest(gw.base, "u3", "今天天气怎么样"))  # unsure about something else
