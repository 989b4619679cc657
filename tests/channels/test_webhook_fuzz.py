"""A bounded fuzz of every provider-channel endpoint (hypothesis): malformed bodies of each class an attacker used —
lone UTF-16 surrogates (JSON escapes, XML character references, percent-encoded and raw bytes), values of the wrong
JSON type, integers that are not integers (5,000 digits, NaN, Infinity), deep nesting, an unknown ``charset``,
missing and malformed query parameters and headers — most of them properly signed, so they reach the parsers.

Each answer must be one that endpoint's provider expects (a 4xx naming the problem on our own JSON APIs; 200
"success" for a signed WeChat push we cannot use; 200 for an unusable Telegram update …), never a 5xx and never a
hang; /healthz answers 200 afterwards. Real Redis, a real gateway on loopback, the providers' fakes."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
import xmltodict
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from wechatpy.crypto import WeChatCrypto

from gateway import redisconn
from gateway.app import create_app
from gateway.settings import load_settings
from handoff.config import load_handoff_config
from tests.channels.conftest import SMS_SECRET, TG_SECRET, free_port
from tests.channels.fake_forum import FakeDiscourse
from tests.channels.fake_sms import FakeHttpSms, FakeTwilio
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.fake_wechat import FakeWeChat, _sign, openid
from tests.channels.fake_weibo import FakeWeibo
from tests.channels.rawhttp import raw_request
from tests.conftest import NO_SENDER_RATE
from tests.handoff.conftest import AgentClient

EXAMPLES = 250  # per endpoint, well inside CI time; a long run is bench/fuzz.py's
DISCOURSE_SECRET = "discourse-webhook-secret"
pytestmark = pytest.mark.timeout(120)

# ---- what an attacker sends ------------------------------------------------------------------------------------
BAD_TOKENS = [
    '"\\ud800"', '"a\\udfffb"', '"\\udc80\\ud800"', "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000,
    "-" + "9" * 30, "18446744073709551616", "[]", "{}", "[1,2]", '{"a":1}', "null", "true", "false", '""', '"  "',
    "0", "-1", "1.5", '"NaN"', '"9' + "9" * 4999 + '"', "[" * 3000 + "]" * 3000, '{"a":' * 2000 + "1" + "}" * 2000,
    '"' + "长" * 5000 + '"', '"\\u0000"', '"<xml>]]></xml>"',
]  # fmt: skip
JSON_TOKEN = st.one_of(
    st.sampled_from(BAD_TOKENS),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(lambda c: json.dumps("x" + c)),
    st.text(max_size=40).map(json.dumps),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(json.dumps),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), lambda c: st.lists(c, max_size=3)
                 | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8).map(json.dumps),
)  # fmt: skip
RAW_BODY = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"\xff\xfe\x00", b"{", b"{not json", "\ud800".encode("utf-8", "surrogatepass"),
                     b'{"a": "\xed\xa0\x80"}', b"<xml>", b"[" * 100_000]),
)  # fmt: skip
CONTENT_TYPES = [b"application/json", b"application/json; charset=x-no-such-charset", b"text/plain", None,
                 b"application/x-www-form-urlencoded; charset=bogus-9", b"application/json; charset=utf-16",
                 b"multipart/form-data; boundary=x"]  # fmt: skip
CONTENT_TYPE = st.sampled_from(CONTENT_TYPES)
TEXT_VALUE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "NaN", "9" * 5000, "-1", "1e10", "１２３", " 12", "\x00", "&#xD800;", "]]>", "<a>1</a>",
                     "%ED%A0%80", "%FF", "\ud800x"]),
)  # fmt: skip


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from paths(value, (*prefix, i))


def render(obj: Any, path: tuple[Any, ...], token: str | None) -> str:
    """``obj`` as JSON text with the value at ``path`` replaced by the raw ``token`` (None: removed)."""
    if not path:
        return "" if token is None else token
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        parts = [json.dumps(k) + ":" + (render(v, rest, token) if k == head else json.dumps(v))
                 for k, v in obj.items() if not (k == head and not rest and token is None)]  # fmt: skip
        return "{" + ",".join(parts) + "}"
    parts = [render(v, rest, token) if i == head else json.dumps(v) for i, v in enumerate(obj)
             if not (i == head and not rest and token is None)]  # fmt: skip
    return "[" + ",".join(parts) + "]"


@st.composite
def mutated_json(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    """The template with one value (or the whole) replaced by a bad token or removed; sometimes raw garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(RAW_BODY)
    path = draw(st.sampled_from(list(paths(template))))
    token = draw(st.one_of(st.none(), JSON_TOKEN))
    return render(template, path, token).encode("utf-8", "surrogatepass")


