"""The goodwill offer at close, through the demo back end: to the customers whose complaints were linked (their
follow-up says so) or to every customer of the districts; once per customer — a grant cut off after the back end
took it is not given twice; shown in the review; bad offers refused with 400/409. And the back end's new operations
over the HTTP contract (``HttpBSS`` against the reference server)."""

from __future__ import annotations

from typing import Any

import pytest

from bots.bss.base import Rejected
from bots.bss.demo import DemoBSS
from bots.bss.http import HttpBSS
from bots.bss.server import create_bss_app
from gateway.rkeys import deployment_keys
from gateway.security import mint_customer_token
from tests.channels.conftest import eventually
from tests.handoff.conftest import SECRET
from tests.incidents.conftest import CHAOYANG, open_incident, rest, supervisor

CHAOYANG_PHONES = ["13800138000", "13800138003", "13800138009", "13800138010", "13800138012"]


async def _general_mb(bss: DemoBSS, phone: str) -> int:
    return next(b.total_mb for b in await bss.usage(phone) if b.bucket == "general")


async def _offer(boss: Any, incident_id: str, state: str = "done") -> dict[str, Any] | None:
    found = (await boss.call("GET", f"/api/incidents/{incident_id}"))["compensation"]
    return found if found and found["state"] == state else None


async def test_linked_customers_get_the_data_bonus_once(make_gateway, people, redis_client, key_prefix):
    gw = await make_gateway()
    bss = DemoBSS(redis_client, deployment_keys(key_prefix))
    before = await _general_mb(bss, "13800138000")
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, "acting")
    path = f"/api/incidents/{incident['id']}"
    replies = await rest(gw.base, "v1", "投诉你们的信号太差", mint_customer_token("13800138000", SECRET))
    assert any("故障事件" in r.get("text", "") for r in replies)  # linked
    await rest(gw.base, "v2", "朝阳区网络信号很差，我要投诉")  # linked, but no number: no gesture
    status, bad = await boss.raw("POST", f"{path}/compensation", {"kind": "bitcoin", "amount": 1})
    assert status == 400 and bad["field"] == "kind" and bad["error_zh"]
    assert (await boss.raw("POST", f"{path}/compensation", {"kind": "data", "amount": -5}))[0] == 400
    offer = await boss.call("POST", f"{path}/compensation", {"kind": "data", "amount": 1024}, status=201)
    assert offer["compensation"]["state"] == "planned" and offer["compensation"]["scope"] == "linked"
    status, again = await boss.raw("POST", f"{path}/compensation", {"kind": "credit", "amount": 5})
    assert status == 409 and again["error_zh"]
    # a grant cut off after the back end took it (a process stopped in between): claimed, the order made
    await redis_client.set(deployment_keys(key_prefix).ik("goodwill", incident["id"], "13800138000"), "pending")
    await bss.goodwill("13800138000", "data", 1024.0, "cut off", f"goodwill:{incident['id']}:13800138000")
    await boss.call("POST", f"{path}/transition", {"to": "closed"})
    done = await eventually(lambda: _offer(boss, incident["id"]), timeout=10)
    assert (done["total"], done["granted"], done["failed"]) == (1, 1, 0)
    assert await _general_mb(bss, "13800138000") == before + 1024  # once, not twice
    follow_up = await rest(gw.base, "v1", "你好", mint_customer_token("13800138000", SECRET))
    assert any("恢复通知" in r["text"] and "赠送1024MB流量" in r["text"] for r in follow_up)
    review = await boss.call("GET", f"{path}/review")
    assert review["compensation"]["granted"] == 1
    async with boss.session.get(f"{boss.base}{path}/review?format=md&lang=en") as resp:
        assert "1024 MB of data (customers with linked complaints)" in await resp.text()


async def test_every_customer_of_the_district_gets_the_credit(make_gateway, people, redis_client, key_prefix):
    gw = await make_gateway()
    bss = DemoBSS(redis_client, deployment_keys(key_prefix))
    before = {p: (await bss.balance(p)).balance for p in [*CHAOYANG_PHONES, "13800138001"]}
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, "acting")
    path = f"/api/incidents/{incident['id']}"
    await boss.call("POST", f"{path}/transition", {"to": "closed"})
    body = {"kind": "credit", "amount": 5, "scope": "district"}
    await boss.call("POST", f"{path}/compensation", body, status=201)  # after the close: granted at once
    done = await eventually(lambda: _offer(boss, incident["id"]), timeout=10)
    assert (done["total"], done["granted"], done["already"]) == (len(CHAOYANG_PHONES), len(CHAOYANG_PHONES), 0)
    after = {p: (await bss.balance(p)).balance for p in before}
    assert after == {p: round(b + 5, 2) if p in CHAOYANG_PHONES else b for p, b in before.items()}  # 海淀区: none
    timeline = [e for e in (await boss.call("GET", path))["timeline"] if e["event"] == "compensation"]
    assert timeline and "credit 5 CNY (district)" in timeline[0]["note"]
    await boss.call("POST", f"{path}/transition", {"to": "reviewed"})
    assert (await boss.raw("POST", f"{path}/compensation", body))[0] == 409


async def test_the_back_end_operations_over_http(aiohttp_server, redis_client, key_prefix):
    demo = DemoBSS(redis_client, deployment_keys(key_prefix))
    server = await aiohttp_server(create_bss_app(demo))
    client = HttpBSS(str(server.make_url("")))
    try:
        mb = await _general_mb(demo, "13800138003")
        first, after = await client.district_phones(CHAOYANG, limit=3)
        rest_of, end = await client.district_phones(CHAOYANG, after, 3)
        assert list(first + rest_of) == CHAOYANG_PHONES and after == first[-1] and end == ""
        order = await client.goodwill("13800138003", "data", 500, "INC1 台风", "goodwill:INC1:13800138003")
        assert order.kind == "goodwill" and order.details == {"kind": "data", "amount": 500, "reason": "INC1 台风"}
        again = await client.goodwill("13800138003", "data", 500, "INC1 台风", "goodwill:INC1:13800138003")
        assert again.order_id == order.order_id
        assert await _general_mb(demo, "13800138003") == mb + 500  # once under its key
        with pytest.raises(Rejected):
            await client.goodwill("13800138003", "voucher", 1, "", "goodwill:INC1:x")
    finally:
        await client.close()


async def test_a_grant_cut_off_is_resumed_by_the_next_process(make_gateway, people, redis_client, key_prefix):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, "acting")
    path = f"/api/incidents/{incident['id']}"
    await boss.call("POST", f"{path}/compensation", {"kind": "credit", "amount": 3, "scope": "district"}, status=201)
    # the process that closed it stopped before granting anything: the offer is marked as being granted, no more
    keys = deployment_keys(key_prefix)
    await redis_client.hset(keys.ik("compensation", incident["id"]), "state", "granting")
    await redis_client.sadd(keys.ik("compensations-granting"), incident["id"])
    await gw.close()
    gw2 = await make_gateway()  # another process: its worker resumes the grant as it starts
    boss2 = await supervisor(people, gw2.base)
    done = await eventually(lambda: _offer(boss2, incident["id"]), timeout=10)
    assert (done["total"], done["granted"]) == (len(CHAOYANG_PHONES), len(CHAOYANG_PHONES))
    assert await redis_client.smembers(keys.ik("compensations-granting")) == set()
