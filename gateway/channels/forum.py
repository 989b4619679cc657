"""The operator's forum: Discourse webhooks (replies through its API) and, for any other forum,
an RSS/Atom feed polled for new posts.

A forum is public, so what the bot may say there is narrower than anywhere else:

* A self-service question whose answer holds **no personal data** (outages in a district, stores,
  roaming, plans in general, greetings…) gets a public reply through the Discourse API.
* A question that needs account data (balance, bill, data, the customer's plan, SIM, add-ons…)
  gets a public "we've sent you a private message" and a private message saying where to ask
  (SMS keywords, web chat, the WeChat account) — never an account figure in public. The forum
  never binds a number (``Ctx.can_bind``), and a reply that would carry a phone number anyway is
  sent privately instead.
* A complaint is registered and queued for the agents, with a note linking the post; the agent's
  replies are posted publicly in the topic.

Discourse: ``POST /channels/forum/discourse`` takes ``post_created`` / ``topic_created`` webhooks;
``X-Discourse-Event-Signature`` (``sha256=`` HMAC-SHA256 of the raw body) is compared in constant
time (403 otherwise); the body is read against a declared schema (``DiscourseEvent``, 400 naming the
field). ``X-Discourse-Event-Id`` de-duplicates, and so does the body itself (the signature covers it,
not the id): the same body again gets the first answer for a week, and a post older than that is
not answered (a replay). The feed: every
``feed_interval`` seconds, with ``ETag``/``Last-Modified``; entries seen are kept in Redis, so a
restart neither answers old posts again nor misses new ones; an edited post is not answered twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import html
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

import aiohttp
import feedparser
import msgspec
import redis.asyncio as aioredis
from aiohttp import web
from msgspec import Meta

from gateway import edge, tasks
from gateway.channels.authn import Replays, hmac_sha256, same
from gateway.channels.base import NO_COMMANDS, Adapter, Capabilities, Host, read_body
from gateway.edge import decode
from gateway.errors import BadRequest, Forbidden
from gateway.models import InboundMessage, OutboundMessage
from gateway.outbox import Job, Outbox, PermanentFailure, RetryLater, job_id, random_id
from gateway.rkeys import FORUM_EVENT_TTL, FORUM_FEED_LOCK_MIN_TTL, WEBHOOK_LONG_TTL
from gateway.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "forum"
MAX_BODY = 512 * 1024
MIN_POST = 20  # Discourse's default minimum post length
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)|\d{3}\*{4}\d{4}")
_TAGS = re.compile(r"<[^>]+>")
FORUM: web.AppKey[ForumChannel] = web.AppKey("forum_channel")


@dataclass(frozen=True, slots=True)
class Post:
    id: str  # Discourse post id, or the feed entry's id
    username: str
    text: str
    url: str
    topic_id: int | None = None  # Discourse only: where a public reply goes
    post_number: int | None = None
    title: str = ""
    source: str = "discourse"  # discourse | feed

    @property
    def sender(self) -> str:
        """One conversation per user per topic."""
        if self.topic_id is not None:
            return f"{self.username}@{self.topic_id}"
        return f"{self.username}@feed-{hashlib.sha1(self.url.encode()).hexdigest()[:12]}"


def plain(cooked: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>", "\n", cooked)
    return html.unescape(_TAGS.sub("", text)).strip()


class ForumChannel:
    name = CHANNEL

    # everyone reads what is answered: the bots keep account data out of it and answer that privately
    capabilities = Capabilities(push=True, buttons=False, public=True, variant="forum")
    commands = NO_COMMANDS

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.settings = settings
        self.f = settings.forum
        self.outbox: Outbox = host.outbox(CHANNEL, self.f, 1.0)
        self.keys = host.keys
        headers = {"Api-Key": self.f.api_key, "Api-Username": self.f.api_username}
        self.session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=15))
        self._poller: asyncio.Task[None] | None = None

    @property
    def redis(self) -> aioredis.Redis:
        return self.host.redis

    # ---- one new post, from either source -----------------------------------------------------------
    async def on_post(self, post: Post) -> bool:
        """Classify and answer ``post``; False when it is not ours to answer."""
        if post.username.lower() in {u.lower() for u in (*self.f.ignore_users, self.f.api_username)}:
            return False
        text = f"{post.title}\n{post.text}".strip() if post.title else post.text
        try:
            text = self.host.check_text(text[: self.settings.pipeline.max_message_chars])
        except BadRequest:
            return False
        if post.source == "feed" and not await self.host.for_people(text):
            return False  # no write API for this forum: only what needs a person (a complaint) goes on, to agents
        sender = post.sender
        await self.redis.hset(self.keys.forum_topic(sender), mapping={
            "topic_id": post.topic_id or "", "post_number": post.post_number or "", "url": post.url,
            "username": post.username, "source": post.source})  # fmt: skip
        inbound = InboundMessage(CHANNEL, sender, sender, text, f"post:{post.id}", time.time(), {"url": post.url},
                                 public=True)  # fmt: skip
        turn = await self.host.handle(inbound)
        if not turn.duplicate:  # an agent holding the conversation sees where it was posted
            await self.host.note(CHANNEL, sender, f"论坛帖子 / forum post: {post.url}")
        if post.source == "discourse":
            for i, reply in enumerate(r for r in turn.replies if r.text):
                await self.queue(reply, job_id(CHANNEL, sender, post.id, str(i)))
        return True

    # ---- out -------------------------------------------------------------------------------------------
    async def queue(self, message: OutboundMessage, id_: str = "") -> bool:
        text = message.text
        if message.sender == "agent" and message.agent:
            text = f"{text}\n\n—— {message.agent}"
        # for the customer alone, or (whatever produced it) a number: a private message, never in public
        kind = "pm" if message.private or _PHONE.search(text) else "public"
        job = Job(to=message.recipient_id, text=text, id=id_ or random_id(), kind=kind,
                  conversation_id=message.conversation_id)  # fmt: skip
        return await self.outbox.put(job)

    async def push(self, message: OutboundMessage) -> None:
        """Agents' replies and late answers are posted; queue positions and typing are not forum posts."""
        if message.kind != "message" or message.sender == "system":
            return
        await self.queue(message)

    async def send_job(self, job: Job) -> str | None:
        topic = await self.redis.hgetall(self.keys.forum_topic(job.to))
        if not topic or topic.get(b"source") != b"discourse":
            raise PermanentFailure("no Discourse topic for this conversation (feed forums have no write API)")
        username = topic[b"username"].decode()
        text = job.text if len(job.text) >= MIN_POST else job.text + "\n\n" + "——" * (MIN_POST // 2)
        if job.kind == "pm":
            body: dict[str, Any] = {"title": _pm_title(text), "raw": text, "target_recipients": username,
                                    "archetype": "private_message"}  # fmt: skip
        else:
            body = {"topic_id": int(topic[b"topic_id"]), "raw": text}
            if topic.get(b"post_number"):
                body["reply_to_post_number"] = int(topic[b"post_number"])
        try:
            async with self.session.post(f"{self.f.discourse_url.rstrip('/')}/posts.json", json=body) as resp:
                status = resp.status
                data = await resp.json(content_type=None) if resp.content_length != 0 else {}
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise RetryLater(f"discourse unreachable: {type(exc).__name__}") from None
        if status == 429:
            wait = (data.get("extras") or {}).get("wait_seconds") if isinstance(data, dict) else None
            raise RetryLater("discourse rate limit", float(wait) if wait else None)
        if status >= 500:
            raise RetryLater(f"discourse HTTP {status}")
        if status >= 400:
            errors = data.get("errors") if isinstance(data, dict) else None
            raise PermanentFailure(f"discourse HTTP {status}: {str(errors)[:100]}")
        return str(data.get("id", "")) or None

    # ---- the feed -------------------------------------------------------------------------------------
    def start_feed(self) -> None:
        if self.f.feed_url:
            self._poller = asyncio.create_task(self._poll_forever(), name="forum-feed")

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll_feed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("forum feed: poll failed (%s); trying again in %.0f s", type(exc).__name__,
                            self.f.feed_interval)  # fmt: skip
            await asyncio.sleep(self.f.feed_interval)

    async def poll_feed(self) -> int:
        """One poll: the number of new posts handled. Only one process polls at a time."""
        lock = self.keys.forum_feed_lock()
        if not await self.redis.set(lock, "1", nx=True, ex=max(int(self.f.feed_interval), FORUM_FEED_LOCK_MIN_TTL)):
            return 0
        try:
            return await self._poll_once()
        finally:
            await self.redis.delete(lock)

    async def _poll_once(self) -> int:
        state = await self.redis.hgetall(self.keys.forum_feed_http())
        headers = {}
        if state.get(b"etag"):
            headers["If-None-Match"] = state[b"etag"].decode()
        if state.get(b"modified"):
            headers["If-Modified-Since"] = state[b"modified"].decode()
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
            session.get(self.f.feed_url, headers=headers) as resp,
        ):
            if resp.status == 304:
                return 0
            if resp.status != 200:
                raise RetryLater(f"feed HTTP {resp.status}")
            body = await resp.read()
            etag, modified = resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", "")
        feed = await asyncio.to_thread(feedparser.parse, body)
        seen_key = self.keys.forum_feed_seen()
        first_poll = not await self.redis.exists(seen_key)
        handled = 0
        for entry in feed.entries:
            guid = str(entry.get("id") or entry.get("link") or "")
            if not guid:
                continue
            updated = str(entry.get("updated") or entry.get("published") or "")
            previous = await self.redis.hget(seen_key, guid)
            if previous is not None:
                if previous.decode() != updated:  # an edit: noted, not answered again
                    await self.redis.hset(seen_key, guid, updated)
                continue
            await self.redis.hset(seen_key, guid, updated)
            if first_poll and not self.f.feed_answer_backlog:
                continue
            body_html = entry.get("summary") or ""
            if entry.get("content"):
                body_html = entry["content"][0].get("value", body_html)
            post = Post(id="feed-" + hashlib.sha1(guid.encode()).hexdigest()[:16],
                        username=str(entry.get("author") or "guest"), text=plain(body_html),
                        url=str(entry.get("link") or guid), title=str(entry.get("title") or ""),
                        source="feed")  # fmt: skip
            if await self.on_post(post):
                handled += 1
        if first_poll:
            await self.redis.hset(seen_key, "__started__", str(time.time()))
        await self.redis.hset(self.keys.forum_feed_http(), mapping={"etag": etag, "modified": modified})
        return handled

    def state(self) -> str:
        return "ready"

    async def start(self) -> None:
        self.outbox.start(self.send_job)
        self.start_feed()

    async def close(self) -> None:
        await self.outbox.stop(self.settings.server.shutdown_timeout)
        await tasks.stop(self._poller)
        await self.session.close()