def headers_with(content_type: bytes | None, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [*([(b"Content-Type", content_type)] if content_type else []), *extra]


# ---- the gateway under test --------------------------------------------------------------------------------------
class Rig:
    """Two gateways (WeChat in plaintext mode and in safe mode; every other channel on the first) and the fakes, on
    a loop of the test's own (hypothesis drives the examples synchronously)."""

    def __init__(self, redis_url: str, nlu: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.redis_url = redis_url
        self.nlu = nlu
        self.prefix = f"test:{uuid.uuid4().hex[:12]}:"
        self.servers: list[TestServer] = []
        self.sms, self.twilio, self.telegram = FakeHttpSms(webhook_secret=SMS_SECRET), FakeTwilio(), FakeTelegram()
        self.wx, self.weibo = FakeWeChat(), FakeWeibo()
        self.discourse = FakeDiscourse(api_username="support")
        self.run(self._start())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _gateway(self, **sections: Any) -> TestServer:
        port = free_port()
        settings = load_settings(env={"REDIS_URL": self.redis_url, **NO_SENDER_RATE}, redis={"key_prefix": self.prefix},
                                 server={"public_url": f"http://127.0.0.1:{port}"}, **sections)  # fmt: skip
        app = create_app(settings, nlu=self.nlu, handoff_config=load_handoff_config())
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        self.servers.append(server)
        return server

    async def _start(self) -> None:
        for fake in (self.sms, self.twilio, self.telegram, self.wx, self.weibo, self.discourse):
            await fake.start()
        wechat = {"appid": self.wx.appid, "token": self.wx.token, "app_secret": self.wx.secret,
                  "api_base_url": self.wx.api_base, "backoff_base": 0.2}  # fmt: skip
        self.gw = await self._gateway(
            sms={"provider": "http", "http_url": f"{self.sms.base_url}/send", "webhook_secret": SMS_SECRET,
                 "http_auth": "Authorization: Bearer sms-key", "twilio_auth_token": self.twilio.auth_token,
                 "twilio_account_sid": self.twilio.account_sid, "per_number_interval": 0.01},
            telegram={"token": self.telegram.token, "webhook_secret": TG_SECRET,
                      "api_base_url": self.telegram.base_url},
            wechat=wechat,
            weibo={"uid": str(self.weibo.uid), "app_secret": self.weibo.app_secret,
                   "access_token": self.weibo.access_token, "api_base_url": self.weibo.api_base},
            forum={"discourse_url": self.discourse.base_url, "api_username": "support",
                   "api_key": self.discourse.api_key, "webhook_secret": DISCOURSE_SECRET},
        )  # fmt: skip
        self.safe = await self._gateway(wechat={**wechat, "aes_key": self.wx.encoding_aes_key})
        self.base, self.safe_base = f"http://127.0.0.1:{self.gw.port}", f"http://127.0.0.1:{self.safe.port}"
        for _ in range(250):  # the Telegram channel is up once PTB reached the Bot API
            if (await self.health(self.base))[1].get("channels", {}).get("telegram") == "ready":
                break
            await asyncio.sleep(0.02)
        self.boss = AgentClient(self.base, "super1", "demo-super1")
        await self.boss.login()

    async def health(self, base: str) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
            return resp.status, await resp.json()

    def close(self) -> None:
        async def stop() -> None:
            await self.boss.close()
            for server in self.servers:
                await server.close()
            for fake in (self.sms, self.twilio, self.telegram, self.wx, self.weibo, self.discourse):
                await fake.stop()

        self.run(stop())
        self.loop.close()
        client = redisconn.sync_client(self.redis_url)
        keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def rig(redis_url: str, nlu_engine: Any) -> Iterator[Rig]:
    made = Rig(redis_url, nlu_engine)
    yield made
    made.close()


def fuzz(rig: Rig, strategy: st.SearchStrategy[Any], send: Callable[[Any], Any], allowed: set[int],
         base: str | None = None) -> None:  # fmt: skip
    """Run ``send(example)`` (a coroutine → (status, body)) for ``EXAMPLES`` examples: each answer in ``allowed``,
    within 10 s; then /healthz is 200."""
    seen: dict[int, int] = {}

    @hyp_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy)
    def check(example: Any) -> None:
        status, body = rig.run(send(example))
        seen[status] = seen.get(status, 0) + 1
        assert status in allowed, (status, body[:300], example if len(repr(example)) < 2000 else "…")

    check()
    status, health = rig.run(rig.health(base or rig.base))
    assert status == 200 and health["redis"] == "ok", health
    assert len(seen) > 1 or EXAMPLES < 20, seen  # the fuzz reached more than one outcome


# ---- SMS ---------------------------------------------------------------------------------------------------------
def sms_in() -> dict[str, Any]:
    return {"from": "+8613800138000", "to": "10658000", "text": "YE", "id": uuid.uuid4().hex,
            "timestamp": int(time.time())}  # fmt: skip


@st.composite
def signed_sms(draw: st.DrawFn, template: Callable[[], dict[str, Any]]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = draw(mutated_json(template()))
    signature = FakeHttpSms(webhook_secret=SMS_SECRET).sign(body).encode()
    if draw(st.integers(0, 7)) == 0:
        signature = draw(st.sampled_from([b"", b"sha256=\xff", "签名".encode(), b"sha256=" + b"0" * 64]))
    return body, headers_with(draw(CONTENT_TYPE), (b"X-Signature", signature))


def test_fuzz_sms_webhook(rig: Rig) -> None:
    def send(case: Any) -> Any:
        return raw_request(rig.base, "POST", "/channels/sms/webhook", case[1], case[0])

    fuzz(rig, signed_sms(sms_in), send, {200, 400, 403, 413, 415})


def test_fuzz_sms_status(rig: Rig) -> None:
    def receipt() -> dict[str, Any]:
        return {"id": uuid.uuid4().hex, "status": "DELIVRD", "error": "", "timestamp": int(time.time())}

    def send(case: Any) -> Any:
        return raw_request(rig.base, "POST", "/channels/sms/status", case[1], case[0])

    fuzz(rig, signed_sms(receipt), send, {200, 400, 403, 413, 415})


@st.composite
def twilio_requests(draw: st.DrawFn, status_callback: bool) -> tuple[Any, ...]:
    """(path, body, headers, the form as signed, the URL to sign with ``{port}``)."""
    path = "/channels/sms/twilio/status" if status_callback else "/channels/sms/twilio"
    url = f"http://127.0.0.1:{{port}}{path}"
    sid = "SM" + secrets.token_hex(16)
    form: dict[str, str] = ({"MessageSid": sid, "MessageStatus": "delivered", "To": "+8613800138000"}
                            if status_callback else
                            {"MessageSid": sid, "SmsSid": sid, "From": "+8613800138000", "To": "+15005550006",
                             "Body": "查余额", "NumMedia": "0"})  # fmt: skip
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([*form, "Extra"]))
        value = draw(st.one_of(st.none(), TEXT_VALUE))
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    form = {k.encode("utf-8", "replace").decode(): v.encode("utf-8", "replace").decode() for k, v in form.items()}
    body = urlencode(form).encode()
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.sampled_from([b"Body=%ED%A0%80&MessageSid=SMx", b"\xff\xfe=1", b"a=%", b"&&==&", b"x" * 70_000]))
    content_type = draw(st.sampled_from([b"application/x-www-form-urlencoded",
                                         b"application/x-www-form-urlencoded; charset=no-such-charset",
                                         b"application/json", None]))  # fmt: skip
    return path, body, [(b"Content-Type", content_type)] if content_type else [], form, url


