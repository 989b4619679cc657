"""Fake forums for end-to-end tests: a Discourse instance (``FakeDiscourse``) and a forum's RSS/Atom feeds
(``FeedServer``), each an aiohttp app on 127.0.0.1:<random port> speaking the real wire format.

**Discourse API** (what the gateway calls): ``POST /posts.json`` with the headers ``Api-Key`` and ``Api-Username``,
a JSON or form body: a reply ``{"topic_id", "raw", "reply_to_post_number"?}``, a new topic ``{"title", "raw",
"category"?}`` or a private message ``{"title", "raw", "target_recipients": "user1,user2",
"archetype": "private_message"}``. 200 → the post JSON (PostSerializer + ``draft_sequence``); errors are
``{"errors": [...], "error_type": "..."}``:

* no ``Api-Key`` → 403 ``not_logged_in``; a wrong key, or an ``Api-Username`` the key may not act as → 403
  ``invalid_access`` ("You are not permitted to view the requested resource. The API username or key is invalid.");
* a failed validation → 422 ``{"action": "create_post", "errors": ["Body is too short (minimum is 20 characters)"]}``
  (NewPostResultSerializer: no ``error_type``). Lengths are Discourse's defaults: ``min_post_length`` 20,
  ``min_personal_message_post_length`` 10, ``min_topic_title_length`` 15, ``min_personal_message_title_length`` 2,
  ``max_post_length`` 32000 — counted on the stripped text, so a short Chinese answer (您好，已为您处理。) is refused;
* rate limited → 429 with ``Retry-After`` and ``{"errors": ["You’ve performed this action too many times. Please
  wait 10 seconds before trying again."], "error_type": "rate_limit", "extras": {"wait_seconds": 10,
  "time_left": "10 seconds"}}``.

**Discourse webhooks** (what the gateway receives), as ``Jobs::EmitWebHookEvent`` sends them: ``POST <url>`` with the
body ``{"post": {...}}`` / ``{"topic": {...}}`` (``{"ping": "OK"}`` for a ping) and the headers ``Content-Type:
application/json``, ``User-Agent: Discourse/<version>``, ``X-Discourse-Instance`` (the forum's base URL),
``X-Discourse-Event-Id`` (the id of the WebHookEvent row: an integer, increasing), ``X-Discourse-Event-Type``
(``post``/``topic``/``ping``), ``X-Discourse-Event`` (``post_created``, ``post_edited``, ``topic_created`` …; absent for
a ping) and, only when the webhook has a secret, ``X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the raw
body>``. Post payloads are WebHookPostSerializer's: ``cooked`` HTML *and* ``raw`` (``include_raw?`` is true in
current Discourse; releases before ~2.7 sent no ``raw``), ``topic_title``, ``topic_slug``, ``category_id``,
``topic_archetype`` ("regular" / "private_message") …

**FeedServer**: ``/latest.rss`` (RSS 2.0, shaped like Discourse's ``latest.rss``) and ``/latest.atom`` (Atom 1.0,
shaped like phpBB's feed; Discourse itself has no Atom feed) with weak ``ETag``/``If-None-Match`` and
``Last-Modified``/``If-Modified-Since`` → 304, as Rails (Rack::ETag) and most forums do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import email.utils
import hashlib
import hmac
import html
import http
import itertools
import json
import re
from typing import Any

import aiohttp
from aiohttp import web

_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
NOT_LOGGED_IN = "You need to be logged in to do that."
INVALID_API_CREDENTIALS = "You are not permitted to view the requested resource. The API username or key is invalid."
NOT_FOUND = "The requested URL or resource could not be found."


def _iso(moment: dtm.datetime) -> str:
    """Rails' JSON time: ``2024-05-01T08:30:00.123Z``."""
    return moment.astimezone(dtm.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> dtm.datetime:
    return dtm.datetime.now(dtm.UTC)


def slugify(title: str) -> str:
    """Discourse's default ("ascii") slug; a title without ASCII letters or digits gets "topic"."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:100] or "topic"


def cook(raw: str) -> str:
    """A minimal stand-in for Discourse's Markdown cooking: paragraphs on blank lines, <br> on line breaks."""
    paragraphs = [p for p in re.split(r"\n\s*\n", raw.strip()) if p.strip()]
    return "\n".join("<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs)


def _stripped_length(raw: str) -> int:
    return len(re.sub(r"\s+", " ", raw.strip()))


def _time_left(seconds: int) -> str:
    if seconds <= 3:
        return "a few seconds"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = round(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class DiscourseError(Exception):
    """An error answer: a JSON object, or (a proxy's page) HTML text."""

    def __init__(self, status: int, body: dict | str, headers: dict[str, str] | None = None) -> None:
        super().__init__(body if isinstance(body, str) else json.dumps(body, ensure_ascii=False))
        self.status, self.body, self.headers = status, body, headers or {}


def _errors(status: int, message: str, error_type: str | None = None, **extra: Any) -> DiscourseError:
    body: dict[str, Any] = {"errors": [message]}
    if error_type:
        body["error_type"] = error_type
    body.update(extra)
    return DiscourseError(status, body)


def _invalid(*messages: str) -> DiscourseError:
    return DiscourseError(422, {"action": "create_post", "errors": list(messages)})


class FakeDiscourse:
    """A Discourse instance: the posts API, the forum's state, and its webhooks; see the module docstring."""

    def __init__(
        self,
        api_key: str = "discourse-api-key-0123456789abcdef",
        api_username: str = "system",
        *,
        single_user_key: bool = False,
        version: str = "3.3.2",
        min_post_length: int = 20,
        min_personal_message_post_length: int = 10,
        min_topic_title_length: int = 15,
        min_personal_message_title_length: int = 2,
        max_post_length: int = 32000,
    ) -> None:
        self.api_key = api_key
        self.api_username = api_username
        self.single_user_key = single_user_key  # True: the key may only act as api_username
        self.version = version
        self.min_post_length = min_post_length
        self.min_personal_message_post_length = min_personal_message_post_length
        self.min_topic_title_length = min_topic_title_length
        self.min_personal_message_title_length = min_personal_message_title_length
        self.max_post_length = max_post_length
        self.base_url = ""  # http://127.0.0.1:<port>
        self.instance = ""  # X-Discourse-Instance of webhooks; base_url unless set before start()
        # state
        self.users: dict[str, dict] = {}  # lower-case username → {"id", "username", "name"}
        self.topics: dict[int, dict] = {}  # id → {"id", "title", "slug", "archetype", "category_id", "recipients" …}
        self.posts: list[dict] = []  # every post created through the API, as answered
        self.calls: list[dict] = []  # API requests but when down: {"method", "path", "headers", "params", "status" …}
        self.deliveries: list[dict] = []  # every webhook sent: {"url", "headers", "body" (bytes), "status"}
        # controls
        self.down = False
        self.missing_topics: set[int] = set()  # replies → 404
        self._failures: list[list[Any]] = []  # [remaining, status, wait_seconds, errors]
        self._user_ids = itertools.count(2)
        self._topic_ids = itertools.count(101)
        self._post_ids = itertools.count(1001)
        self._event_ids = itertools.count(1)
        self._draft_sequence = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.add_user("system", "system", user_id=-1)
        self.add_user(api_username)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/posts.json", self._create_post)
        app.router.add_post("/posts", self._create_post)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self.instance = self.instance or self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscourse:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ controls and inspection

    def add_user(self, username: str, name: str | None = None, *, user_id: int | None = None) -> dict:
        key = username.lower()
        if key not in self.users:
            uid = user_id if user_id is not None else next(self._user_ids)
            self.users[key] = {"id": uid, "username": username, "name": name if name is not None else username}
        return self.users[key]

    def add_topic(
        self,
        title: str,
        *,
        topic_id: int | None = None,
        archetype: str = "regular",
        category_id: int | None = 1,
        recipients: list[str] | None = None,
        username: str = "customer",
        posts: int = 0,
    ) -> dict:
        """Registers a topic (its first ``posts`` posts are taken as existing); returns it."""
        tid = topic_id if topic_id is not None else next(self._topic_ids)
        user = self.add_user(username)
        topic = {
            "id": tid,
            "title": title,
            "fancy_title": html.escape(title, quote=False),
            "slug": slugify(title),
            "archetype": archetype,
            "category_id": None if archetype == "private_message" else category_id,
            "recipients": [r.lower() for r in recipients or []],
            "user_id": user["id"],
            "created_by": user["username"],
            "created_at": _now(),
            "highest_post_number": posts,
            "posts_count": posts,
        }
        self.topics[tid] = topic
        return topic

    def fail(self, times: int, status: int = 500, *, wait_seconds: int = 10, errors: list[str] | None = None) -> None:
        """The next ``times`` authenticated POST /posts.json answer ``status``: 429 as Discourse's rate limiter
        (``wait_seconds`` in ``extras`` and ``Retry-After``), 500 as Rails' JSON error, other 5xx as nginx's HTML page,
        4xx as ``{"errors": errors}``."""
        self._failures.append([times, status, wait_seconds, errors])

    def replies_in(self, topic_id: int) -> list[dict]:
        return [p for p in self.posts if p["topic_id"] == topic_id]

    def private_messages(self, to: str) -> list[dict]:
        """Posts created in private-message topics whose recipients include ``to``."""
        return [
            p
            for p in self.posts
            if self.topics[p["topic_id"]]["archetype"] == "private_message"
            and to.lower() in self.topics[p["topic_id"]]["recipients"]
        ]

    async def wait_posts(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Waits until ``count`` posts were created through the API; returns all of them (AssertionError, listing the
        API calls, on timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.posts) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(c["params"], c["status"], c["body"]) for c in self.calls]
                raise AssertionError(f"expected {count} Discourse post(s), got {len(self.posts)}; calls: {seen!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return list(self.posts)

    def reset(self) -> None:
        self.posts.clear()
        self.calls.clear()
        self.deliveries.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ API server

    async def _not_found(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        return web.json_response({"errors": [NOT_FOUND], "error_type": "not_found"}, status=404)

    async def _create_post(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        params: dict[str, Any] = {}
        try:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _errors(400, "You supplied invalid parameters to the request: JSON") from None
                if not isinstance(body, dict):
                    raise _errors(400, "You supplied invalid parameters to the request: JSON")
                params = body
            else:
                form = await request.post()
                params = {k: v for k, v in form.items() if isinstance(v, str)}
            username = self._authenticate(request)
            self._inject_failure()
            status, answer, headers = 200, self._create(username, params), {}
        except DiscourseError as exc:
            status, answer, headers = exc.status, exc.body, exc.headers
        self.calls.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": {k: request.headers.get(k) for k in ("Api-Key", "Api-Username", "Content-Type")},
                "params": params,
                "status": status,
                "body": answer,
            }
        )
        self._changed.set()
        if isinstance(answer, str):  # an nginx page
            return web.Response(status=status, text=answer, content_type="text/html", headers=headers)
        return web.json_response(
            answer, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False)
        )

    def _authenticate(self, request: web.Request) -> str:
        key = request.headers.get("Api-Key")
        username = request.headers.get("Api-Username") or (self.api_username if self.single_user_key else "")
        if not key:
            raise _errors(403, NOT_LOGGED_IN, "not_logged_in")
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise _errors(403, INVALID_API_CREDENTIALS, "invalid_access")
        if self.single_user_key and username.lower() != self.api_username.lower():
            raise _errors(403, INVALID_API_CREDENTIALS, "invalid_access")
        if username.lower() not in self.users:
            raise _errors(403, INVALID_API_CREDENTIALS, "invalid_access")
        return self.users[username.lower()]["username"]

    def _inject_failure(self) -> None:
        for failure in self._failures:
            remaining, status, wait_seconds, errors = failure
            if remaining <= 0:
                continue
            failure[0] -= 1
            if failure[0] <= 0:
                self._failures.remove(failure)
            if status == 429:
                message = (
                    f"You’ve performed this action too many times. Please wait {_time_left(wait_seconds)} "
                    "before trying again."
                )
                raise DiscourseError(
                    429,
                    {
                        "errors": errors or [message],
                        "error_type": "rate_limit",
                        "extras": {"wait_seconds": wait_seconds, "time_left": _time_left(wait_seconds)},
                    },
                    {"Retry-After": str(wait_seconds)},
                )
            if status == 500:
                raise DiscourseError(500, {"status": 500, "error": "Internal Server Error"})
            if status >= 500:  # what the reverse proxy answers
                raise DiscourseError(status, _BAD_GATEWAY_HTML.replace("502 Bad Gateway", f"{status} {phrase(status)}"))
            raise DiscourseError(status, {"errors": errors or [f"HTTP {status}"]})

    def _create(self, username: str, params: dict[str, Any]) -> dict:
        raw = params.get("raw")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise _errors(400, "param is missing or the value is empty: raw")
        raw = str(raw)
        title = str(params.get("title") or "").strip()
        archetype = str(params.get("archetype") or "regular")
        topic_id = params.get("topic_id")
        if archetype == "private_message":
            recipients = str(params.get("target_recipients") or params.get("target_usernames") or "")
            names = [n.strip() for n in recipients.split(",") if n.strip()]
            if not names:
                raise _invalid("You must choose a valid user.")
            self._check_lengths(
                raw, self.min_personal_message_post_length, title, self.min_personal_message_title_length
            )
            for name in names:
                self.add_user(name)
            topic = self.add_topic(title, archetype="private_message", recipients=names, username=username)
        elif topic_id not in (None, ""):
            try:
                tid = int(topic_id)
            except (TypeError, ValueError):
                raise _errors(400, f"You supplied invalid parameters to the request: topic_id={topic_id}") from None
            if tid in self.missing_topics:
                raise _errors(404, NOT_FOUND, "not_found")
            topic = self.topics.get(tid) or self.add_topic(f"Topic {tid}", topic_id=tid, posts=1)
            self._check_lengths(raw, self.min_post_length)
        else:
            if not title:
                raise _invalid("Title can't be blank")
            self._check_lengths(raw, self.min_post_length, title, self.min_topic_title_length)
            category = params.get("category")
            topic = self.add_topic(title, category_id=int(category) if category else 1, username=username)
        reply_to = params.get("reply_to_post_number")
        post = self._new_post(topic, raw, username, int(reply_to) if reply_to not in (None, "") else None)
        answer = self._serialize(post, api=True)
        self.posts.append(answer)
        return answer

    def _check_lengths(self, raw: str, min_body: int, title: str | None = None, min_title: int = 0) -> None:
        errors = []
        if title is not None:
            if not title:
                errors.append("Title can't be blank")
            elif len(title) < min_title:
                errors.append(f"Title is too short (minimum is {min_title} characters)")
        length = _stripped_length(raw)
        if length < min_body:
            errors.append(f"Body is too short (minimum is {min_body} characters)")
        elif length > self.max_post_length:
            errors.append(f"Body is limited to {self.max_post_length} characters; you entered {length}.")
        if errors:
            raise _invalid(*errors)

    # ------------------------------------------------------------------ posts, as stored and as serialized

    def _new_post(
        self,
        topic: dict,
        raw: str,
        username: str,
        reply_to_post_number: int | None,
        post_number: int | None = None,
        created_at: dtm.datetime | None = None,
    ) -> dict:
        user = self.add_user(username)
        number = post_number if post_number is not None else topic["highest_post_number"] + 1
        topic["highest_post_number"] = max(topic["highest_post_number"], number)
        topic["posts_count"] += 1
        moment = created_at or _now()
        return {
            "id": next(self._post_ids),
            "user": user,
            "topic": topic,
            "raw": raw,
            "post_number": number,
            "reply_to_post_number": reply_to_post_number,
            "created_at": moment,
            "updated_at": moment,
            "version": 1,
        }

    def _serialize(self, post: dict, *, api: bool) -> dict:
        user, topic = post["user"], post["topic"]
        system = user["id"] < 0
        body: dict[str, Any] = {
            "id": post["id"],
            "name": user["name"],
            "username": user["username"],
            "avatar_template": f"/letter_avatar_proxy/v4/letter/{user['username'][0].lower()}/4da419/{{size}}.png",
            "created_at": _iso(post["created_at"]),
            "raw": post["raw"],
            "cooked": cook(post["raw"]),
            "post_number": post["post_number"],
            "post_type": 1,
            "updated_at": _iso(post["updated_at"]),
            "reply_count": 0,
            "reply_to_post_number": post["reply_to_post_number"],
            "quote_count": 0,
            "incoming_link_count": 0,
            "reads": 1 if api else 0,
            "readers_count": 0,
            "score": 0,
            "topic_id": topic["id"],
            "topic_slug": topic["slug"],
            "display_username": user["name"],
            "primary_group_name": None,
            "flair_name": None,
            "flair_url": None,
            "flair_bg_color": None,
            "flair_color": None,
            "version": post["version"],
            "user_title": None,
            "bookmarked": False,
            "moderator": system,
            "admin": system,
            "staff": system,
            "user_id": user["id"],
            "hidden": False,
            "trust_level": 4 if system else 1,
            "deleted_at": None,
            "user_deleted": False,
            "edit_reason": None,
            "wiki": False,
            "reviewable_id": None,
            "reviewable_score_count": 0,
            "reviewable_score_pending_count": 0,
        }
        if api:  # posts#create: PostSerializer as seen by the poster, plus draft_sequence
            body.update(
                yours=True,
                can_edit=True,
                can_delete=True,
                can_recover=False,
                can_wiki=True,
                actions_summary=[],
                can_view_edit_history=True,
                draft_sequence=next(self._draft_sequence),
            )
        else:  # WebHookPostSerializer
            body.update(
                topic_title=topic["title"],
                topic_html_title=html.escape(topic["title"], quote=False),
                category_id=topic["category_id"],
                topic_posts_count=topic["posts_count"],
                topic_filtered_posts_count=topic["posts_count"],
                topic_archetype=topic["archetype"],
                category_slug=None if topic["category_id"] is None else "uncategorized",
            )
        return body

    # ------------------------------------------------------------------ webhooks

    def new_post(
        self,
        topic_id: int,
        raw: str,
        username: str = "customer",
        post_number: int | None = None,
        *,
        reply_to_post_number: int | None = None,
        created_at: dtm.datetime | None = None,
    ) -> dict:
        """A post by ``username`` in ``topic_id`` (registered, as "Topic <id>", if unknown) as a webhook carries it;
        the forum's state follows (the gateway's next reply gets the next post_number)."""
        topic = self.topics.get(topic_id) or self.add_topic(f"Topic {topic_id}", topic_id=topic_id, username=username)
        post = self._new_post(topic, raw, username, reply_to_post_number, post_number, created_at)
        return self._serialize(post, api=False)

    def edit_post(self, post: dict, raw: str) -> dict:
        """The webhook payload of ``post`` (a ``new_post`` dict) after an edit (for ``post_edited``)."""
        edited = dict(post)
        edited.update(raw=raw, cooked=cook(raw), version=post["version"] + 1, updated_at=_iso(_now()))
        return edited

    def new_topic(
        self,
        title: str,
        username: str = "customer",
        *,
        category_id: int | None = 1,
        archetype: str = "regular",
        recipients: list[str] | None = None,
    ) -> dict:
        """A new topic as the ``topic`` of a ``topic_created`` webhook (WebHookTopicViewSerializer, abridged)."""
        topic = self.add_topic(
            title, archetype=archetype, category_id=category_id, recipients=recipients, username=username
        )
        user = self.users[topic["created_by"].lower()]
        person = {"id": user["id"], "username": user["username"], "name": user["name"], "avatar_template": ""}
        return {
            "tags": [],
            "tags_descriptions": {},
            "id": topic["id"],
            "title": topic["title"],
            "fancy_title": topic["fancy_title"],
            "posts_count": topic["posts_count"],
            "created_at": _iso(topic["created_at"]),
            "views": 0,
            "reply_count": 0,
            "like_count": 0,
            "last_posted_at": _iso(topic["created_at"]),
            "visible": True,
            "closed": False,
            "archived": False,
            "archetype": topic["archetype"],
            "slug": topic["slug"],
            "category_id": topic["category_id"],
            "word_count": 0,
            "deleted_at": None,
            "user_id": user["id"],
            "featured_link": None,
            "pinned_globally": False,
            "pinned_at": None,
            "pinned_until": None,
            "unpinned": None,
            "pinned": False,
            "highest_post_number": topic["highest_post_number"],
            "deleted_by": None,
            "bookmarked": None,
            "participant_count": 1,
            "thumbnails": None,
            "created_by": person,
            "last_poster": person,
        }

    @staticmethod
    def event_type(event: str) -> str:
        """``X-Discourse-Event-Type`` of an event name: post_created → post, topic_created → topic, ping → ping."""
        return "ping" if event == "ping" else event.split("_", 1)[0]

    def webhook_body(self, event: str, payload: dict | None = None) -> dict:
        """The JSON object Discourse posts for ``event``: ``{"post": payload}``, ``{"topic": payload}`` …
        (``{"ping": "OK"}`` for a ping). An already wrapped ``payload`` is returned as is."""
        kind = self.event_type(event)
        if kind == "ping":
            return {"ping": "OK"}
        if payload is None:
            raise ValueError(f"{event} needs a payload")
        if list(payload) == [kind]:
            return payload
        return {kind: payload}

    @staticmethod
    def signature(secret: str, body: bytes) -> str:
        return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()

    def webhook_request(
        self, event: str, payload: dict | None, *, secret: str | None, event_id: int | None = None, forge: bool = False
    ) -> tuple[dict[str, str], bytes]:
        """(headers, body) of the webhook POST for ``event``. No signature header without a secret (as Discourse);
        ``forge=True`` signs with a wrong secret."""
        body = json.dumps(self.webhook_body(event, payload), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Accept": "*/*",
            "Connection": "close",
            "Content-Type": "application/json",
            "User-Agent": f"Discourse/{self.version}",
            "X-Discourse-Instance": self.instance or self.base_url or "http://127.0.0.1",
            "X-Discourse-Event-Id": str(event_id if event_id is not None else next(self._event_ids)),
            "X-Discourse-Event-Type": self.event_type(event),
        }
        if event != "ping":
            headers["X-Discourse-Event"] = event
        if secret or forge:
            headers["X-Discourse-Event-Signature"] = self.signature(f"forged-{secret}" if forge else str(secret), body)
        return headers, body

    async def deliver(
        self,
        url: str,
        event: str,
        payload: dict | None = None,
        *,
        secret: str | None,
        event_id: int | None = None,
        forge: bool = False,
        timeout: float = 5.0,
    ) -> int:
        """POSTs the webhook for ``event`` to ``url``; returns the HTTP status (0: no answer / connection failed).
        Each delivery gets the next event id unless ``event_id`` is given; ``deliveries`` keeps what was sent."""
        headers, body = self.webhook_request(event, payload, secret=secret, event_id=event_id, forge=forge)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.post(url, data=body, headers=headers) as resp,
            ):
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError):
            status = 0
        self.deliveries.append({"url": url, "headers": headers, "body": body, "status": status})
        return status


# ---------------------------------------------------------------------------------------------------- feeds


def _http_date(moment: dtm.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dtm.UTC), usegmt=True)


def _rfc3339(moment: dtm.datetime) -> str:
    return moment.astimezone(dtm.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _second(moment: dtm.datetime) -> dtm.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dtm.UTC)
    return moment.astimezone(dtm.UTC).replace(microsecond=0)


class FeedServer:
    """A forum's latest-topics feeds, RSS 2.0 at ``url_rss`` and Atom 1.0 at ``url_atom``, from ``items``.

    Each item: ``guid`` (RSS ``<guid isPermaLink="false">``), ``atom_id`` (Atom's ``<id>``: ``guid`` when it is an
    absolute IRI, else ``urn:forum:<guid>`` — a relative id would be resolved against the feed URL by feedparser),
    ``link`` (``<base>/t/<slug>/<n>``),
    ``title``, ``author``, ``published``, ``updated`` (aware datetimes, whole seconds), ``summary`` (the body) — newest
    ``published`` first. RSS has no per-item "updated" element: items carry ``<atom:updated>`` (as some forums add;
    Discourse's own latest.rss has only ``pubDate``) unless ``rss_updated=False``.

    Conditional GET: a weak ``ETag`` (W/"md5 of the body") and ``Last-Modified`` (the newest ``updated``);
    ``If-None-Match`` (weak comparison, a list or ``*``) decides when present, else ``If-Modified-Since``; a match
    is a bodiless 304. ``edit`` moves ``updated`` past the current Last-Modified so a poller's If-Modified-Since
    cannot hide an edit made within the same second."""

    def __init__(self, title: str = "测试论坛", *, rss_updated: bool = True) -> None:
        self.title = title
        self.rss_updated = rss_updated
        self.base_url = ""
        self.items: list[dict] = []
        self.requests = 0  # feed GETs answered (304s and failures included)
        self.served: list[tuple[str, int]] = []  # (path, status) of each
        self.down = False
        self._failures: list[list[int]] = []  # [remaining, status]
        self._numbers = itertools.count(1)
        self._started = _second(_now())
        self._runner: web.AppRunner | None = None

    @property
    def url_rss(self) -> str:
        return f"{self.base_url}/latest.rss"

    @property
    def url_atom(self) -> str:
        return f"{self.base_url}/latest.atom"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/latest.rss", self._rss)
        app.router.add_get("/latest.atom", self._atom)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FeedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ content

    @property
    def last_modified(self) -> dtm.datetime:
        return max((item["updated"] for item in self.items), default=self._started)

    def add(self, guid: str, title: str, body: str, author: str, published: dtm.datetime | None = None) -> dict:
        """A new topic; ``updated`` = ``published`` (default: now, or just past Last-Modified)."""
        if any(item["guid"] == guid for item in self.items):
            raise ValueError(f"duplicate guid {guid!r}")
        moment = _second(published) if published is not None else max(_second(_now()), self._bumped())
        number = next(self._numbers)
        item = {
            "guid": guid,
            "title": title,
            "link": f"{self.base_url}/t/{slugify(title)}/{number}",
            "atom_id": guid if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", guid) else f"urn:forum:{guid}",
            "author": author,
            "published": moment,
            "updated": moment,
            "summary": body,
        }
        self.items.append(item)
        self.items.sort(key=lambda i: i["published"], reverse=True)
        return item

    def edit(self, guid: str, body: str) -> dict:
        """Changes an item's body; ``updated`` moves to now (at least one second past Last-Modified), ``guid``,
        ``link`` and ``published`` stay."""
        item = self.item(guid)
        item["summary"] = body
        item["updated"] = max(_second(_now()), self._bumped())
        return item

    def item(self, guid: str) -> dict:
        for item in self.items:
            if item["guid"] == guid:
                return item
        raise KeyError(guid)

    def _bumped(self) -> dtm.datetime:
        return self.last_modified + dtm.timedelta(seconds=1)

    def fail(self, times: int, status: int = 500) -> None:
        self._failures.append([times, status])

    @staticmethod
    def _html(body: str) -> str:
        return "\n".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())

    def rss(self) -> str:
        esc = html.escape
        entries = []
        for item in self.items:
            updated = f"\n      <atom:updated>{_rfc3339(item['updated'])}</atom:updated>" if self.rss_updated else ""
            entries.append(
                f"""    <item>
      <title>{esc(item["title"])}</title>
      <dc:creator>{_cdata(item["author"])}</dc:creator>
      <category>Uncategorized</category>
      <description>{_cdata(self._html(item["summary"]))}</description>
      <link>{esc(item["link"])}</link>
      <pubDate>{email.utils.format_datetime(item["published"])}</pubDate>{updated}
      <guid isPermaLink="false">{esc(item["guid"])}</guid>
      <source url="{esc(item["link"])}.rss">{esc(item["title"])}</source>
    </item>"""
            )
        return f"""<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:discourse="http://www.discourse.org/" xmlns:atom="http://www.w3.org/2005/Atom" \
xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>{esc(self.title)} - Latest topics</title>
    <link>{self.base_url}/latest</link>
    <description>Latest topics</description>
    <lastBuildDate>{email.utils.format_datetime(self.last_modified)}</lastBuildDate>
    <atom:link href="{self.url_rss}" rel="self" type="application/rss+xml" />
{chr(10).join(entries)}
  </channel>
</rss>
"""

    def atom(self) -> str:
        esc = html.escape
        entries = []
        for item in self.items:
            entries.append(
                f"""<entry>
<author><name>{_cdata(item["author"])}</name></author>
<updated>{_rfc3339(item["updated"])}</updated>
<published>{_rfc3339(item["published"])}</published>
<id>{esc(item["atom_id"])}</id>
<link href="{esc(item["link"])}"/>
<title type="html">{_cdata(item["title"])}</title>
<content type="html">{_cdata(self._html(item["summary"]))}</content>
</entry>"""
            )
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-cn">
<link rel="self" type="application/atom+xml" href="{self.url_atom}" />
<title>{esc(self.title)}</title>
<link href="{self.base_url}/" />
<updated>{_rfc3339(self.last_modified)}</updated>
<author><name>{_cdata(self.title)}</name></author>
<id>{self.url_atom}</id>
{chr(10).join(entries)}
</feed>
"""

    # ------------------------------------------------------------------ HTTP

    async def _rss(self, request: web.Request) -> web.Response:
        return self._serve(request, self.rss(), "application/rss+xml")

    async def _atom(self, request: web.Request) -> web.Response:
        return self._serve(request, self.atom(), "application/atom+xml")

    def _not_modified(self, request: web.Request, etag: str) -> bool:
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            if if_none_match.strip() == "*":
                return True
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return etag.removeprefix("W/") in tags
        since = request.headers.get("If-Modified-Since")
        if since:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                return self.last_modified <= email.utils.parsedate_to_datetime(since)
        return False

    def _serve(self, request: web.Request, text: str, content_type: str) -> web.Response:
        self.requests += 1
        status = 200
        response: web.Response
        if self.down:
            status = 502
            response = web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        elif self._failures:
            failure = self._failures[0]
            failure[0] -= 1
            if failure[0] <= 0:
                self._failures.pop(0)
            status = failure[1]
            response = web.Response(status=status, text=f"{status}", content_type="text/plain")
        else:
            body = text.encode("utf-8")
            etag = f'W/"{hashlib.md5(body).hexdigest()}"'
            headers = {
                "ETag": etag,
                "Last-Modified": _http_date(self.last_modified),
                "Cache-Control": "max-age=60, public",
            }
            if self._not_modified(request, etag):
                status = 304
                response = web.Response(status=304, headers=headers)
            else:
                response = web.Response(body=body, headers=headers, content_type=content_type, charset="utf-8")
        self.served.append((request.path, status))
        return response