def _pm_title(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "客服回复"
    return (first[:40] + "…") if len(first) > 40 else first.ljust(15, "　")


# ---- the Discourse webhook ---------------------------------------------------------------------------------
class DiscoursePost(msgspec.Struct):
    """The parts of Discourse's ``WebHookPostSerializer`` we read."""

    id: Annotated[int, Meta(ge=1)]
    topic_id: Annotated[int, Meta(ge=1)]
    username: Annotated[str, Meta(min_length=1, max_length=256)]
    post_number: Annotated[int, Meta(ge=1)] | None = None
    raw: Annotated[str, Meta(max_length=MAX_BODY)] | None = None
    cooked: Annotated[str, Meta(max_length=MAX_BODY)] | None = None
    topic_slug: Annotated[str, Meta(max_length=512)] | None = None
    topic_title: Annotated[str, Meta(max_length=1024)] | None = None
    created_at: Annotated[str, Meta(max_length=64)] | None = None


class DiscourseEvent(msgspec.Struct):
    """A webhook body: ``{"post": …}`` for post events (others, ``{"topic": …}``, ``{"ping": "OK"}``, are not read)."""

    post: DiscoursePost | None = None


def _stale(created_at: str | None) -> bool:
    """A post older than the replay record's lifetime: a replay (or a very late redelivery), not answered."""
    if not created_at:
        return False
    try:
        moment = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (dt.datetime.now(dt.UTC) - moment).total_seconds() > WEBHOOK_LONG_TTL


async def discourse_webhook(request: web.Request) -> web.Response:
    channel = request.config_dict[FORUM]
    body = await read_body(request, MAX_BODY)
    sent = request.headers.get("X-Discourse-Event-Signature", "")
    if not sent or not same(sent, hmac_sha256(channel.f.webhook_secret, body)):
        raise Forbidden("X-Discourse-Event-Signature is missing or does not match the body",
                        field="X-Discourse-Event-Signature")  # fmt: skip
    event = edge.text(request.headers.get("X-Discourse-Event", ""), "X-Discourse-Event", 64, required=False)
    event_id = edge.text(request.headers.get("X-Discourse-Event-Id", ""), "X-Discourse-Event-Id", 32, required=False)
    data = decode(body, DiscourseEvent)
    if event == "ping" or request.headers.get("X-Discourse-Event-Type") == "ping":
        return web.json_response({"status": "pong"})
    # the signature covers the body, not the event id: the same body again is a redelivery (or a replay), whatever
    # id it comes with, and gets the first answer; recorded once handled, so a delivery that died is handled again
    replays = Replays(channel.redis, channel.host.keys, CHANNEL)
    recorded = await replays.recorded(body)
    if recorded is not None:
        return web.json_response({"status": "duplicate"})
    if event_id and not await channel.redis.set(channel.keys.forum_event(event_id), "1", nx=True, ex=FORUM_EVENT_TTL):
        return web.json_response({"status": "duplicate"})  # Discourse redelivered an event we have
    try:
        answer = await _discourse_event(channel, event, data)
    except BaseException:
        if event_id:  # not handled: let Discourse's redelivery through
            await channel.redis.delete(channel.keys.forum_event(event_id))
        raise
    await replays.record(body, answer["status"], WEBHOOK_LONG_TTL)
    return web.json_response(answer)


async def _discourse_event(channel: ForumChannel, event: str, data: DiscourseEvent) -> dict[str, Any]:
    if event != "post_created":
        return {"status": "ignored", "event": event}  # a new topic's first post comes as post_created
    raw = data.post
    if raw is None:
        raise BadRequest("'post' with 'id', 'topic_id' and 'username' is required for post_created", field="post")
    if _stale(raw.created_at):
        return {"status": "ignored", "reason": "stale"}
    base = channel.f.discourse_url.rstrip("/")
    number = raw.post_number or 1
    post = Post(id=str(raw.id), username=raw.username, text=raw.raw or plain(raw.cooked or ""),
                url=f"{base}/t/{raw.topic_slug or '-'}/{raw.topic_id}/{number}",
                topic_id=raw.topic_id, post_number=number,
                title=(raw.topic_title or "") if number == 1 else "")  # fmt: skip
    answered = await channel.on_post(post)
    log.info("forum: post %s in topic %s %s", post.id, post.topic_id, "answered" if answered else "not for us")
    return {"status": "accepted" if answered else "ignored"}


def _routes(settings: Settings) -> list[web.RouteDef]:
    return [web.post("/discourse", discourse_webhook)] if settings.forum.webhook_secret else []


ADAPTER = Adapter(CHANNEL, FORUM, lambda s: bool(s.forum.enabled and (s.forum.webhook_secret or s.forum.feed_url)),
                  ForumChannel, _routes, prefix="/channels/forum/")  # fmt: skip