def _twilio(rig: Rig, status_callback: bool) -> None:
    validator = RequestValidator(rig.twilio.auth_token)

    def send(case: Any) -> Any:
        path, body, headers, form, url = case
        signature = validator.compute_signature(url.format(port=rig.gw.port), form)
        return raw_request(rig.base, "POST", path, [*headers, (b"X-Twilio-Signature", signature.encode())], body)

    fuzz(rig, twilio_requests(status_callback), send, {200, 204, 400, 403, 413})


def test_fuzz_twilio_webhook(rig: Rig) -> None:
    _twilio(rig, status_callback=False)


def test_fuzz_twilio_status(rig: Rig) -> None:
    _twilio(rig, status_callback=True)


def test_fuzz_sms_broadcast(rig: Rig) -> None:
    template = {"text": "流量月包半价，本周有效。", "numbers": ["13800138001", "+8613800138002"], "lang": "zh"}

    async def send(case: Any) -> Any:
        body, content_type = case
        headers = {"X-CSRF-Token": rig.boss.csrf, **({"Content-Type": content_type.decode()} if content_type else {})}
        async with rig.boss.session.post(f"{rig.base}/api/sms/broadcast", data=body, headers=headers) as resp:
            return resp.status, await resp.read()

    fuzz(rig, st.tuples(mutated_json(template), CONTENT_TYPE), send, {200, 400, 413, 415})


