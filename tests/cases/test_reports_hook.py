"""The cases' events reach the reports as they happen (``handoff/cases/front.py`` → ``handoff.reports.recorder``):
a complaint, its first response and solution within target, a reopening from the follow-up visit, and the visit's
satisfaction."""

from __future__ import annotations

from tests.cases.conftest import complain, drive


async def test_case_milestones_and_the_visit_reach_the_reports(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config.replace(cases=quiet_config.cases.replace(followup_delay=0.0)))
    supervisor = people("agent", gw.base, "super1", "demo-super1")
    await supervisor.login()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "我要投诉，网速太慢了")
    await drive(supervisor, ticket, "in_progress", "replied", "resolved")
    ask = await customer.expect(lambda f: "解决了吗" in f.get("text", ""), timeout=10)
    await customer.send(ask["buttons"][1]["payload"])  # not solved: reopened
    await customer.expect(lambda f: "重新打开" in f.get("text", ""), timeout=10)
    await drive(supervisor, ticket, "in_progress", "replied", "resolved")
    await customer.expect(lambda f: "解决了吗" in f.get("text", ""), timeout=10)
    await customer.send("1")
    await customer.expect(lambda f: "打分" in f.get("text", ""), timeout=10)
    await customer.send("4")  # satisfied: 80
    await customer.expect(lambda f: "意见" in f.get("text", ""), timeout=10)
    await customer.send("跳过")
    await customer.expect(lambda f: "回访已完成" in f.get("text", ""), timeout=10)

    levels = (await supervisor.call("GET", "/api/reports/service_levels"))["total"]
    assert (levels["complaints"], levels["first_responses"], levels["solutions"], levels["reopened"]) == (1, 1, 1, 1)
    assert levels["first_response_within_target"] == 1.0 and levels["solution_within_target"] == 1.0
    satisfaction = await supervisor.call("GET", "/api/reports/satisfaction?group_by=channel")
    assert satisfaction["total"]["surveys"] == 1 and satisfaction["total"]["average"] == 80.0
    assert satisfaction["total"]["levels"]["4"] == 1
