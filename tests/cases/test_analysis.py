"""Analysis and dispatch from config/cases.yml: severity (a VIP, the regulator named, a repeat complainant, the
low ``other``) and the clocks it sets, the department by type and region (the customer's district in the back end),
the least-loaded responsible agent, and the back end's facts on the case."""

from __future__ import annotations

from tests.cases.conftest import drive


async def register(agent, phone: str, text: str, kind: str) -> dict:
    return await agent.call("POST", "/api/cases", {"phone": phone, "text": text, "type": kind}, status=201)


async def test_severity_region_and_load(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config)
    supervisor = people("agent", gw.base, "super1", "demo-super1")
    await supervisor.login()

    # business: agents [agent2, agent1], none with a case yet; the one with fewer unresolved cases takes the next
    first = await register(supervisor, "13800138005", "套餐被乱改", "business")
    second = await register(supervisor, "13800138006", "多扣了月租", "business")
    assert (first["assignee"], second["assignee"]) == ("agent2", "agent1")
    await drive(supervisor, first["ticket"], "in_progress", "replied", "resolved")  # agent2: none open now
    third = await register(supervisor, "13800138007", "宽带费用不对", "business")
    assert third["assignee"] == "agent2"

    vip = await register(supervisor, "13800138001", "网速很慢", "network")  # tier vip
    assert vip["severity"] == "high" and vip["facts"]["tier"] == "vip" and vip["region"] == "海淀区"
    fr, sol = vip["clocks"]
    assert round(fr["due_at"] - vip["created_at"]) == 900 and round(sol["due_at"] - vip["created_at"]) == 43200
    regulator = await register(supervisor, "13800138002", "再不处理我就投诉到工信部", "service")
    assert regulator["severity"] == "high"
    other = await register(supervisor, "13800138003", "营业厅门口太吵", "other")
    assert other["severity"] == "low" and other["department"] == "complaints"
    assert round(other["clocks"][1]["due_at"] - other["created_at"]) == 172800  # 48 h for a low "other"
    assert round(other["clocks"][0]["due_at"] - other["created_at"]) == 1800

    shenzhen = await register(supervisor, "13800138004", "深圳这边信号差", "network")
    assert shenzhen["department"] == "network_sz" and shenzhen["department_name"]["zh"] == "深圳网络维护中心"
    assert shenzhen["severity"] == "medium" and shenzhen["assignee"] == "agent1"

    # a repeat complainant: two earlier cases within 30 days make the third high
    await drive(supervisor, second["ticket"], "in_progress", "replied", "resolved")
    again = await register(supervisor, "13800138006", "又多扣了", "business")
    assert again["severity"] == "medium"  # one earlier case
    await drive(supervisor, again["ticket"], "in_progress", "replied", "resolved")
    repeat = await register(supervisor, "13800138006", "第三次多扣费", "business")
    assert repeat["severity"] == "high" and repeat["ticket"] not in (second["ticket"], again["ticket"])
