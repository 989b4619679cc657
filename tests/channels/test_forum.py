"""The operator forum end to end: Discourse webhooks signed as Discourse signs them, replies read off a
local fake of the Discourse API; and an RSS feed polled across a restart."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from handoff.config import load_handoff_config
from tests.channels.conftest import eventually, metric
from tests.channels.fake_forum import FakeDiscourse, FeedServer

SECRET = "discourse-webhook-secret"
PHONE = re.compile(r"1[3-9]\d{9}|\d{3}\*{4}\d{4}")


@pytest.fixture
async def discourse():
    fake = FakeDiscourse(api_username="support")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def feed():
    server = FeedServer()
    await server.start()
    yield server
    await server.stop()


def forum_sections(fake: FakeDiscourse | None = None, **extra: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"backoff_base": 0.2, **extra}
    if fake is not None:
        section.update(discourse_url=fake.base_url, api_username="support", api_key=fake.api_key,
                       webhook_secret=SECRET)  # fmt: skip
    return {"forum": section}


async def posted(gw: Any, fake: FakeDiscourse, post: dict[str, Any], **kw: Any) -> int:
    return await fake.deliver(f"{gw.base}/channels/forum/discourse", "post_created", post, secret=SECRET, **kw)


async def test_public_answers_never_carry_account_data(gateways, discourse):
    gw = await gateways(**forum_sections(discourse))
    topic = discourse.add_topic("朝阳区网络问题", username="wang")
    assert await posted(gw, discourse, discourse.new_post(topic["id"], "请问朝阳区最近是不是有网络故障？手机一直没信号",
                                                          username="wang")) == 200  # fmt: skip
    reply = (await eventually(lambda: discourse.replies_in(topic["id"]), timeout=5))[0]
    assert "朝阳" in reply["raw"] and reply["username"] == "support" and reply["reply_to_post_number"] == 1
    # an account question in public: a public pointer, the details by private message, no figure anywhere public
    topic2 = discourse.add_topic("话费余额", username="li")
    assert await posted(gw, discourse, discourse.new_post(topic2["id"], "我的手机号13800138000还有多少话费余额？",
                                                          username="li")) == 200  # fmt: skip
    public = (await eventually(lambda: discourse.replies_in(topic2["id"]), timeout=5))[0]["raw"]
    assert "私信" in public and not PHONE.search(public) and "86.50" not in public
    pm = (await eventually(lambda: discourse.private_messages("li"), timeout=5))[0]
    assert "YE" in pm["raw"] and "86.50" not in pm["raw"]
    # what the bot may say in public is answered in public, in the post's language
    topic3 = discourse.add_topic("Store opening hours", username="emma")
    await posted(gw, discourse, discourse.new_post(topic3["id"], "What time do your stores open on Sundays?",
                                                   username="emma"))  # fmt: skip
    answer = (await eventually(lambda: discourse.replies_in(topic3["id"]), timeout=5))[0]["raw"]
    assert re.search(r"store|open", answer, re.I) and not PHONE.search(answer)
    for post in discourse.posts:  # nothing the gateway posted in public holds a phone number
        if post.get("topic_archetype", "regular") == "regular" and post["topic_id"] != pm["topic_id"]:
            assert not PHONE.search(post["raw"]), post["raw"]


async def test_a_complaint_reaches_the_agents_with_a_link_and_their_reply_is_posted(gateways, discourse, agents):
    gw = await gateways(handoff=load_handoff_config().replace(push=False), **forum_sections(discourse))
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    topic = discourse.add_topic("投诉网络质量", username="zhao")
    post = discourse.new_post(topic["id"], "我要投诉！你们的网络太差了，天天掉线，严重影响我上班", username="zhao")
    assert await posted(gw, discourse, post) == 200
    ack = (await eventually(lambda: discourse.replies_in(topic["id"]), timeout=5))[0]["raw"]
    assert "投诉单号" in ack
    chat = next(c for c in (await agent.call("GET", "/api/queue"))["chats"] if c["channel"] == "forum")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")
    detail = await agent.call("GET", f"/api/chats/{chat['id']}")
    notes = [e["text"] for e in detail["transcript"] if e.get("kind") == "note"]
    assert any(f"/t/{topic['slug']}/{topic['id']}/1" in n for n in notes), notes
    await agent.call("POST", f"/api/chats/{chat['id']}/messages", {"text": "您好，已安排工程师排查您所在区域的基站。"})
    replies = await eventually(
        lambda: [p for p in discourse.replies_in(topic["id"]) if "工程师" in p["raw"]], timeout=5
    )
    assert "王小明" in replies[0]["raw"]  # signed with the agent's name
    public = [p["raw"] for p in discourse.replies_in(topic["id"])]
    assert not any("排在第" in p for p in public)  # no queue places on a forum…
    assert any("本帖中回复" in p for p in public)  # …but where the answer will come


async def test_signatures_redeliveries_own_posts_and_a_rate_limited_api(gateways, discourse):
    gw = await gateways(**forum_sections(discourse))
    url = f"{gw.base}/channels/forum/discourse"
    topic = discourse.add_topic("营业时间", username="chen")
    post = discourse.new_post(topic["id"], "请问你们营业厅周末几点开门？", username="chen")
    assert await discourse.deliver(url, "post_created", post, secret=SECRET, forge=True) == 403
    assert await discourse.deliver(url, "post_created", post, secret=None) == 403  # unsigned
    async with aiohttp.ClientSession() as session:
        headers, _ = discourse.webhook_request("post_created", post, secret=SECRET)
        async with session.post(url, data=b"{broken", headers=headers) as resp:
            assert resp.status == 403  # the signature covers the body: a changed body is a forged one
        body = b'{"post": {"id": 1}}'
        headers = {
            **headers,
            "X-Discourse-Event-Signature": discourse.signature(SECRET, body),
            "X-Discourse-Event-Id": "999",
        }
        async with session.post(url, data=body, headers=headers) as resp:
            assert resp.status == 400 and "topic_id" in (await resp.json())["error"]
    assert await discourse.deliver(url, "ping", secret=SECRET) == 200
    assert await discourse.deliver(url, "topic_created", discourse.new_topic("新话题标题足够长"), secret=SECRET) == 200
    discourse.fail(1, status=429, wait_seconds=1)  # the first reply hits Discourse's rate limiter
    assert await posted(gw, discourse, post, event_id=500) == 200
    assert await posted(gw, discourse, post, event_id=500) == 200  # Discourse redelivers the same event
    replies = await eventually(lambda: discourse.replies_in(topic["id"]), timeout=6)
    own = discourse.new_post(topic["id"], "这是客服自己发的帖子，不应该被机器人回答。", username="support")
    assert await posted(gw, discourse, own) == 200
    await asyncio.sleep(1.0)
    assert len(discourse.replies_in(topic["id"])) == len(replies) == 1
    assert await metric(gw, 'outbox_retries_total{channel="forum"}') >= 1


async def test_feed_new_old_and_edited_posts_across_a_restart(gateways, feed, agents):
    feed.add("old-1", "老帖子：投诉信号差", "我要投诉，你们的信号太差了", "old_user")
    feed.add("old-2", "老帖子：营业时间", "营业厅几点开门", "old_user2")
    sections = forum_sections(None, feed_url=feed.url_rss, feed_interval=0.3)
    handoff = load_handoff_config().replace(push=False)
    gw = await gateways(handoff=handoff, **sections)
    port = gw.port
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()
    await eventually(lambda: feed.requests >= 2, timeout=5)  # the first poll marks what is there as old
    assert [c for c in (await agent.call("GET", "/api/queue"))["chats"] if c["channel"] == "forum"] == []
    feed.add("new-1", "投诉：宽带天天断", "我要投诉，家里宽带天天断网，报修三次都没人来", "sun")
    feed.add("new-2", "请问营业时间", "请问周末营业厅开门吗", "zhou")
    forum_chats = await eventually(lambda: _forum_chats(agent), timeout=5)
    assert len(forum_chats) == 1  # the complaint; the question has nowhere to be answered (no API)
    feed.edit("new-1", "我要投诉，家里宽带天天断网，报修三次都没人来。补充：已经一周了")
    polled = feed.requests
    await eventually(lambda: feed.requests >= polled + 2, timeout=5)
    assert len(await _forum_chats(agent)) == 1  # an edit is not a new post
    await agent.close()
    await gw.close()
    feed.add("new-3", "投诉：乱扣费", "我要投诉，你们乱扣我的流量费，要求退款", "wu")  # while the gateway is down
    gw2 = await gateways(port=port, handoff=handoff, **sections)
    agent2 = agents(gw2.base)
    await agent2.login()
    await agent2.connect()
    chats = await eventually(lambda: _forum_chats(agent2, 2), timeout=6)
    polled = feed.requests
    await eventually(lambda: feed.requests >= polled + 2, timeout=5)
    assert len(await _forum_chats(agent2)) == 2 == len(chats)  # the missed post once; old ones not again


async def _forum_chats(agent: Any, at_least: int = 1) -> list[dict[str, Any]]:
    queue = await agent.call("GET", "/api/queue")
    found = [c for c in queue["chats"] if c["channel"] == "forum"]
    return found if len(found) >= at_least else []
