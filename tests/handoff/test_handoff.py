"""The human side over HTTP and WebSockets on loopback: a customer reaches an agent and back,
assignment races, roles, a vanished agent, SLA clocks, transfer, priorities, closed hours, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from gateway import redisconn
from gateway.rkeys import deployment_keys
from handoff.agents import AgentStore
from handoff.config import Clock

LEVELS = ["非常满意", "满意", "一般", "不满意", "非常不满意"]


def is_(kind: str, **match: object):
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in match.items())


async def test_customer_reaches_an_agent_and_answers_the_survey(make_gateway, people, redis_client, key_prefix):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("帮我转人工客服")
    joined = await customer.expect(is_("agent_joined"))
    assert "王小明" in joined["text"]
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    detail = await agent.call("GET", f"/api/chats/{chat_id}")
    assert detail["profile"]["phone"] == "138****8000" and detail["profile"]["plan"]
    first = next(e for e in detail["transcript"] if e["kind"] == "customer")
    assert first["text"] == "帮我转人工客服" and first["nlu"]["intent"] == "request_human"
    assert any(e["kind"] == "bot" for e in detail["transcript"])  # the bot's turns are in the transcript

    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，我是王小明，请问有什么可以帮您？"})
    said = await customer.expect(lambda f: f.get("from") == "agent")
    assert said["text"].startswith("您好，我是王小明") and said["agent"] == "王小明"
    await customer.send("我的宽带一直掉线")
    echo = await agent.expect(is_("message", chat=chat_id))  # the agent's own message, echoed to the console
    assert echo["entry"]["kind"] == "agent" and echo["entry"]["agent"] == "王小明"
    heard = await agent.expect(is_("message", chat=chat_id))
    assert heard["entry"] == {"kind": "customer", "text": "我的宽带一直掉线", "at": heard["entry"]["at"]}
    await agent.call("POST", f"/api/chats/{chat_id}/notes", {"text": "内部备注：疑似光猫故障"})
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    await customer.expect(is_("agent_left"))
    survey = await customer.expect(lambda f: f.get("from") == "bot" and "打分" in f.get("text", ""))
    assert [b["title"] for b in survey["buttons"]] == LEVELS
    await customer.send(survey["buttons"][1]["payload"])  # 满意
    await customer.expect(lambda f: f.get("from") == "bot" and "意见或建议" in f["text"])
    await customer.send("处理得很快")
    await customer.expect(lambda f: f.get("from") == "bot" and "感谢您的反馈" in f["text"])
    ((_, fields),) = await redis_client.xrange(f"{key_prefix}{{handoff}}:surveys")
    survey_entry = json.loads(fields[b"e"])
    assert survey_entry["score"] == 80 and survey_entry["level"] == "satisfied" and survey_entry["agent"] == "agent1"
    assert survey_entry["channel"] == "webchat" and survey_entry["skills"] == ["zh"]
    stored = await redis_client.hget(f"{key_prefix}{{handoff}}:survey:{chat_id}", "comment")
    assert b"\xe5\xa4\x84" not in stored  # the customer's words are encrypted at rest
    assert json.loads(deployment_keys(key_prefix).unseal(stored)) == "处理得很快"
    seen = []
    while not customer.frames.empty():
        seen.append(customer.frames.get_nowait())
    assert not any("内部备注" in f.get("text", "") for f in seen)  # notes never reach the customer
    transcript = (await agent.call("GET", f"/api/chats/{chat_id}"))["transcript"]
    assert any(e["kind"] == "note" for e in transcript) and any(e.get("event") == "closed" for e in transcript)


async def test_two_agents_accept_the_same_chat_at_once(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1, a2 = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    await a1.login()
    await a2.login()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    queued = await customer.expect(lambda f: f.get("from") == "bot")
    assert "排在第1位" in queued["text"]
    chat_id = (await a1.call("GET", "/api/queue"))["chats"][0]["id"]
    results = await asyncio.gather(a1.raw("POST", f"/api/chats/{chat_id}/accept"),
                                   a2.raw("POST", f"/api/chats/{chat_id}/accept"))  # fmt: skip
    assert sorted(status for status, _ in results) == [200, 409]
    loser = next(body for status, body in results if status == 409)
    assert loser == {"error": "chat already taken", "error_zh": "会话已被其他坐席接起"}
    winner = next(a for a, (status, _) in zip((a1, a2), results, strict=True) if status == 200)
    assert [c["id"] for c in (await winner.call("GET", "/api/queue"))["mine"]] == [chat_id]
    await customer.expect(is_("agent_joined"))


async def test_authentication_roles_and_ownership(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    stranger = people("agent", gw.base, "agent1", "wrong-password")
    status, body = await stranger.raw("POST", "/api/agent/login", {"name": "agent1", "password": "wrong-password"})
    assert status == 401 and body == {"error": "wrong name or password", "error_zh": "账号或密码错误"}
    assert (await stranger.raw("GET", "/api/queue"))[0] == 401
    a1, a2 = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    boss = people("agent", gw.base, "super1", "demo-super1")
    for a in (a1, a2, boss):
        await a.login()
    status, body = await a1.raw("POST", "/api/agent/status", {"status": "away"}, csrf=False)
    assert status == 403 and "CSRF" in body["error"]
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    chat_id = (await a1.call("GET", "/api/queue"))["chats"][0]["id"]
    await a1.call("POST", f"/api/chats/{chat_id}/accept")
    assert (await a2.raw("POST", f"/api/chats/{chat_id}/messages", {"text": "hi"}))[0] == 403
    assert (await a2.raw("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"}))[0] == 403
    assert (await a2.raw("GET", f"/api/chats/{chat_id}"))[0] == 403
    assert (await a1.raw("POST", f"/api/chats/{chat_id}/messages", {"text": ""}))[0] == 400
    assert (await a1.raw("POST", f"/api/chats/{chat_id}/close", {"disposition": "bored"}))[0] == 400
    assert "agents" not in await a1.call("GET", "/api/queue")
    overview = await boss.call("GET", "/api/queue")
    loads = {a["name"]: a["load"] for a in overview["agents"]}
    assert loads == {"agent1": 1, "agent2": 0, "super1": 0} and overview["breaches"] == []
    await a1.call("POST", "/api/agent/logout")
    assert (await a1.raw("GET", "/api/queue"))[0] == 401


async def test_demo_accounts_are_refused_in_production(make_gateway, people, redis_url, key_prefix):
    gw = await make_gateway(server={"production": True})
    client = redisconn.client(redis_url)
    store = AgentStore(client, deployment_keys(key_prefix))
    assert await store.all() == []  # production creates no demo agents
    await store.add("demo1", "demo-password", demo=True)
    await store.add("real1", "real-password", skills=("zh",))
    await client.aclose()
    status, body = await people("agent", gw.base, "x", "y").raw(
        "POST", "/api/agent/login", {"name": "demo1", "password": "demo-password"})  # fmt: skip
    assert status == 403 and "demo" in body["error"]
    await people("agent", gw.base, "real1", "real-password").login()


async def test_a_vanished_agents_chat_goes_back_to_the_front(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(disconnect_grace=0.5, restart_grace=0))
    a1, a2 = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    await a1.login()
    await a1.connect()
    await a2.login()
    await a2.call("POST", "/api/agent/status", {"status": "away"})
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await a1.expect(is_("assigned")))["chat"]["id"]
    await customer.expect(is_("agent_joined"))
    await a2.connect()
    await a2.call("POST", "/api/agent/status", {"status": "online"})
    await a1.disconnect()  # the agent's browser goes away mid-chat
    lost = await customer.expect(is_("agent_left"), timeout=5)
    assert "连接中断" in lost["text"]
    again = await a2.expect(is_("assigned"), timeout=5)
    assert again["chat"]["id"] == chat_id
    joined = await customer.expect(is_("agent_joined"))
    assert "Lisa Chen" in joined["text"]
    # the agent hears of the assignment first; the transcript entry follows a moment later
    for _ in range(100):
        detail = await a2.call("GET", f"/api/chats/{chat_id}")
        events = [e["event"] for e in detail["transcript"] if e["kind"] == "event" and e.get("event") in (
            "assigned", "agent_lost")]  # fmt: skip
        if len(events) >= 3:
            break
        await asyncio.sleep(0.02)
    assert events == ["assigned", "agent_lost", "assigned"]


async def test_sla_clocks_warn_breach_and_escalate(make_gateway, people, handoff_config):
    clocks = {**handoff_config.clocks, "pickup": Clock(0.3, 0.6), "first_reply": Clock(0.3, 0.6)}
    gw = await make_gateway(handoff_config.replace(push=False, clocks=clocks))
    boss = people("agent", gw.base, "super1", "demo-super1")
    await boss.login()
    await boss.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("你们的网络太差了，我要投诉")  # a network complaint: needs the network skill
    chat = (await boss.expect(is_("queue_add")))["chat"]
    chat_id = chat["id"]
    assert chat["skills"] == ["zh", "network"]
    assert {c["clock"] for c in chat["sla"]} == {"pickup", "complaint_first_response"}
    warning = await boss.expect(is_("sla_warning", chat=chat_id), timeout=3)
    assert warning["clock"] == "pickup"
    breach = await boss.expect(is_("sla_breach", chat=chat_id), timeout=3)
    assert breach["clock"] == "pickup"
    detail = await boss.call("GET", f"/api/chats/{chat_id}")
    assert detail["skills"] == ["zh"]  # escalated: any Chinese-speaking agent may take it
    assert any(e.get("event") == "sla_breach" for e in detail["transcript"])
    assert (await boss.call("GET", "/api/queue"))["breaches"][0]["clock"] == "pickup"
    await boss.call("POST", f"/api/chats/{chat_id}/accept")
    breach = await boss.expect(is_("sla_breach", chat=chat_id, clock="first_reply"), timeout=3)
    async with boss.session.get(f"{gw.base}/metrics") as resp:
        metrics = await resp.text()
    assert 'handoff_sla_breaches_total{clock="pickup"} 1.0' in metrics
    assert 'handoff_sla_breaches_total{clock="first_reply"} 1.0' in metrics


async def test_transfer_to_an_agent_and_to_a_skill(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1, a2 = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    for a in (a1, a2):
        await a.login()
        await a.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    chat_id = (await a1.call("GET", "/api/queue"))["chats"][0]["id"]
    await a1.call("POST", f"/api/chats/{chat_id}/accept")
    canned = await a1.call("GET", f"/api/chats/{chat_id}/canned")
    assert canned[0]["text"] == "您好，我是客服王小明，很高兴为您服务。请问有什么可以帮您？"
    await a1.call("POST", f"/api/chats/{chat_id}/transfer", {"to_agent": "agent2", "note": "账单问题，请跟进"})
    await a1.expect(is_("chat_removed", chat=chat_id))
    assert (await a2.expect(is_("assigned")))["chat"]["id"] == chat_id
    assert (
        "Lisa Chen"
        in (await customer.expect(lambda f: f.get("type") == "agent_joined" and "Lisa" in f["text"]))["text"]
    )
    assert (await a1.raw("POST", f"/api/chats/{chat_id}/messages", {"text": "hi"}))[0] == 403
    await a2.call("POST", f"/api/chats/{chat_id}/transfer", {"to_skill": "network", "note": ""})
    chat = (await a2.call("GET", "/api/queue"))["chats"]
    assert chat == []  # agent2 lacks the network skill: it no longer sees it
    queued = (await a1.call("GET", "/api/queue"))["chats"]
    assert queued[0]["id"] == chat_id and queued[0]["skills"] == ["zh", "network"]
    assert (await a2.raw("POST", f"/api/chats/{chat_id}/accept"))[0] == 403


async def test_priority_complaints_and_urgency_go_first(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1 = people("agent", gw.base, "agent1", "demo-agent1")
    await a1.login()
    calm = people("customer", gw.base, "13800138006")
    await calm.connect()
    await calm.send("转人工")
    await calm.expect(lambda f: f.get("from") == "bot")
    angry = people("customer", gw.base, "13800138004")
    await angry.connect()
    await angry.send("你们乱扣费太过分了，我要投诉到工信部！！")
    await angry.expect(lambda f: f.get("from") == "bot" and "投诉单号" in f["text"])
    chats = (await a1.call("GET", "/api/queue"))["chats"]
    assert [c["reason"] for c in chats] == ["complaint", "request_human"]
    assert chats[0]["complaint_type"] == "business" and chats[0]["urgency"] >= 2 and chats[0]["ticket"]


async def test_outside_service_hours_the_customer_leaves_a_message(make_gateway, people, handoff_config,
                                                                  redis_client, key_prefix):  # fmt: skip
    gw = await make_gateway(handoff_config.replace(days=()))
    a1 = people("agent", gw.base, "agent1", "demo-agent1")
    await a1.login()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    reply = await customer.expect(lambda f: f.get("from") == "bot")
    assert "不在人工客服服务时间内" in reply["text"]
    await customer.send("明天上午请给我回电话，宽带的事")
    assert "留言已记录" in (await customer.expect(lambda f: f.get("from") == "bot"))["text"]
    assert await redis_client.xlen(f"{key_prefix}{{handoff}}:callbacks") == 2
    assert (await a1.call("GET", "/api/queue"))["chats"] == []
    # the agents see the callback task (customer masked) and answer it on the customer's own channel
    (task,) = (await a1.call("GET", "/api/callbacks"))["callbacks"]
    assert task["customer"] == "138****8000" and task["channel"] == "webchat" and task["status"] == "closed"
    assert [m["text"] for m in task["messages"]] == ["明天上午请给我回电话，宽带的事"] and task["handled"] is None
    assert (await a1.raw("POST", f"/api/callbacks/{task['id']}/reply", {"text": " "}))[0] == 400
    assert (await a1.raw("POST", "/api/callbacks/CB-nope/done", {}))[0] == 404
    done = await a1.call("POST", f"/api/callbacks/{task['id']}/reply", {"text": "您好，明天上午十点给您回电。"})
    assert done["handled"]["agent"] == "王小明" and done["handled"]["reply"] is True
    answer = await customer.expect(lambda f: f.get("from") == "agent")
    assert answer["text"] == "您好，明天上午十点给您回电。"
    assert (await a1.raw("POST", f"/api/callbacks/{task['id']}/done", {}))[0] == 409  # handled once
    assert (await a1.call("GET", "/api/callbacks"))["callbacks"] == []
    assert [t["id"] for t in (await a1.call("GET", "/api/callbacks?all=1"))["callbacks"]] == [task["id"]]


async def test_agents_cli(redis_url, key_prefix):
    env = {**os.environ, "REDIS_URL": redis_url, "GATEWAY_REDIS_KEY_PREFIX": key_prefix}
    add = subprocess.run([sys.executable, "-m", "gateway", "agents", "add", "zhang", "--role", "agent", "--skills",
                          "network,zh", "--password-stdin"], input="a-long-password\n", capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert add.returncode == 0, add.stderr
    listed = subprocess.run([sys.executable, "-m", "gateway", "agents", "list"], capture_output=True, text=True,
                            env=env, timeout=60)  # fmt: skip
    assert "zhang" in listed.stdout and "network,zh" in listed.stdout
    command = [sys.executable, "-m", "gateway", "agents", "add", "li", "--password-stdin"]
    short = subprocess.run(command, input="short\n", capture_output=True, text=True, env=env, timeout=60)
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    client = redisconn.client(redis_url)
    agent = await AgentStore(client, deployment_keys(key_prefix)).verify("zhang", "a-long-password")
    await client.aclose()
    assert agent is not None and agent.skills == ("network", "zh") and not agent.demo


async def test_queue_position_updates_and_typing_both_ways(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1 = people("agent", gw.base, "agent1", "demo-agent1")
    await a1.login()
    await a1.connect()
    first, second = people("customer", gw.base), people("customer", gw.base, "13800138006")
    for c in (first, second):
        await c.connect()
        await c.send("转人工")
    told = await second.expect(lambda f: f.get("from") == "bot")
    assert "排在第2位" in told["text"]
    queue = (await a1.call("GET", "/api/queue"))["chats"]
    await a1.call("POST", f"/api/chats/{queue[0]['id']}/accept")
    moved = await second.expect(is_("queued"))
    assert moved["position"] == 1 and "排在第1位" in moved["text"]
    await first.ws.send_json({"type": "typing"})
    typing = await a1.expect(is_("typing", chat=queue[0]["id"]))
    assert typing["from"] == "customer"
    await a1.ws.send_json({"type": "typing", "chat": queue[0]["id"]})
    assert (await first.expect(is_("typing")))["from"] == "agent"