# ---- Telegram ----------------------------------------------------------------------------------------------------
def test_fuzz_telegram_webhook(rig: Rig) -> None:
    updates = [rig.telegram.text_update(1, 5151, "查余额"), rig.telegram.callback_update(2, 5151, "/query_balance"),
               rig.telegram.photo_update(3, 5151)]  # fmt: skip

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        update = {**draw(st.sampled_from(updates)), "update_id": draw(st.integers(10, 2**31))}
        secret = TG_SECRET.encode() if draw(st.integers(0, 7)) else draw(st.sampled_from([b"", b"\xff", "秘".encode()]))
        return draw(mutated_json(update)), headers_with(
            draw(CONTENT_TYPE), (b"X-Telegram-Bot-Api-Secret-Token", secret)
        )

    def send(case: Any) -> Any:
        return raw_request(rig.base, "POST", "/channels/telegram/webhook", case[1], case[0])

    fuzz(rig, cases(), send, {200, 403, 413})


# ---- WeChat ------------------------------------------------------------------------------------------------------
XML_VALUE = st.one_of(
    TEXT_VALUE,
    st.sampled_from(
        [
            "<![CDATA[]]>",
            "<![CDATA[\ud800]]>",
            "&#xD800;",
            "&#0;",
            "&lol;",
            "<a><b><c/></b></a>",
            "<x>" * 500 + "</x>" * 500,
            "9" * 5000,
        ]
    ),
)


