"""The Weibo, Discourse and forum-feed fakes speak the real wire formats: checked with real clients (aiohttp,
feedparser) and with signatures recomputed here, independently of the fakes."""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, quote_plus, unquote

import aiohttp
import feedparser
import pytest
from aiohttp import web

from tests.channels.fake_forum import FakeDiscourse, FeedServer
from tests.channels.fake_weibo import FakeWeibo

WEIBO_SECRET = "weibo-secret-for-tests"
HOOK_SECRET = "discourse-hook-secret"
FAN = 2489518277
REPLY = "/2/messages/reply.json"


@pytest.fixture
async def weibo() -> AsyncIterator[FakeWeibo]:
    fake = FakeWeibo(app_secret=WEIBO_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def discourse() -> AsyncIterator[FakeDiscourse]:
    fake = FakeDiscourse(api_key="k" * 64, api_username="cs_bot")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    server = FeedServer("电信用户论坛")
    await server.start()
    yield server
    await server.stop()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts a one-route aiohttp server (GET and POST) standing for the gateway's webhook; gives its URL."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        application = web.Application()
        application.router.add_route("*", "/hook", handler)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    yield serve
    for runner in runners:
        await runner.cleanup()


# ---------------------------------------------------------------------------------------------------- Weibo


def weibo_signature_ok(query: web.Request | dict, secret: str) -> bool:
    """The developer's check, written from the documentation: sha1 of sorted(app secret, timestamp, nonce)."""
    q = query.query if isinstance(query, web.Request) else query
    joined = "".join(sorted([secret, q.get("timestamp", ""), q.get("nonce", "")]))
    return hmac.compare_digest(hashlib.sha1(joined.encode()).hexdigest(), q.get("signature", ""))


def weibo_developer(seen: list[dict], secret: str = WEIBO_SECRET, delay: float = 0.0) -> Handler:
    """A minimal developer endpoint: URL check, signature check, a passive text reply to text messages."""

    async def handle(request: web.Request) -> web.Response:
        if not weibo_signature_ok(request, secret):
            return web.Response(status=403, text="bad signature")
        if request.method == "GET":
            return web.Response(text=request.query["echostr"])
        push = json.loads(await request.read())
        seen.append({"push": push, "query": dict(request.query), "content_type": request.content_type})
        if delay and len(seen) == 1:
            await asyncio.sleep(delay)
        if push["type"] != "text":
            return web.Response(text="")
        data = quote(json.dumps({"text": f"收到：{push['text']}"}, ensure_ascii=False))
        reply = {
            "result": True,
            "receiver_id": push["sender_id"],
            "sender_id": push["receiver_id"],
            "type": "text",
            "data": data,
        }
        return web.json_response(reply)

    return handle


async def test_weibo_signature_is_the_documented_recipe() -> None:
    # open.weibo.com/wiki/Messages_api_start: secret xyz123xyz, timestamp 1397022061823, nonce 57155157
    fake = FakeWeibo(app_secret="xyz123xyz")
    assert fake.sign("1397022061823", "57155157") == "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"
    query = {"timestamp": "1397022061823", "nonce": "57155157", "signature": "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"}
    assert weibo_signature_ok(query, "xyz123xyz")
    own = fake.verify_query("dnPdpTZz85")
    assert set(own) == {"signature", "timestamp", "nonce", "echostr"} and len(own["timestamp"]) == 13
    assert weibo_signature_ok(own, "xyz123xyz") and not weibo_signature_ok(fake.verify_query(forge=True), "xyz123xyz")


async def test_weibo_url_check_and_pushes(weibo: FakeWeibo, receiver) -> None:
    seen: list[dict] = []
    url = await receiver(weibo_developer(seen))
    assert await weibo.verify(url, "dnPdpTZz85") == (200, "dnPdpTZz85")
    assert (await weibo.verify(url, forge=True))[0] == 403

    push = weibo.text_push(FAN, "我的话费余额是多少？")
    status, body = await weibo.post(url, push)
    assert status == 200
    assert weibo.parse_passive(body, push=push) == "收到：我的话费余额是多少？"
    assert weibo.passive == [
        {"receiver_id": FAN, "sender_id": weibo.uid, "type": "text", "data": {"text": "收到：我的话费余额是多少？"}}
    ]
    got = seen[-1]["push"]
    assert set(got) == {"type", "receiver_id", "sender_id", "created_at", "text", "data"}
    assert got["type"] == "text" and got["receiver_id"] == weibo.uid and got["sender_id"] == FAN
    assert got["data"] == {} and got["text"] == "我的话费余额是多少？"
    moment = dtm.datetime.strptime(got["created_at"], "%a %b %d %H:%M:%S %z %Y")
    assert moment.utcoffset() == dtm.timedelta(hours=8) and abs(time.time() - moment.timestamp()) < 5
    assert set(seen[-1]["query"]) == {"signature", "timestamp", "nonce"}
    assert seen[-1]["content_type"] == "application/json"

    assert await weibo.post(url, weibo.event_push(FAN, "follow")) == (200, "")
    assert seen[-1]["push"]["data"] == {"subtype": "follow"} and seen[-1]["push"]["text"] == "关注事件消息"
    await weibo.post(url, weibo.event_push(FAN, "click", key="BALANCE"))
    assert seen[-1]["push"]["type"] == "event" and seen[-1]["push"]["data"] == {"subtype": "click", "key": "BALANCE"}
    await weibo.post(url, weibo.image_push(FAN))
    image = seen[-1]["push"]
    assert image["type"] == "image" and set(image["data"]) == {"vfid", "tovfid"}
    await weibo.post(url, weibo.position_push(FAN))
    assert seen[-1]["push"]["data"] == {"longitude": "116.308586", "latitude": "39.982525"}

    count = len(seen)
    assert (await weibo.post(url, weibo.text_push(FAN, "伪造"), forge=True))[0] == 403
    assert len(seen) == count


async def test_weibo_retries_like_weibo(weibo: FakeWeibo, receiver) -> None:
    seen: list[dict] = []
    url = await receiver(weibo_developer(seen, delay=0.6))
    push = weibo.text_push(FAN, "在吗")
    outcomes = await weibo.post_like_weibo(url, push, wait=0.2)
    assert [status for status, _ in outcomes] == [0, 200]
    assert weibo.parse_passive(outcomes[-1][1]) == "收到：在吗"
    # the same message twice, freshly signed: dedupe on sender_id + created_at
    assert len(seen) == 2 and seen[0]["push"] == seen[1]["push"] and seen[0]["query"] != seen[1]["query"]


def test_weibo_parse_passive_is_strict() -> None:
    fake = FakeWeibo()
    push = fake.text_push(FAN, "hi")
    assert fake.parse_passive("") is None and fake.parse_passive(b"  ") is None
    good = {"result": True, "receiver_id": str(FAN), "sender_id": str(fake.uid), "type": "text"}
    as_doc = {**good, "data": "%7B%22text%22%3A%20%22%E7%BA%AF%E6%96%87%E6%9C%AC%E5%93%8D%E5%BA%94%22%7D%20"}
    assert fake.parse_passive(json.dumps(as_doc), push=push) == "纯文本响应"  # the documentation's example
    plus = {**good, "data": quote_plus(json.dumps({"text": "a + b c"}))}
    assert fake.parse_passive(json.dumps(plus)) == "a + b c"
    with pytest.raises(AssertionError, match="URL-encoded"):
        fake.parse_passive(json.dumps({**good, "data": json.dumps({"text": "x"})}))
    with pytest.raises(AssertionError, match="URL-encoded"):
        fake.parse_passive(json.dumps({**good, "data": {"text": "x"}}))
    with pytest.raises(AssertionError, match="do not answer"):
        fake.parse_passive(json.dumps({**as_doc, "receiver_id": 1}), push=push)
    with pytest.raises(AssertionError, match="not JSON"):
        fake.parse_passive("success")
    with pytest.raises(AssertionError, match="300"):
        fake.parse_passive(json.dumps({**good, "data": quote(json.dumps({"text": "长" * 301}))}))


async def test_weibo_reply_api(weibo: FakeWeibo) -> None:
    url = weibo.api_base + "messages/reply.json"
    assert url == f"{weibo.url}/2/messages/reply.json"
    async with aiohttp.ClientSession() as session:

        async def reply(form: dict, **kwargs) -> tuple[int, dict]:
            async with session.post(url, data=form, **kwargs) as resp:
                return resp.status, await resp.json()

        data = json.dumps({"text": "您好，您的余额为 12.5 元"}, ensure_ascii=False)
        form = {"access_token": weibo.access_token, "type": "text", "data": data, "receiver_id": str(FAN)}
        status, answer = await reply(form)
        assert status == 200
        assert answer["result"] is True and answer["sender_id"] == weibo.uid and answer["receiver_id"] == FAN
        assert json.loads(unquote(answer["data"])) == {"text": "您好，您的余额为 12.5 元"}
        # token in the query string, data URL-encoded once more, save_sender_box=0
        double = {"type": "text", "data": quote(json.dumps({"text": "第二条"})), "receiver_id": FAN}
        double["save_sender_box"] = 0
        assert (await reply(double, params={"access_token": weibo.access_token}))[0] == 200
        third = {**double, "data": json.dumps({"text": "第三条"})}
        assert (await reply(third, headers={"Authorization": f"OAuth2 {weibo.access_token}"}))[0] == 200
        assert weibo.texts_to(FAN) == ["您好，您的余额为 12.5 元", "第二条", "第三条"]
        assert [m["save_sender_box"] for m in weibo.sent] == [1, 0, 0] and weibo.sent[1]["double_encoded"]
        assert len(await weibo.wait_sent(3, timeout=1, uid=FAN)) == 3

        status, answer = await reply({**form, "access_token": ""})
        assert status == 403 and answer == {"error": "auth by Null spi!", "error_code": 21301, "request": REPLY}
        status, answer = await reply({**form, "access_token": "2.00wrong"})
        assert (status, answer["error_code"], answer["error"]) == (401, 21332, "invalid_access_token")
        old = weibo.access_token
        new = weibo.expire_token()
        status, answer = await reply({**form, "access_token": old})
        assert status == 401 and answer == {"error": "expired_token", "error_code": 21327, "request": REPLY}
        form["access_token"] = new

        weibo.fail(1, 10023)
        status, answer = await reply(form)
        assert (status, answer["error_code"], answer["error"]) == (403, 10023, "User requests out of rate limit!")
        status, answer = await reply({k: v for k, v in form.items() if k != "receiver_id"})
        assert status == 400 and answer["error_code"] == 10016 and "receiver_id" in answer["error"]
        status, answer = await reply({**form, "data": json.dumps({"text": "长" * 301})})
        assert status == 400 and answer["error_code"] == 10017
        assert (await reply({**form, "type": "voice"}))[1]["error_code"] == 10017
        async with session.post(f"{weibo.api_base}statuses/update.json", data=form) as resp:
            assert resp.status == 404 and (await resp.json())["error_code"] == 10020
        weibo.down = True
        async with session.post(url, data=form) as resp:
            assert resp.status == 502 and resp.content_type == "text/html"
        weibo.down = False
    assert len(weibo.sent) == 3
    with pytest.raises(AssertionError, match="expected 4"):
        await weibo.wait_sent(4, timeout=0.05)


# ---------------------------------------------------------------------------------------------------- Discourse API


def api_headers(fake: FakeDiscourse, username: str | None = None) -> dict[str, str]:
    return {"Api-Key": fake.api_key, "Api-Username": username or fake.api_username}


async def test_discourse_replies_and_private_messages(discourse: FakeDiscourse) -> None:
    topic = discourse.add_topic("宽带无法连接 error 678", topic_id=42, posts=1)
    async with aiohttp.ClientSession(base_url=discourse.base_url, headers=api_headers(discourse)) as session:
        raw = "您好，我们已经收到您的问题，工程师会在两小时内联系您处理。"
        assert len(raw) >= 20
        async with session.post("/posts.json", json={"topic_id": 42, "raw": raw}) as resp:
            assert resp.status == 200
            post = await resp.json()
        for key in ("id", "topic_id", "post_number", "raw", "cooked", "username", "created_at", "draft_sequence"):
            assert key in post
        assert post["topic_id"] == 42 and post["post_number"] == 2 and post["username"] == "cs_bot"
        assert post["raw"] == raw and post["cooked"] == f"<p>{raw}</p>" and post["topic_slug"] == topic["slug"]
        assert post["reply_to_post_number"] is None and post["created_at"].endswith("Z")

        form = {"topic_id": "42", "raw": "Line one of the answer\nline two & more", "reply_to_post_number": "1"}
        async with session.post("/posts.json", data=form) as resp:  # form-encoded works as well
            second = await resp.json()
        assert second["post_number"] == 3 and second["reply_to_post_number"] == 1
        assert second["cooked"] == "<p>Line one of the answer<br>\nline two &amp; more</p>"

        pm = {"title": "您的工单", "raw": "工单已受理，编号 A123。", "target_recipients": "Alice",
              "archetype": "private_message"}  # fmt: skip
        async with session.post("/posts.json", json=pm) as resp:
            assert resp.status == 200  # PMs: minimum 10 characters, titles 2
            message = await resp.json()
        assert message["topic_id"] not in (42, None) and message["post_number"] == 1
        assert discourse.topics[message["topic_id"]]["archetype"] == "private_message"

    assert [p["post_number"] for p in discourse.replies_in(42)] == [2, 3]
    assert discourse.private_messages("alice") == [message] and discourse.private_messages("bob") == []
    assert len(await discourse.wait_posts(3, timeout=1)) == 3
    with pytest.raises(AssertionError, match="expected 4"):
        await discourse.wait_posts(4, timeout=0.05)


async def test_discourse_api_errors(discourse: FakeDiscourse) -> None:
    reply = {"topic_id": 7, "raw": "A reply that is long enough to be accepted."}
    async with aiohttp.ClientSession(base_url=discourse.base_url) as session:

        async def create(body: dict, headers: dict | None = None) -> tuple[int, dict, aiohttp.ClientResponse]:
            async with session.post("/posts.json", json=body, headers=headers or api_headers(discourse)) as resp:
                if resp.content_type == "application/json":
                    return resp.status, await resp.json(), resp
                return resp.status, {"html": await resp.text()}, resp

        assert (await create(reply, {"Api-Username": "cs_bot"}))[:2] == (
            403, {"errors": ["You need to be logged in to do that."], "error_type": "not_logged_in"})  # fmt: skip
        status, body, _ = await create(reply, {"Api-Key": "wrong", "Api-Username": "cs_bot"})
        assert status == 403 and body["error_type"] == "invalid_access"
        assert body["errors"] == [
            "You are not permitted to view the requested resource. The API username or key is invalid."
        ]
        assert (await create(reply, api_headers(discourse, "nobody")))[0] == 403

        short = await create({"topic_id": 7, "raw": "您好，已为您处理。"})
        assert short[:2] == (422, {"action": "create_post", "errors": ["Body is too short (minimum is 20 characters)"]})
        status, body, _ = await create({"title": "short", "raw": "x" * 30})
        assert status == 422 and body["errors"] == ["Title is too short (minimum is 15 characters)"]
        assert (await create({"topic_id": 7}))[0] == 400

        discourse.fail(1, 429, wait_seconds=12)
        status, body, resp = await create(reply)
        assert status == 429 and resp.headers["Retry-After"] == "12"
        assert body == {
            "errors": ["You’ve performed this action too many times. Please wait 12 seconds before trying again."],
            "error_type": "rate_limit",
            "extras": {"wait_seconds": 12, "time_left": "12 seconds"},
        }
        discourse.fail(1, 500)
        assert (await create(reply))[:2] == (500, {"status": 500, "error": "Internal Server Error"})
        discourse.fail(1, 503)
        status, body, _ = await create(reply)
        assert status == 503 and "503 Service Unavailable" in body["html"]
        discourse.down = True
        assert (await create(reply))[0] == 502
        discourse.down = False
        discourse.missing_topics.add(404)
        status, body, _ = await create({**reply, "topic_id": 404})
        assert (status, body["error_type"]) == (404, "not_found")

        status, body, _ = await create(reply)  # failures are used up
        assert status == 200 and body["topic_id"] == 7 and body["post_number"] == 2
    statuses = [c["status"] for c in discourse.calls]  # not when down
    assert statuses == [403, 403, 403, 422, 422, 400, 429, 500, 503, 404, 200]
    assert len(discourse.posts) == 1


# ---------------------------------------------------------------------------------------------------- Discourse hooks


async def test_discourse_webhooks(discourse: FakeDiscourse, receiver) -> None:
    seen: list[dict] = []

    async def gateway(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.append({"headers": dict(request.headers), "raw": raw})
        header = request.headers.get("X-Discourse-Event-Signature")
        if header is None:
            return web.Response(status=204)
        expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        return web.Response(status=200 if hmac.compare_digest(header, expected) else 401)

    url = await receiver(gateway)
    post = discourse.new_post(42, "我的手机没有信号了，怎么办？", username="wang_xm")
    assert post["post_number"] == 1 and post["topic_id"] == 42 and post["username"] == "wang_xm"
    assert post["raw"] == "我的手机没有信号了，怎么办？" and post["cooked"] == "<p>我的手机没有信号了，怎么办？</p>"
    for key in ("id", "name", "created_at", "post_type", "updated_at", "reply_to_post_number", "topic_slug",
                "topic_title", "category_id", "user_id", "topic_archetype"):  # fmt: skip
        assert key in post
    assert await discourse.deliver(url, "post_created", post, secret=HOOK_SECRET) == 200
    headers, raw = seen[-1]["headers"], seen[-1]["raw"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Discourse-Event"] == "post_created" and headers["X-Discourse-Event-Type"] == "post"
    assert headers["X-Discourse-Instance"] == discourse.base_url
    assert headers["User-Agent"].startswith("Discourse/")
    assert json.loads(raw) == {"post": post}
    first_id = int(headers["X-Discourse-Event-Id"])

    edited = discourse.edit_post(post, "我的手机没有信号了，重启也不行。")
    assert await discourse.deliver(url, "post_edited", edited, secret=HOOK_SECRET) == 200
    assert json.loads(seen[-1]["raw"])["post"]["id"] == post["id"] and edited["version"] == 2
    topic = discourse.new_topic("Cannot connect to 5G network")
    assert await discourse.deliver(url, "topic_created", topic, secret=HOOK_SECRET) == 200
    assert seen[-1]["headers"]["X-Discourse-Event-Type"] == "topic" and json.loads(seen[-1]["raw"]) == {"topic": topic}
    assert await discourse.deliver(url, "ping", secret=HOOK_SECRET) == 200
    assert json.loads(seen[-1]["raw"]) == {"ping": "OK"} and "X-Discourse-Event" not in seen[-1]["headers"]
    ids = [int(s["headers"]["X-Discourse-Event-Id"]) for s in seen]
    assert ids == sorted(ids) and len(set(ids)) == 4 and ids[0] == first_id

    assert await discourse.deliver(url, "post_created", post, secret=HOOK_SECRET, forge=True) == 401
    assert await discourse.deliver(url, "post_created", post, secret=None) == 204  # no secret: no signature header
    assert "X-Discourse-Event-Signature" not in seen[-1]["headers"]
    assert await discourse.deliver(url, "post_created", {"post": post}, secret=HOOK_SECRET, event_id=7) == 200
    assert seen[-1]["headers"]["X-Discourse-Event-Id"] == "7" and json.loads(seen[-1]["raw"]) == {"post": post}
    assert [d["status"] for d in discourse.deliveries] == [200, 200, 200, 200, 401, 204, 200]

    # the forum's state follows the webhooks: the gateway's reply is post 2 of topic 42
    answer = {"topic_id": 42, "raw": "请尝试重启手机并检查 SIM 卡是否插好，谢谢。", "reply_to_post_number": 1}
    async with (
        aiohttp.ClientSession(headers=api_headers(discourse)) as session,
        session.post(f"{discourse.base_url}/posts.json", json=answer) as resp,
    ):
        assert (await resp.json())["post_number"] == 2


# ---------------------------------------------------------------------------------------------------- feeds


def _entries(text: str) -> dict[str, feedparser.FeedParserDict]:
    parsed = feedparser.parse(text)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return {entry.link: entry for entry in parsed.entries}


async def test_feeds_parse_and_edit(feeds: FeedServer) -> None:
    first = feeds.add(
        "forum.example.com-topic-1", "宽带无法连接 & 报错", "我家宽带从昨天开始无法连接。\n\n错误 678 <b>", "张三",
        published=dtm.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dtm.UTC),
    )  # fmt: skip
    second = feeds.add("tag:forum.example.com,2024:topic-2", "5G signal", "No 5G since the update.", "lisi")
    async with aiohttp.ClientSession() as session:
        async with session.get(feeds.url_rss) as resp:
            assert resp.status == 200 and resp.content_type == "application/rss+xml"
            rss = await resp.text()
        async with session.get(feeds.url_atom) as resp:
            assert resp.status == 200 and resp.content_type == "application/atom+xml"
            atom = await resp.text()
    assert feedparser.parse(rss).version == "rss20" and feedparser.parse(atom).version == "atom10"
    atom_ids = ("urn:forum:forum.example.com-topic-1", second["guid"])  # a relative Atom id would be resolved
    for text, ids in ((rss, (first["guid"], second["guid"])), (atom, atom_ids)):
        entries = _entries(text)
        assert set(entries) == {first["link"], second["link"]}
        one, two = entries[first["link"]], entries[second["link"]]
        assert (one.id, two.id) == ids
        assert "updated_parsed" in one and "updated_parsed" in two  # present, not feedparser's published fallback
        assert one.updated_parsed == time.struct_time((2024, 5, 1, 8, 0, 0, 2, 122, 0))
        assert one.title == "宽带无法连接 & 报错" and one.author == "张三" and "错误 678 &lt;b&gt;" in one.summary
        assert next(iter(entries)) == second["link"]  # newest first

    before = {link: entry.updated_parsed for link, entry in _entries(rss).items()}
    feeds.edit(first["guid"], "已经恢复了，谢谢。")
    for text in (feeds.rss(), feeds.atom()):
        after = _entries(text)
        edited = after[first["link"]]
        assert edited.updated_parsed > before[first["link"]]
        assert edited.published_parsed == time.struct_time((2024, 5, 1, 8, 0, 0, 2, 122, 0))
        assert edited.id in (first["guid"], first["atom_id"]) and "已经恢复了" in edited.summary
        assert after[second["link"]].updated_parsed == before[second["link"]]
    assert feeds.item(first["guid"])["link"] == first["link"]


async def test_feed_conditional_get(feeds: FeedServer) -> None:
    feeds.add("g-1", "Topic one title", "Body one", "alice")
    async with aiohttp.ClientSession() as session:
        async with session.get(feeds.url_rss) as resp:
            etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
            assert etag.startswith('W/"') and modified.endswith(" GMT")
        async with session.get(feeds.url_rss, headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304 and await resp.read() == b"" and resp.headers["ETag"] == etag
        async with session.get(feeds.url_rss, headers={"If-None-Match": f'"other", {etag[2:]}'}) as resp:
            assert resp.status == 304  # weak comparison, lists
        async with session.get(feeds.url_rss, headers={"If-Modified-Since": modified}) as resp:
            assert resp.status == 304
        async with session.get(feeds.url_atom, headers={"If-None-Match": etag}) as resp:
            assert resp.status == 200  # another representation, another ETag

        feeds.edit("g-1", "Body one, edited")  # within the same second: Last-Modified still moves
        async with session.get(feeds.url_rss, headers={"If-None-Match": etag}) as resp:
            assert resp.status == 200 and resp.headers["ETag"] != etag
        async with session.get(feeds.url_rss, headers={"If-Modified-Since": modified}) as resp:
            assert resp.status == 200 and resp.headers["Last-Modified"] != modified
        async with session.get(feeds.url_rss, headers={"If-None-Match": "*"}) as resp:
            assert resp.status == 304
        feeds.fail(1, 503)
        async with session.get(feeds.url_rss) as resp:
            assert resp.status == 503
    assert feeds.requests == 9
    assert [status for _, status in feeds.served] == [200, 304, 304, 304, 200, 200, 200, 304, 503]


async def test_feedparser_polls_with_its_own_conditional_get(feeds: FeedServer) -> None:
    feeds.add("tag:forum.example.com,2024:topic-9", "Roaming charges question", "Why was I charged?", "zhao")
    no_proxy = [urllib.request.ProxyHandler({})]

    def poll(**kwargs) -> feedparser.FeedParserDict:
        return feedparser.parse(feeds.url_atom, handlers=no_proxy, **kwargs)

    first = await asyncio.to_thread(poll)
    assert first.status == 200 and first.etag and first.modified and len(first.entries) == 1
    again = await asyncio.to_thread(poll, etag=first.etag, modified=first.modified)
    assert again.status == 304 and again.entries == []
    feeds.edit("tag:forum.example.com,2024:topic-9", "Why was I charged for roaming in Macau?")
    changed = await asyncio.to_thread(poll, etag=first.etag, modified=first.modified)
    assert changed.status == 200 and changed.entries[0].id == first.entries[0].id
    assert changed.entries[0].updated_parsed > first.entries[0].updated_parsed
    assert feeds.requests == 3
