"""One customer never sees another's data, whatever else arrives at the same time.

Many senders, each bound by its own token to a different demo account, ask for their balance over REST and over
``/ws/chat`` concurrently, interleaved with poisoned requests (lone surrogates and JSON of the wrong type in every
field) and with anonymous senders. The gateway runs its message path over one shared pipelined Redis connection, so
a request that desynchronised it would hand one caller's reply to another (issue 12, section 1). Every reply must name
only its own account, every poisoned request must get a 4xx (REST) or an error frame (WebSocket), never a 5xx or a
hang, and ``/healthz`` must stay healthy.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.security import mint_customer_token

ROOT = Path(__file__).resolve().parents[2]
SECRET = "isolation-secret-0123456789abcdef0123456789"
SUBSCRIBERS = yaml.safe_load((ROOT / "config" / "demo_bss.yml").read_text(encoding="utf-8"))["subscribers"]
PHONES = sorted(SUBSCRIBERS)[:10]  # ten accounts, each with its own sender and its own WebSocket
ASK = "查话费"
TIMEOUT = 15.0  # seconds any one request or frame may take: longer is a hang


def masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def money(value: float) -> str:
    return f"{value:.2f}元" if value >= 0 else f"-{abs(value):.2f}元"


MASKS = {masked(p) for p in PHONES} | {masked(str(p)) for p in SUBSCRIBERS}
assert len({masked(str(p)) for p in SUBSCRIBERS}) == len(SUBSCRIBERS)  # masks tell the accounts apart


def names_only(text: str, phone: str | None) -> list[str]:
    """What is wrong with a reply for ``phone`` (None: an anonymous sender, who sees no account at all)."""
    problems = [f"names {m}" for m in MASKS if m in text and (phone is None or m != masked(phone))]
    if phone is None and "****" in text:
        problems.append("an anonymous sender was shown a masked number")
    return problems


def balance_problems(text: str, phone: str) -> list[str]:
    problems = names_only(text, phone)
    if masked(phone) not in text or money(SUBSCRIBERS[phone]["balance"]) not in text:
        problems.append(f"no balance of its own ({masked(phone)}, {money(SUBSCRIBERS[phone]['balance'])})")
    return problems


# ---- poison ------------------------------------------------------------------------------------------------------
SURROGATE = st.builds(lambda a, s, b: a + chr(s) + b, st.text(max_size=4), st.integers(0xD800, 0xDFFF),
                      st.text(max_size=4))  # fmt: skip
NOT_TEXT = st.sampled_from([0, 7, -1, 1.5, 1e308, True, False, [], ["查话费"], {}, {"text": "查话费"}, [[[]]]])
NOT_ID = st.sampled_from([1.5, True, False, [], ["a"], {}, {"id": 1}])  # ids may be strings or integers
NOT_OBJECT = st.sampled_from(["x", 0, 1.5, True, [], [{"token": "x"}]])
# every field of the REST body, with values that are never acceptable there
REST_POISON = {
    "sender": st.one_of(SURROGATE, NOT_TEXT, st.none()),
    "message": st.one_of(SURROGATE, NOT_TEXT, st.none()),
    "metadata": NOT_OBJECT,
    "token": st.one_of(SURROGATE, NOT_TEXT),
    "message_id": st.one_of(SURROGATE, NOT_ID),
    "lang": st.one_of(SURROGATE, NOT_TEXT),
    "body": st.sampled_from([[], "查话费", 1, None, [{"sender": "x", "message": "查话费"}]]),  # not an object at all
}
# every field of a WebSocket message frame
WS_POISON = {
    "type": st.one_of(SURROGATE, NOT_TEXT, st.none()),
    "text": st.one_of(SURROGATE, NOT_TEXT, st.none()),
    "client_id": st.one_of(SURROGATE, NOT_ID),
    "display": st.one_of(SURROGATE, NOT_TEXT),
    "lang": st.one_of(SURROGATE, NOT_TEXT),
}

ACCOUNT = st.integers(0, len(PHONES) - 1)
OP = st.one_of(
    st.tuples(st.just("rest"), ACCOUNT, st.none(), st.none()),
    st.tuples(st.just("ws"), ACCOUNT, st.none(), st.none()),
    st.tuples(st.just("anon"), st.integers(0, 4), st.none(), st.none()),
    st.sampled_from(sorted(REST_POISON)).flatmap(
        lambda f: st.tuples(st.just("rest_bad"), ACCOUNT, st.just(f), REST_POISON[f])),
    st.sampled_from(sorted(WS_POISON)).flatmap(
        lambda f: st.tuples(st.just("ws_bad"), ACCOUNT, st.just(f), WS_POISON[f])),
)  # fmt: skip


def rest_body(phone: str, token: str, field: str | None = None, value: Any = None) -> Any:
    body: dict[str, Any] = {
        "sender": f"iso-{phone}",
        "message": ASK,
        "metadata": {"token": token, "message_id": uuid.uuid4().hex, "lang": "zh"},
    }
    if field == "body":
        return value
    if field in ("sender", "message", "metadata"):
        body[field] = value
    elif field:
        body["metadata"][field] = value
    return body


# ---- the customer WebSockets -----------------------------------------------------------------------------------
class Chat:
    """One customer's WebSocket, bound to one account by its token; frames are collected as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, phone: str) -> None:
        self.ws, self.phone = ws, phone
        self.frames: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))
                self.changed.set()

    def count(self) -> tuple[int, int]:
        answers = sum(1 for f in self.frames if f.get("from") == "bot" and "话费余额为" in f.get("text", ""))
        errors = sum(1 for f in self.frames if f.get("type") == "error")
        return answers, errors

    async def wait_for(self, answers: int, errors: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while (now := self.count())[0] < answers or now[1] < errors:
                self.changed.clear()
                if self.reader.done():
                    raise AssertionError(f"the WebSocket of {masked(self.phone)} closed: {self.frames[-3:]}")
                await self.changed.wait()


# ---- the test ---------------------------------------------------------------------------------------------------
def test_every_reply_names_only_its_own_account_under_poisoned_concurrent_traffic(make_settings, nlu_engine):
    settings = make_settings(webchat={"token_secret": SECRET})
    tokens = {p: mint_customer_token(p, SECRET) for p in PHONES}
    loop = asyncio.new_event_loop()
    client: TestClient = None  # type: ignore[assignment]  # made inside the loop
    chats: list[Chat] = []
    totals = {"rest": 0, "ws": 0, "anon": 0, "rest_bad": 0, "ws_bad": 0}

    async def start() -> None:
        nonlocal client
        # no cookie jar: every request and socket stands on its own credentials
        client = TestClient(TestServer(create_app(settings, nlu=nlu_engine)), cookie_jar=aiohttp.DummyCookieJar())
        await client.start_server()
        for phone in PHONES:
            ws = await client.ws_connect(f"/ws/chat?token={tokens[phone]}&lang=zh")
            chats.append(Chat(ws, phone))
        async with asyncio.timeout(TIMEOUT):
            while not all(c.frames and c.frames[0].get("type") == "hello" for c in chats):
                await asyncio.sleep(0.01)

    async def post(body: Any) -> tuple[int, Any]:
        data = json.dumps(body)  # ASCII JSON: a lone surrogate travels as the escape \ud800, as an attacker sends it
        async with asyncio.timeout(TIMEOUT):
            resp = await client.post("/webhooks/rest/webhook", data=data, headers={"Content-Type": "application/json"})
            text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    async def rest(phone: str) -> None:
        status, replies = await post(rest_body(phone, tokens[phone]))
        assert status == 200, (status, replies)
        texts = " ".join(r.get("text", "") for r in replies)
        assert not balance_problems(texts, phone), (masked(phone), balance_problems(texts, phone), texts)

    async def anon(n: int) -> None:
        status, replies = await post({"sender": f"anon-{n}", "message": ASK, "metadata": {"lang": "zh"}})
        assert status == 200, (status, replies)
        texts = " ".join(r.get("text", "") for r in replies)
        assert not names_only(texts, None), (names_only(texts, None), texts)

    async def rest_bad(phone: str, field: str, value: Any) -> None:
        status, body = await post(rest_body(phone, tokens[phone], field, value))
        assert 400 <= status < 500, (field, value, status, body)  # never a 5xx; never accepted
        assert isinstance(body, dict) and body.get("error"), (field, value, status, body)

    async def ws_frame(chat: Chat, field: str | None = None, value: Any = None) -> None:
        frame: dict[str, Any] = {"type": "message", "text": ASK, "client_id": uuid.uuid4().hex, "lang": "zh"}
        if field:
            frame[field] = value
        await chat.ws.send_str(json.dumps(frame))

    async def run(ops: list[tuple[str, int, str | None, Any]]) -> None:
        before = [c.count() for c in chats]
        expected = [list(b) for b in before]
        calls = []
        for kind, n, field, value in ops:
            totals[kind] += 1
            if kind == "rest":
                calls.append(rest(PHONES[n]))
            elif kind == "anon":
                calls.append(anon(n))
            elif kind == "rest_bad":
                calls.append(rest_bad(PHONES[n], field, value))
            elif kind == "ws":
                expected[n][0] += 1
                calls.append(ws_frame(chats[n]))
            else:
                expected[n][1] += 1
                calls.append(ws_frame(chats[n], field, value))
        await asyncio.gather(*calls)
        await asyncio.gather(*(c.wait_for(*e) for c, e in zip(chats, expected, strict=True)))
        for chat, (answers, errors) in zip(chats, expected, strict=True):
            assert chat.count() == (answers, errors), (masked(chat.phone), chat.count(), (answers, errors))
            for frame in chat.frames:
                if frame.get("from") == "bot":
                    assert not names_only(frame["text"], chat.phone), (masked(chat.phone), frame)
                    if "话费余额为" in frame["text"]:
                        assert not balance_problems(frame["text"], chat.phone), (masked(chat.phone), frame)
                if frame.get("type") == "error":  # a refused frame, never "something went wrong" (a server fault)
                    assert "went wrong" not in frame.get("error", ""), (masked(chat.phone), frame)

    # no shrinking: a failing run reports its example at once instead of replaying traffic for minutes
    @hyp_settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=(Phase.explicit, Phase.generate),
    )
    @given(st.lists(OP, min_size=8, max_size=48))
    def check(ops: list[tuple[str, int, str | None, Any]]) -> None:
        loop.run_until_complete(run(ops))

    async def healthy() -> int:
        resp = await client.get("/healthz")
        return resp.status

    try:
        loop.run_until_complete(start())
        check()
        assert loop.run_until_complete(healthy()) == 200
    finally:

        async def stop() -> None:
            for chat in chats:
                await chat.ws.close()
                chat.reader.cancel()
            if client is not None:
                await client.close()
            leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in leftover:  # whatever a failed example left running on the server side
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)

        loop.run_until_complete(stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert all(totals.values()), totals  # every kind of request was exercised