@st.composite
def wechat_xml(draw: st.DrawFn) -> str:
    fields = [("ToUserName", "gh_3f8a2c9d1e7b"), ("FromUserName", openid(draw(st.integers(0, 5)))),
              ("CreateTime", str(int(time.time()))), ("MsgType", draw(st.sampled_from(["text", "event", "image"]))),
              ("Content", "营业厅几点开门"), ("Event", "subscribe"), ("EventKey", "BALANCE"),
              ("MsgId", str(draw(st.integers(1, 2**62))))]  # fmt: skip
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(fields) - 1))
        value = draw(st.one_of(st.none(), XML_VALUE))
        if value is None:
            fields.pop(i)
        else:
            fields[i] = (fields[i][0], value)
        if not fields:
            break
    if draw(st.integers(0, 9)) == 0:
        fields.append(("FromUserName", "oDuplicate"))
    xml = "<xml>" + "".join(f"<{name}>{value}</{name}>" for name, value in fields) + "</xml>"
    if draw(st.integers(0, 11)) == 0:
        xml = draw(
            st.sampled_from(
                [
                    '<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>',
                    "<xml",
                    "",
                    "plain text",
                    '<?xml version="1.0" encoding="x-bogus"?><xml/>',
                    "<root><a>1</a></root>",
                ]
            )
        )
    return xml


QUERY_SUFFIXES = ["", "&timestamp=%ED%A0%80", "&nonce=%FF", "&signature", "&&", "&%", "&encrypt_type=raw"]
QUERY_MUTATION = st.tuples(st.integers(0, 3), st.text(max_size=1), st.one_of(st.none(), TEXT_VALUE),
                           st.integers(0, 9), st.sampled_from(QUERY_SUFFIXES))  # fmt: skip


def mutate_query(query: dict[str, str], mutation: tuple[Any, ...]) -> bytes:
    """The query string, perhaps with one parameter dropped or replaced (``mutation``: a ``QUERY_MUTATION``), a
    parameter added, or percent-garbage appended."""
    query = dict(query)
    change, pick, value, garble, suffix = mutation
    if change == 0:
        names = [*query, "extra"]
        name = names[(ord(pick) if pick else 0) % len(names)]
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in query.items())
    return (encoded + (suffix if garble == 0 else "")).encode()


@st.composite
def wechat_pushes(draw: st.DrawFn) -> tuple[Any, ...]:
    """(xml, timestamp skew, query mutation, a body that replaces the envelope or None)."""
    envelope = draw(st.sampled_from([None] * 7 + [b"", b"<xml/>", b"<xml><Encrypt><a>1</a></Encrypt></xml>"]))
    return draw(wechat_xml()), draw(st.sampled_from([0, 0, 0, -10, 400])), draw(QUERY_MUTATION), envelope


def wechat_request(case: tuple[Any, ...], token: str, aes_key: str | None, appid: str) -> tuple[bytes, bytes]:
    """(target, body) of the push ``case`` describes, signed (and encrypted) as WeChat would."""
    xml, skew, mutation, envelope = case
    ts, nonce = str(int(time.time()) + skew), secrets.token_hex(6)
    query = {"signature": _sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid(1)}
    body = xml.encode("utf-8", "surrogatepass")
    if aes_key:
        text = xml.encode("utf-8", "replace").decode()
        encrypt = xmltodict.parse(WeChatCrypto(token, aes_key, appid).encrypt_message(text, nonce, ts))["xml"][
            "Encrypt"
        ]
        query.update(encrypt_type="aes", msg_signature=_sign(token, ts, nonce, encrypt))
        body = f"<xml><ToUserName>gh_3f8a2c9d1e7b</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
        body = body if envelope is None else envelope
    return b"/channels/wechat?" + mutate_query(query, mutation), body


def test_fuzz_wechat_plaintext_push(rig: Rig) -> None:
    def send(case: Any) -> Any:
        target, body = wechat_request(case, rig.wx.token, None, rig.wx.appid)
        return raw_request(rig.base, "POST", target, [(b"Content-Type", b"text/xml")], body)

    fuzz(rig, wechat_pushes(), send, {200, 403, 413})


