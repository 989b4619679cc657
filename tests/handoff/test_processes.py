"""Chats survive a gateway restart; customer and agent on two gateway processes sharing one Redis."""

from __future__ import annotations

from tests.handoff.conftest import WebCustomer
from tests.handoff.test_handoff import is_


async def test_restart_with_chats_queued_and_assigned(make_gateway, people, handoff_config):
    config = handoff_config.replace(push=False, disconnect_grace=30)
    first = await make_gateway(config)
    agent = people("agent", first.base, "agent1", "demo-agent1")
    await agent.login()
    served, waiting = people("customer", first.base), people("customer", first.base, "13800138001")
    for c in (served, waiting):
        await c.connect()
        await c.send("转人工")
        await c.expect(lambda f: f.get("from") == "bot")
    queue = (await agent.call("GET", "/api/queue"))["chats"]
    served_id = next(c["id"] for c in queue if c["customer"] == "138****8000")
    await agent.call("POST", f"/api/chats/{served_id}/accept")
    await served.close()
    await waiting.close()
    await first.close()  # the process goes away (graceful: SIGTERM); Redis keeps the state

    second = await make_gateway(config)
    again = people("agent", second.base, "agent1", "demo-agent1")
    await again.login()
    await again.connect()
    view = await again.call("GET", "/api/queue")
    assert [c["id"] for c in view["mine"]] == [served_id]
    assert [c["customer"] for c in view["chats"]] == ["138****8001"]
    back = people("customer", second.base)
    back.visitor, back.token, back._n = served.visitor, served.token, served._n  # the same visitor reconnects
    await back.connect()
    await back.send("刚才网断了，还在吗？")
    heard = await again.expect(is_("message", chat=served_id))
    assert heard["entry"]["text"] == "刚才网断了，还在吗？"
    await again.call("POST", f"/api/chats/{served_id}/messages", {"text": "还在的，请讲"})
    assert (await back.expect(lambda f: f.get("from") == "agent"))["text"] == "还在的，请讲"


async def test_customer_and_agent_on_different_processes(make_gateway, people):
    one, two = await make_gateway(), await make_gateway()
    agent = people("agent", two.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer: WebCustomer = people("customer", one.base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(is_("agent_joined"))
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，请讲"})
    assert (await customer.expect(lambda f: f.get("from") == "agent"))["text"] == "您好，请讲"
    await customer.send("我的账单不对")
    heard = await agent.expect(lambda f: f["type"] == "message" and f["entry"]["kind"] == "customer")
    assert heard["entry"]["text"] == "我的账单不对"


async def test_queued_chats_survive_a_redis_restart(aiohttp_server, make_settings, nlu_engine, handoff_config,
                                                    people, tmp_path):  # fmt: skip
    """The embedded Redis (AOF) is stopped with its gateway and started again by the next one."""
    from gateway.app import create_app
    from tests.handoff.conftest import SECRET

    settings = make_settings(webchat={"token_secret": SECRET}, server={"data_dir": str(tmp_path / "own")},
                             redis={"url": "", "appendfsync": "always"})  # fmt: skip
    config = handoff_config.replace(push=False)
    first = await aiohttp_server(create_app(settings, nlu=nlu_engine, handoff_config=config))
    base = str(first.make_url("")).rstrip("/")
    agent = people("agent", base, "agent1", "demo-agent1")
    await agent.login()
    customer = people("customer", base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    queued = (await agent.call("GET", "/api/queue"))["chats"]
    assert len(queued) == 1
    await customer.close()
    await first.close()  # the gateway and its embedded Redis stop

    second = await aiohttp_server(create_app(settings, nlu=nlu_engine, handoff_config=config))
    again = people("agent", str(second.make_url("")).rstrip("/"), "agent1", "demo-agent1")
    await again.login()
    assert [c["id"] for c in (await again.call("GET", "/api/queue"))["chats"]] == [queued[0]["id"]]
