"""A complaint posted on the operator forum (Discourse webhooks, the local fake of its API) becomes a case whose
source is the forum; the answer the responsible agent gives at ``replied`` is posted in the customer's topic."""

from __future__ import annotations

from tests.cases.conftest import TICKET, drive
from tests.channels.conftest import agents, eventually, gateways  # noqa: F401
from tests.channels.test_forum import discourse, forum_sections, posted  # noqa: F401


async def test_a_forum_complaint_is_a_case_answered_in_its_topic(gateways, discourse, agents, quiet_config):  # noqa: F811
    gw = await gateways(handoff=quiet_config, **forum_sections(discourse))
    topic = discourse.add_topic("投诉网络质量", username="zhao")
    post = discourse.new_post(topic["id"], "我要投诉！你们的网络太差了，天天掉线，严重影响我上班", username="zhao")
    assert await posted(gw, discourse, post) == 200
    ack = (await eventually(lambda: discourse.replies_in(topic["id"]), timeout=5))[0]["raw"]
    ticket = TICKET.search(ack).group(0)
    agent = agents(gw.base)
    await agent.login()
    case = await agent.call("GET", f"/api/cases/{ticket}")
    assert case["source"] == "forum" and case["channel"] == "forum" and case["type"] == "network"
    assert (case["history"][0]["by_kind"], case["history"][0]["by"]) == ("bot", "forum")
    await drive(agent, ticket, "in_progress")
    await agent.call("POST", f"/api/cases/{ticket}/transition", {"to": "replied", "reply": "已安排工程师排查基站"})
    answer = await eventually(lambda: [p for p in discourse.replies_in(topic["id"]) if ticket in p["raw"]
                                       and "工程师" in p["raw"]], timeout=5)  # fmt: skip
    assert "处理答复" in answer[0]["raw"]