def test_fuzz_wechat_safe_mode_push(rig: Rig) -> None:
    def send(case: Any) -> Any:
        target, body = wechat_request(case, rig.wx.token, rig.wx.encoding_aes_key, rig.wx.appid)
        return raw_request(rig.safe_base, "POST", target, [(b"Content-Type", b"text/xml")], body)

    fuzz(rig, wechat_pushes(), send, {200, 403, 413}, base=rig.safe_base)


@st.composite
def url_checks(draw: st.DrawFn, path: bytes, sign: Callable[[str, str], str], millis: bool) -> bytes:
    ts = str(int(time.time() * (1000 if millis else 1))) if draw(st.integers(0, 5)) else draw(TEXT_VALUE)
    nonce = secrets.token_hex(4)
    signature = sign(ts, nonce) if ts.isascii() else "0" * 40  # a timestamp no platform would sign
    query = {"signature": signature, "timestamp": ts, "nonce": nonce, "echostr": draw(TEXT_VALUE) or "e"}
    return path + b"?" + mutate_query(query, draw(QUERY_MUTATION))


def test_fuzz_wechat_url_check(rig: Rig) -> None:
    def send(target: bytes) -> Any:
        return raw_request(rig.base, "GET", target)

    sign = lambda ts, nonce: _sign(rig.wx.token, ts, nonce)  # noqa: E731
    fuzz(rig, url_checks(b"/channels/wechat", sign, millis=False), send, {200, 400, 403})


# ---- Weibo -------------------------------------------------------------------------------------------------------
def test_fuzz_weibo_push(rig: Rig) -> None:
    fan = 5566778899
    templates = [rig.weibo.text_push(fan, "营业厅几点开门"), rig.weibo.event_push(fan, "click", "BALANCE"),
                 rig.weibo.image_push(fan)]  # fmt: skip

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[bytes, bytes]:
        body = draw(mutated_json(draw(st.sampled_from(templates))))
        query = rig.weibo.signed_query(nonce=secrets.token_hex(4))
        return b"/channels/weibo?" + mutate_query(query, draw(QUERY_MUTATION)), body

    def send(case: Any) -> Any:
        return raw_request(rig.base, "POST", case[0], [(b"Content-Type", b"application/json")], case[1])

    fuzz(rig, cases(), send, {200, 403, 413})


def test_fuzz_weibo_url_check(rig: Rig) -> None:
    def send(target: bytes) -> Any:
        return raw_request(rig.base, "GET", target)

    fuzz(rig, url_checks(b"/channels/weibo", rig.weibo.sign, millis=True), send, {200, 400, 403})


# ---- Discourse ---------------------------------------------------------------------------------------------------
def test_fuzz_discourse_webhook(rig: Rig) -> None:
    topic = rig.discourse.add_topic("朝阳区网络问题", username="wang")
    template = rig.discourse.webhook_body("post_created", rig.discourse.new_post(topic["id"], "朝阳区有网络故障吗？",
                                                                                  username="wang"))  # fmt: skip

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        body = draw(mutated_json(template))
        signature = FakeDiscourse.signature(DISCOURSE_SECRET, body).encode()
        if draw(st.integers(0, 7)) == 0:
            signature = draw(st.sampled_from([b"", b"sha256=\xff", "签名".encode()]))
        event = draw(st.sampled_from([b"post_created", b"post_created", b"ping", b"topic_created", b"\xff\xfe"]))
        event_id = draw(st.sampled_from([str(draw(st.integers(1, 2**40))).encode(), b"", b"\xed\xa0\x80", b"9" * 5000]))
        headers = headers_with(draw(CONTENT_TYPE), (b"X-Discourse-Event", event), (b"X-Discourse-Event-Id", event_id),
                               (b"X-Discourse-Event-Signature", signature))  # fmt: skip
        return body, headers

    def send(case: Any) -> Any:
        return raw_request(rig.base, "POST", "/channels/forum/discourse", case[1], case[0])

    fuzz(rig, cases(), send, {200, 400, 403, 413})
