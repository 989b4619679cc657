"""Malformed-input case generators (hypothesis strategies) for every inbound endpoint of the gateway.

Shared by the bounded suite (``tests/security/test_fuzz.py``) and the long run (``bench/fuzz.py``). A
strategy yields ``Case`` objects: a request described down to the bytes (method, path, query, headers,
body), or a WebSocket handshake plus frames. What needs the moment of sending — a webhook's signature
over the final body, a timestamp within the 5-minute window, a fresh nonce, the agent's session cookie and
CSRF token, the id of a real chat — is left as a placeholder and filled in by ``harness.finalize`` just
before the request goes out, so a fuzzed body is signed correctly and reaches the parser (and some cases
are deliberately left unsigned or signed wrongly).

Every case has a ``label`` naming its *input class* ("sender=lone surrogate (\\u escape)",
"body=deep nesting 10000", "ct=unknown charset"), never its random content: the reports group by it.

Input classes: lone surrogates in every string field (JSON ``\\ud800`` escapes, raw CESU bytes, raw in
query/form/XML/headers), every field of the wrong JSON type, missing/extra/duplicate fields, huge strings,
5,000-digit numbers, NaN/Infinity tokens, 10,000-level nesting, invalid UTF-8, UTF-16 bodies, unknown
``charset`` and wrong content types, empty and oversize bodies, malformed XML (entities, DOCTYPE, unknown
encodings), broken AES envelopes; query parameters likewise; WebSocket text and binary frames likewise.
"""

from __future__ import annotations

import copy
import json
import struct
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# ---- the secrets the gateway under test is started with (loopback only, never real) ------------------------
SECRETS = {
    "GATEWAY_SECRET_KEY": "fuzz-gateway-secret-key-0123456789abcdef0123",
    "WEBCHAT_JWT_SECRET": "fuzz-webchat-jwt-secret-of-at-least-32-bytes",
    "METRICS_TOKEN": "fuzz-metrics-token",
    "SMS_WEBHOOK_SECRET": "fuzz-sms-webhook-secret",
    "TWILIO_AUTH_TOKEN": "fuzz-twilio-auth-token",
    "TELEGRAM_WEBHOOK_SECRET": "fuzz-telegram-webhook-secret",
    "WECHAT_TOKEN": "fuzz-wechat-token",
    "WECHAT_APP_SECRET": "fuzz-wechat-app-secret",
    "WECHAT_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",  # WeChat's own sample key (43 chars)
    "WEIBO_APP_SECRET": "fuzz-weibo-app-secret",
    "WEIBO_ACCESS_TOKEN": "2.00fuzzWEIBOtoken0123456789",
    "DISCOURSE_WEBHOOK_SECRET": "fuzz-discourse-webhook-secret",
    "DISCOURSE_API_KEY": "fuzz-discourse-api-key-0123456789abcdef",
}
TELEGRAM_TOKEN = "123456:FUZZ-token"
WECHAT_APPID = "wx1234567890abcdef"
WEIBO_UID = "1902538057"
TWILIO_SID = "AC" + "0" * 32
SUPERVISOR = ("super1", "demo-super1")  # demo accounts of config/routing.yml (not production)
AGENT = ("agent1", "demo-agent1")
FUZZ_LOGIN = "agent2"  # the account whose password the login fuzz guesses (so the two above are never locked)

# ---- JSON with tokens json.dumps cannot write -------------------------------------------------------------


class Raw:
    """Bytes written verbatim into a JSON document (NaN, 5,000 digits, deep nesting, invalid UTF-8…)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Raw({self.data[:24]!r}{'…' if len(self.data) > 24 else ''} {len(self.data)}B)"

    def __deepcopy__(self, memo: dict[int, Any]) -> Raw:
        return self


class Obj:
    """A JSON object written with its pairs in order, duplicates allowed."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"Obj({self.pairs!r:.80})"


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes; ``str`` is written with ``\\uXXXX`` escapes (so a lone surrogate becomes the
    escape ``\\ud800``), ``Raw`` verbatim, ``Obj`` with its duplicate keys."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Obj | dict):
        pairs = value.pairs if isinstance(value, Obj) else list(value.items())
        return b"{" + b",".join(dumps(k) + b":" + dumps(v) for k, v in pairs) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(dumps(v) for v in value) + b"]"
    return json.dumps(value).encode()


def raw_str(text: str) -> Raw:
    """A JSON string with its characters written raw: a lone surrogate becomes the bytes ED A0 80 (not UTF-8)."""
    return Raw(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def truncate(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)})"


# ---- the cases ---------------------------------------------------------------------------------------------
@dataclass
class Frame:
    """One WebSocket frame the client sends. ``expect``: ``error`` (a protocol-valid but bad frame: an error
    frame must answer it and the socket stay open), ``error-or-close`` (binary, invalid UTF-8: an error frame,
    or a clean protocol close 1002/1003/1007/1008), ``oversize`` (over the socket's size limit: the server may
    close at once — even unread, so the client may only see the connection reset), ``any`` (valid or
    ambiguous: only no hang and no abnormal close)."""

    opcode: int
    payload: bytes
    expect: str
    label: str

    def __repr__(self) -> str:
        return f"Frame({self.label}, op={self.opcode}, {self.payload[:40]!r}{'…' if len(self.payload) > 40 else ''})"


@dataclass
class Case:
    """One request (or one WebSocket session step); placeholders are filled by ``harness.finalize``:

    * ``path``/``body``: ``$CHAT`` (a real chat's id), ``$JWT`` (a valid customer token), ``$OPENID``.
    * ``query`` values: ``$TS``/``$TSMS`` (now, seconds/milliseconds), ``$NONCE``, ``$SIG`` (the platform's
      signature over the *fuzzed* timestamp and nonce), ``$MSGSIG`` (WeChat safe mode, over ``encrypt``).
    * ``sign``/``sign_mode``: a header signature over the final body (``sms``, ``twilio``, ``telegram``,
      ``discourse``); mode ``good``, ``none``, ``wrong``, ``nonascii`` (raw non-ASCII bytes), ``huge``.
    * ``auth``: the agent session to present (``super``, ``agent``, ``nocookie``, ``garbage-cookie``,
      ``nonascii-cookie``, ``nocsrf``, ``badcsrf``, ``nonascii-csrf``, ``huge-csrf``)."""

    endpoint: str
    label: str
    method: str = "GET"
    path: bytes = b"/"
    query: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, "pct" | "raw")
    raw_query: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    content_type: bytes | None = None
    sign: str = ""
    sign_mode: str = "good"
    auth: str = ""
    encrypt: str = ""
    chunked: bool = False  # the body sent with Transfer-Encoding: chunked
    encoding: str = ""  # the body compressed on the wire: gzip | deflate | bomb | gzip-truncated
    frames: list[Frame] = field(default_factory=list)
    ws: bool = False  # a WebSocket handshake (and frames when ``frames``)

    def __repr__(self) -> str:
        body = f"{self.body[:80]!r}{'…' if len(self.body) > 80 else ''}({len(self.body)}B)"
        query = (
            self.raw_query[:60] if self.raw_query is not None else [(n, truncate(v, 30), m) for n, v, m in self.query]
        )
        return (f"Case({self.endpoint} [{self.label}] {self.method} {self.path[:80]!r} q={query} "
                f"h={[(k, v[:40]) for k, v in self.headers]} ct={self.content_type!r} "
                f"sign={self.sign}/{self.sign_mode} "
                f"auth={self.auth} body={body} frames={self.frames})")  # fmt: skip


# ---- atoms ---------------------------------------------------------------------------------------------------
TEXTS = ["查话费", "我的流量还剩多少", "转人工", "营业厅几点开门", "朝阳区现在有网络故障吗", "hello",
         "how much data do I have left", "13800138000", "/start", "YE", "TD", "BZ", "帮助", "投诉：信号太差", "1", "?",
         "我要办理5G套餐", "谢谢"]  # fmt: skip
SURROGATES = ["\ud800", "\udfff", "\udc80", "\ud83d", "\ude00", "\ud800\ud800", "\udbff" * 40]


@st.composite
def surrogate_text(draw: st.DrawFn) -> str:
    before = draw(st.sampled_from(["", "查", "a", "查话费", "13800138000"]))
    after = draw(st.sampled_from(["", "b", "余额", "\u4e2d"]))
    return before + draw(st.sampled_from(SURROGATES)) + after


def _deep_list(n: int) -> Raw:
    return Raw(b"[" * n + b"]" * n)


def _deep_obj(n: int) -> Raw:
    return Raw(b'{"a":' * n + b"0" + b"}" * n)


FIXED_BAD: list[tuple[str, Any]] = [
    ("list", []), ("list", [1, "x", None]), ("dict", {}), ("dict", {"a": {"b": [1]}}),
    ("int", 0), ("int", -1), ("int 2^63", 2**63), ("int 2^64+1", 2**64 + 1), ("float", 1.5), ("float 1e308", 1e308),
    ("float -0.0", -0.0), ("null", None), ("bool", True), ("bool", False),
    ("5000-digit number", Raw(b"9" * 5000)), ("5000-digit negative", Raw(b"-" + b"1" * 5000)),
    ("5000-digit fraction", Raw(b"1." + b"3" * 5000)), ("exponent 1e999", Raw(b"1e999")),
    ("NaN token", Raw(b"NaN")), ("Infinity token", Raw(b"Infinity")), ("-Infinity token", Raw(b"-Infinity")),
    ("deep nesting 10000", _deep_list(10_000)), ("deep object nesting 10000", _deep_obj(10_000)),
    ("empty string", ""), ("whitespace", " \t\n"), ("NUL", "\x00"), ("control chars", "\x1b[31m\x07\x08"),
    ("bidi override", "\u202etxt"), ("BOM char", "\ufeff"), ("line separator", "a\u2028b"),
    ("superscript digit", "\u00b2"), ("arabic-indic digits", "\u0661\u0662\u0663"),
    ("fullwidth digits", "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10"),
    ("digits 23", "12345678901234567890123"), ("string 1e999", "1e999"), ("string NaN", "NaN"), ("string -1", "-1"),
    ("string 5000 digits", "7" * 5000), ("jndi", "${jndi:ldap://127.0.0.1/x}"), ("html", "<script>alert(1)</script>"),
    ("cdata end", "]]>"), ("path traversal", "../../etc/passwd"), ("crlf", "a\r\nX-Injected: 1"),
    ("format", "%s%n%x{0}"),
    ("emoji", "\U0001f600" * 10), ("combining", "Z\u0338\u0322a\u0334l\u0336"), ("text 1001", "a" * 1001),
    ("text 4097 CJK", "字" * 4097), ("private use", "\ue000\U000f0000"), ("noncharacter", "\uffff\ufffe"),
]  # fmt: skip


def bad_values(extra: list[tuple[str, Any]] | None = None) -> st.SearchStrategy[tuple[str, Any]]:
    """A (label, value) for a JSON field: the wrong type, a lone surrogate, a huge or strange string…"""
    return st.one_of(
        st.sampled_from(FIXED_BAD + (extra or [])),
        st.tuples(st.just("lone surrogate (\\u escape)"), surrogate_text()),
        st.tuples(st.just("lone surrogate (raw bytes)"), surrogate_text().map(raw_str)),
        st.tuples(
            st.just("invalid UTF-8 in string"),
            st.sampled_from([Raw(b'"\xff\xfe"'), Raw(b'"a\xc3"'), Raw(b'"\xe4\xbd"')]),
        ),
        st.tuples(st.just("huge string"), st.sampled_from([20_000, 70_000, 300_000]).map(lambda n: "查" * n)),
        st.tuples(st.just("random text"), st.text(max_size=40)),
        st.tuples(st.just("random int"), st.integers(min_value=-(2**70), max_value=2**70)),
        st.tuples(st.just("random float"), st.floats(allow_nan=False, allow_infinity=False)),
    )


def text_values(extra: list[tuple[str, str]] | None = None) -> st.SearchStrategy[tuple[str, str]]:
    """A (label, text) for a value arriving as text (query, form, XML): a surrogate, a huge value, digits…"""
    strings = [(label, v) for label, v in FIXED_BAD if isinstance(v, str)] + (extra or [])
    return st.one_of(
        st.sampled_from(strings),
        st.tuples(st.just("lone surrogate"), surrogate_text()),
        st.tuples(st.just("huge value"), st.sampled_from([5_000, 70_000]).map(lambda n: "x" * n)),
        st.tuples(st.just("random text"), st.text(max_size=40)),
        st.tuples(st.just("random int"), st.integers(min_value=-(2**70), max_value=2**70).map(str)),
    )


# ---- bodies ------------------------------------------------------------------------------------------------
Path = tuple[str, ...]


def _set(doc: dict[str, Any], path: Path, value: Any) -> None:
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _delete(doc: dict[str, Any], path: Path) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _duplicate(doc: dict[str, Any], path: Path, value: Any) -> Any:
    """The document with the key at ``path`` written twice (the second time with ``value``)."""
    if len(path) == 1:
        return Obj([*doc.items(), (path[0], value)])
    parent = doc
    for key in path[:-2]:
        parent = parent.setdefault(key, {}) if isinstance(parent.get(key, {}), dict) else {}
    inner = parent.get(path[-2])
    inner = inner if isinstance(inner, dict) else {}
    parent[path[-2]] = Obj([*inner.items(), (path[-1], value)])
    return doc


JSON_TYPES = [  # (label, Content-Type) — None: no header
    ("json", b"application/json"), ("json utf-8", b"application/json; charset=utf-8"),
    ("unknown charset", b"application/json; charset=klingon"), ("charset utf-16", b"application/json; charset=utf-16"),
    ("charset latin-1", b"application/json; charset=latin-1"),
    ("non-ASCII charset", b"application/json; charset=\xff\xfe"),
    ("empty charset", b"application/json; charset="), ("text/plain", b"text/plain"),
    ("form", b"application/x-www-form-urlencoded"), ("multipart no boundary", b"multipart/form-data"),
    ("multipart", b"multipart/form-data; boundary=xyz"), ("no content-type", None), ("garbage content-type", b";;;=="),
    ("text/xml", b"text/xml"), ("wildcard", b"*/*"),
]  # fmt: skip


@st.composite
def json_body(draw: st.DrawFn, template: st.SearchStrategy[dict[str, Any]], paths: list[Path], limit: int,
              extra_bad: list[tuple[str, Any]] | None = None) -> tuple[str, bytes]:  # fmt: skip
    """(label, body) — the template valid, or with one class of damage."""
    doc = copy.deepcopy(draw(template))
    kind = draw(st.sampled_from(["valid"] * 3 + ["field"] * 9 + ["fields"] * 2 + ["object"] * 2 + ["bytes"] * 3))
    if kind == "valid":
        return "valid", dumps(doc)
    if kind in ("field", "fields"):
        chosen = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=1 if kind == "field" else 3, unique=True))
        labels = []
        result: Any = doc
        for path in chosen:
            name = ".".join(path)
            op = draw(st.sampled_from(["replace"] * 8 + ["missing", "duplicate"]))
            if op == "missing":
                _delete(doc, path)
                labels.append(f"{name} missing")
                continue
            label, value = draw(bad_values(extra_bad))
            if op == "duplicate" and isinstance(result, dict):
                result = _duplicate(doc, path, value)
                labels.append(f"{name} duplicated as {label}")
            else:
                _set(doc, path, value)
                labels.append(f"{name}={label}")
        return " & ".join(labels) if kind == "field" else "several: " + " & ".join(labels), dumps(result)
    if kind == "object":
        op = draw(st.sampled_from(["extra", "many extra", "surrogate key", "raw surrogate key", "top", "empty object"]))
        if op == "extra":
            for i in range(draw(st.integers(1, 5))):
                doc[f"x{i}_{draw(st.text(max_size=5))}"] = draw(bad_values())[1]
            return "extra fields", dumps(doc)
        if op == "many extra":
            return "5000 extra fields", dumps({**doc, **{f"k{i}": i for i in range(5000)}})
        if op == "surrogate key":
            return "lone surrogate in a key", dumps({**doc, "\ud800": 1})
        if op == "raw surrogate key":
            return "raw surrogate bytes in a key", dumps(Obj([*doc.items(), (raw_str("\udc80k"), 1)]))
        if op == "empty object":
            return "empty object", b"{}"
        tops = [("array", []), ("array of objects", [doc]), ("string", "text"), ("number", 1), ("null", None),
                ("true", True), ("5000-digit number", Raw(b"1" * 5000)), ("NaN", Raw(b"NaN"))]  # fmt: skip
        label, value = draw(st.sampled_from(tops))
        return f"top-level {label}", dumps(value)
    body = dumps(doc)
    ops = ["empty", "garbage", "truncated", "invalid utf-8", "raw surrogate", "utf-16", "bom", "trailing", "oversize",
           "2 MB", "deep 10000", "deep 100000", "whitespace", "two docs"]  # fmt: skip
    op = draw(st.sampled_from(ops))
    if op == "empty":
        return "body=empty", b""
    if op == "garbage":
        return "body=garbage bytes", draw(st.binary(min_size=1, max_size=200))
    if op == "truncated":
        return "body=truncated JSON", body[: draw(st.integers(1, max(1, len(body) - 1)))]
    if op == "invalid utf-8":
        at = draw(st.integers(0, len(body)))
        return "body=invalid UTF-8 byte", body[:at] + b"\xff" + body[at:]
    if op == "raw surrogate":
        return "body=raw surrogate bytes", body.replace(b'":"', b'":"\xed\xa0\x80', 1)
    if op == "utf-16":
        return "body=UTF-16", body.decode("utf-8", "replace").encode("utf-16")
    if op == "bom":
        return "body=UTF-8 BOM", b"\xef\xbb\xbf" + body
    if op == "trailing":
        return "body=trailing data", body + draw(st.sampled_from([b"x", b"{}", b"\x00", b"]"]))
    if op == "oversize":
        return "body=over the limit", body[:-1] + b"," + b'"pad":"' + b"x" * (limit + 16) + b'"}'
    if op == "2 MB":
        return "body=2 MB", b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    if op == "deep 10000":
        return "body=deep nesting 10000", _deep_list(10_000).data
    if op == "deep 100000":
        return "body=deep nesting to the size limit", _deep_list(min(limit // 2 - 8, 100_000)).data
    if op == "whitespace":
        return "body=whitespace only", b" \n\t "
    return "body=two documents", body + body


@st.composite
def content_type(draw: st.DrawFn, default: bytes | None, variants: list[tuple[str, bytes | None]],
                 always: bool = False) -> tuple[str, Any]:  # fmt: skip
    if not always and draw(st.integers(0, 9)) < 8:
        return "", default
    label, value = draw(st.sampled_from(variants))
    return f"ct={label}", value


HEADER_FUZZ: list[tuple[str, list[tuple[bytes, bytes]]]] = [
    ("Host garbage", [(b"Host", b"a b")]), ("Host bad port", [(b"Host", b"127.0.0.1:99999")]),
    ("Host IPv6 unclosed", [(b"Host", b"[::1")]), ("Host non-ASCII", [(b"Host", b"\xe4\xbd\xa0.example")]),
    ("Host empty", [(b"Host", b"")]), ("Host huge", [(b"Host", b"h" * 6000)]),
    ("X-Forwarded-For garbage", [(b"X-Forwarded-For", b"not-an-ip, \xff, 999.1.1.1")]),
    ("X-Forwarded-Proto garbage", [(b"X-Forwarded-Proto", b"\xffhttps")]),
    ("Forwarded garbage", [(b"Forwarded", b'for="[::1;proto=ht\xfftp')]),
    ("Cookie non-ASCII", [(b"Cookie", b"gw_vid=\xed\xa0\x80; gw_agent=\xff; gw_rest_session=\xc3")]),
    ("Cookie garbage", [(b"Cookie", b"=;;;gw_vid;=x=y=z; $Version=1")]),
    ("Cookie huge", [(b"Cookie", b"gw_vid=" + b"v" * 7000)]),
    ("Accept-Language non-ASCII", [(b"Accept-Language", b"\xed\xa0\x80en")]),
    ("Origin garbage", [(b"Origin", b"http://[::1")]), ("Origin evil", [(b"Origin", b"https://evil.example")]),
    ("Origin null", [(b"Origin", b"null")]), ("Origin non-ASCII", [(b"Origin", b"http://\xe4\xbd\xa0\xed\xa0\x80")]),
    ("header non-ASCII", [(b"X-Fuzz", b"\xed\xa0\x80\xff")]),
    ("Content-Encoding gzip", [(b"Content-Encoding", b"gzip")]),
    ("Content-Encoding br", [(b"Content-Encoding", b"br")]),
    ("Content-Encoding unknown", [(b"Content-Encoding", b"klingon")]),
    ("Content-Encoding deflate", [(b"Content-Encoding", b"deflate")]),
    ("Expect 100-continue", [(b"Expect", b"100-continue")]), ("Accept odd", [(b"Accept", b"\xff/\xff")]),
    ("Authorization garbage", [(b"Authorization", b"Bearer \xed\xa0\x80")]),
    ("X-CSRF-Token non-ASCII", [(b"X-CSRF-Token", b"\xe4\xbd\xa0\xed\xa0\x80")]),
    ("X-Request-Id huge", [(b"X-Request-Id", b"r" * 7000)]),
    ("Transfer-Encoding chunked and Content-Length", [(b"Transfer-Encoding", b"chunked")]),
    ("Transfer-Encoding unknown", [(b"Transfer-Encoding", b"gzip")]),
    ("second Content-Type", [(b"Content-Type", b"text/plain")]),
    ("second Host", [(b"Host", b"evil.example")]), ("Content-Length negative", [(b"Content-Length", b"-1")]),
    ("Sec-WebSocket-Version 99", [(b"Sec-WebSocket-Version", b"99")]),
    ("Upgrade garbage", [(b"Upgrade", b"\xffsocket")]),
]  # fmt: skip


@st.composite
def header_fuzz(draw: st.DrawFn, extra: list[tuple[str, list[tuple[bytes, bytes]]]] | None = None,
                rate: int = 15) -> tuple[str, list[tuple[bytes, bytes]]]:  # fmt: skip
    """("", []) most of the time; else one class of header damage."""
    if draw(st.integers(0, 99)) >= rate:
        return "", []
    label, headers = draw(st.sampled_from(HEADER_FUZZ + (extra or [])))
    return f"hdr={label}", headers


METHODS = [b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD", b"TRACE", b"FOO", b"G\xffT"]


@st.composite
def method_for(draw: st.DrawFn, normal: str, always: bool = False) -> tuple[str, str]:
    if not always and draw(st.integers(0, 99)) >= 4:
        return "", normal
    method = draw(st.sampled_from(METHODS)).decode("latin-1")
    return f"method={method!r}", method


def join(*labels: str) -> str:
    return " | ".join(label for label in labels if label) or "valid"


# ---- query strings and forms ------------------------------------------------------------------------------
Query = list[tuple[str, str, str]]


@st.composite
def query_fuzz(draw: st.DrawFn, template: Query, names: list[str]) -> tuple[str, Query]:
    """(label, params) — the template (values may be ``$TS``… sentinels), or with one class of damage."""
    params = list(template)
    kind = draw(st.sampled_from(["valid"] * 3 + ["value"] * 8 + ["structure"] * 2))
    if kind == "valid" or not names:
        return "", params
    if kind == "value":
        name = draw(st.sampled_from(names))
        label, value = draw(text_values([("float inf", "inf"), ("negative", "-5"), ("hex", "0x1f"),
                                          ("float", "1.5e3"), ("spaces", "  1 ")]))  # fmt: skip
        mode = draw(st.sampled_from(["pct", "pct", "raw"]))
        present = [i for i, (n, _, _) in enumerate(params) if n == name]
        if present:
            params[present[0]] = (name, value, mode)
        else:
            params.append((name, value, mode))
        return f"query {name}={label}{' (raw bytes)' if mode == 'raw' else ''}", params
    op = draw(st.sampled_from(["missing", "duplicate", "extra", "empty values"]))
    name = draw(st.sampled_from(names))
    if op == "missing":
        return f"query {name} missing", [p for p in params if p[0] != name]
    if op == "duplicate":
        label, value = draw(text_values())
        return f"query {name} duplicated ({label})", [*params, (name, value, "pct")]
    if op == "extra":
        return "query extra params", [*params, *[(f"x{i}", "\ud800" if i % 2 else "y", "pct") for i in range(50)]]
    return "query all values empty", [(n, "", m) for n, _, m in params]


RAW_QUERIES = [
    ("raw query %", b"a=%"), ("raw query %zz", b"a=%zz&lang=%zz"), ("raw query lone &", b"&&&=&="),
    ("raw query NUL", b"lang=%00&token=%00"), ("raw query invalid UTF-8", b"lang=%ff%fe&token=%c3"),
    ("raw query surrogate bytes", b"lang=\xed\xa0\x80&token=\xed\xb0\x80"), ("raw query semicolons", b"a=1;b=2;;;"),
    ("raw query 8 KB", b"q=" + b"x" * 8200), ("raw query 5000 params", b"&".join(b"p%d=1" % i for i in range(5000))),
]  # fmt: skip


def encode_query(params: Query) -> bytes:
    parts = []
    for name, value, mode in params:
        key = urllib.parse.quote(utf8(name), safe="").encode()
        if mode == "raw":
            val = b"".join(bytes([b]) if b >= 0x80 else urllib.parse.quote(bytes([b]), safe="").encode()
                           for b in utf8(value))  # fmt: skip
        else:
            val = urllib.parse.quote(utf8(value), safe="").encode()
        parts.append(key + b"=" + val)
    return b"&".join(parts)


def server_value(value: str) -> str:
    """What the server reads back for a value we percent-encode (invalid UTF-8 → U+FFFD)."""
    return utf8(value).decode("utf-8", "replace")


@st.composite
def form_body(draw: st.DrawFn, template: st.SearchStrategy[list[tuple[str, str]]], names: list[str], limit: int
              ) -> tuple[str, bytes]:  # fmt: skip
    """(label, application/x-www-form-urlencoded body) — Twilio's webhooks."""
    pairs = list(draw(template))
    kind = draw(st.sampled_from(["valid"] * 3 + ["value"] * 8 + ["structure"] * 2 + ["bytes"] * 2))
    encode = encode_query
    if kind == "valid":
        return "valid", encode([(n, v, "pct") for n, v in pairs])
    if kind == "value":
        name = draw(st.sampled_from(names))
        label, value = draw(text_values())
        mode = draw(st.sampled_from(["pct", "pct", "raw"]))
        out = [(n, value if n == name else v, mode if n == name else "pct") for n, v in pairs]
        if name not in {n for n, _ in pairs}:
            out.append((name, value, mode))
        return f"form {name}={label}{' (raw bytes)' if mode == 'raw' else ''}", encode(out)
    if kind == "structure":
        op = draw(st.sampled_from(["missing", "duplicate", "extra", "no =", "bad escapes"]))
        name = draw(st.sampled_from(names))
        base = [(n, v, "pct") for n, v in pairs]
        if op == "missing":
            return f"form {name} missing", encode([p for p in base if p[0] != name])
        if op == "duplicate":
            return f"form {name} duplicated", encode([*base, (name, draw(text_values())[1], "pct")])
        if op == "extra":
            return "form 2000 extra fields", encode([*base, *[(f"X{i}", "v", "pct") for i in range(2000)]])
        if op == "no =":
            return "form key without =", encode(base) + b"&" + name.encode() + b"&&="
        return "form bad % escapes", encode(base) + b"&Body=%zz%&From=%e4%bd"
    body = encode([(n, v, "pct") for n, v in pairs])
    op = draw(st.sampled_from(["empty", "garbage", "invalid utf-8", "json", "oversize", "2 MB"]))
    if op == "empty":
        return "body=empty", b""
    if op == "garbage":
        return "body=garbage bytes", draw(st.binary(min_size=1, max_size=200))
    if op == "invalid utf-8":
        return "body=invalid UTF-8 byte", body + b"&Body=\xff\xed\xa0\x80"
    if op == "json":
        return "body=JSON instead of a form", dumps(dict(pairs))
    if op == "oversize":
        return "body=over the limit", body + b"&Pad=" + b"x" * (limit + 16)
    return "body=2 MB", body + b"&Pad=" + b"x" * (2 * 1024 * 1024)


# ---- XML (WeChat) ------------------------------------------------------------------------------------------
OPENIDS = ["oFUZZ000000000000000000000001", "oFUZZ000000000000000000000002", "oFUZZ000000000000000000000003"]


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wechat_fields(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A WeChat push as (element, value): strings go in CDATA, ints bare."""
    kind = draw(st.sampled_from(["text", "text", "text", "event", "image", "voice", "location", "link"]))
    fields: list[tuple[str, Any]] = [("ToUserName", "gh_3f8a2c9d1e7b"),
                                     ("FromUserName", draw(st.sampled_from(OPENIDS))),
                                     ("CreateTime", "$NOW"), ("MsgType", kind)]  # fmt: skip
    msg_id = draw(st.integers(10**15, 10**17))
    if kind == "text":
        fields += [("Content", draw(st.sampled_from(TEXTS))), ("MsgId", msg_id)]
    elif kind == "event":
        event = draw(st.sampled_from(["subscribe", "unsubscribe", "CLICK", "VIEW", "LOCATION", "SCAN", "weird"]))
        fields += [("Event", event), ("EventKey", draw(st.sampled_from(["BALANCE", "DATA", "HUMAN", "https://x", ""])))]
    elif kind == "image":
        fields += [("PicUrl", "http://mmbiz.qpic.cn/x/0"), ("MediaId", "media_1"), ("MsgId", msg_id)]
    elif kind == "voice":
        fields += [("MediaId", "media_2"), ("Format", "amr"), ("Recognition", "查话费"), ("MsgId", msg_id)]
    elif kind == "location":
        fields += [("Location_X", 39.9), ("Location_Y", 116.4), ("Scale", 15), ("Label", "北京"), ("MsgId", msg_id)]
    else:
        fields += [("Title", "t"), ("Description", "d"), ("Url", "http://x"), ("MsgId", msg_id)]
    return fields


def render_xml(fields: list[tuple[str, Any]]) -> bytes:
    out = []
    for name, value in fields:
        if value == "$NOW":
            value = int(time.time())
        if isinstance(value, Raw):
            out.append(f"<{name}>".encode() + value.data + f"</{name}>".encode())
        elif isinstance(value, str):
            out.append(utf8(f"<{name}>{_cdata(value)}</{name}>"))
        else:
            out.append(f"<{name}>{value}</{name}>".encode())
    return b"<xml>" + b"\n".join(out) + b"\n</xml>"


XML_INT_BAD: list[tuple[str, Any]] = [
    ("not a number", Raw(b"abc")), ("5000-digit number", Raw(b"9" * 5000)), ("NaN", Raw(b"NaN")), ("inf", Raw(b"inf")),
    ("negative", Raw(b"-1")), ("float", Raw(b"1.5")), ("empty", Raw(b"")), ("2^64", Raw(str(2**64).encode())),
    ("superscript digit", Raw("\u00b2".encode())), ("arabic-indic digits", Raw("\u0661\u0662".encode())),
    ("nested element", Raw(b"<a>1</a>")), ("CDATA number", "123"), ("spaces", Raw(b" 12 ")),
]  # fmt: skip


@st.composite
def wechat_xml(draw: st.DrawFn, limit: int = 64 * 1024) -> tuple[str, bytes]:
    """(label, XML) — a valid push, a field damaged, or malformed XML."""
    fields = draw(wechat_fields())
    kind = draw(st.sampled_from(["valid"] * 3 + ["field"] * 8 + ["structure"] * 2 + ["malformed"] * 4))
    if kind == "field":
        names = [n for n, _ in fields]
        name = draw(st.sampled_from(names))
        ints = {"CreateTime", "MsgId", "Scale", "Location_X", "Location_Y"}
        if name in ints and draw(st.booleans()):
            label, value = draw(st.sampled_from(XML_INT_BAD))
        else:
            choice = draw(st.sampled_from(["surrogate raw", "surrogate charref", "text", "huge", "entity", "nested",
                                           "attribute", "invalid utf-8"]))  # fmt: skip
            if choice == "surrogate raw":
                label, value = "lone surrogate (raw bytes)", Raw(utf8(draw(surrogate_text())))
            elif choice == "surrogate charref":
                label, value = "lone surrogate (&#xD800;)", Raw(b"&#xD800;&#56320;")
            elif choice == "text":
                label, value = draw(text_values())
            elif choice == "huge":
                label, value = "huge value", "长" * (limit // 3 - 400)
            elif choice == "entity":
                label, value = "undefined entity", Raw(b"&bogus;&#0;&#x110000;")
            elif choice == "nested":
                label, value = "nested elements", Raw(b"<a><b>1</b><b>2</b></a>")
            elif choice == "attribute":
                label, value = "attributes only", Raw(b"")
                fields = [(n, v) for n, v in fields if n != name]
                return f"{name}=attribute-only element", render_xml(fields).replace(
                    b"<xml>", f'<xml><{name} a="1" b="\xff"/>'.encode("latin-1"), 1)  # fmt: skip
            else:
                label, value = "invalid UTF-8", Raw(b"\xff\xfe\xc3")
        fields = [(n, value if n == name else v) for n, v in fields]
        return f"{name}={label}", render_xml(fields)
    if kind == "structure":
        op = draw(st.sampled_from(["missing", "duplicate", "extra", "empty root", "other root"]))
        name = draw(st.sampled_from([n for n, _ in fields]))
        if op == "missing":
            return f"{name} missing", render_xml([f for f in fields if f[0] != name])
        if op == "duplicate":
            return f"{name} duplicated", render_xml([*fields, (name, draw(st.sampled_from(TEXTS)))])
        if op == "extra":
            return "extra elements", render_xml([*fields, *[(f"X{i}", "\ud800" if i % 2 else "v") for i in range(200)]])
        if op == "empty root":
            return "empty <xml/>", b"<xml/>"
        return "root is not <xml>", render_xml(fields).replace(b"<xml>", b"<root>").replace(b"</xml>", b"</root>")
    if kind == "malformed":
        body = render_xml(fields)
        op = draw(st.sampled_from(["unclosed", "garbage", "empty", "json", "bomb", "xxe", "doctype", "encoding",
                                   "utf-16", "deep", "oversize", "2 MB", "pi", "bom", "nul"]))  # fmt: skip
        if op == "unclosed":
            return "xml=unclosed", body[: draw(st.integers(1, len(body) - 1))]
        if op == "garbage":
            return "xml=garbage bytes", draw(st.binary(min_size=1, max_size=200))
        if op == "empty":
            return "xml=empty body", b""
        if op == "json":
            return "xml=JSON body", b'{"ToUserName": "x", "MsgType": "text"}'
        if op == "bomb":
            ents = (
                b'<!ENTITY a "'
                + b"x" * 10
                + b'">'
                + b"".join(
                    b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10) for i in range(8)
                )
            )
            return "xml=entity expansion (billion laughs)", (
                b'<?xml version="1.0"?><!DOCTYPE xml ['
                + ents
                + b"]>"
                + body.replace(b"<MsgType>", b"<Q>&i;</Q><MsgType>", 1)
            )
        if op == "xxe":
            return "xml=external entity", (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                           + body.replace(b"<MsgType>", b"<Q>&e;</Q><MsgType>", 1))  # fmt: skip
        if op == "doctype":
            return "xml=DOCTYPE", b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd">' + body
        if op == "encoding":
            enc = draw(st.sampled_from([b"klingon", b"UTF-16", b"ebcdic", b"\xff"]))
            return "xml=unknown/wrong encoding declaration", b'<?xml version="1.0" encoding="' + enc + b'"?>' + body
        if op == "utf-16":
            return "xml=UTF-16 body", body.decode("utf-8", "replace").encode("utf-16")
        if op == "deep":
            return "xml=deep nesting 10000", b"<xml>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</xml>"
        if op == "oversize":
            return "xml=over the limit", body.replace(b"</xml>", b"<Pad>" + b"x" * limit + b"</Pad></xml>")
        if op == "2 MB":
            return "xml=2 MB", body.replace(b"</xml>", b"<Pad>" + b"x" * 2 * 1024 * 1024 + b"</Pad></xml>")
        if op == "pi":
            return "xml=processing instructions", b"<?foo bar?>" + body + b"<?x?>"
        if op == "bom":
            return "xml=BOM", b"\xef\xbb\xbf" + body
        return "xml=NUL byte", body.replace(b"<MsgType>", b"<MsgType>\x00", 1)
    return "valid", render_xml(fields)


# ---- WeChat safe mode: our own AES envelope, so any bytes (and lies) can be encrypted ----------------------
def _aes_key() -> bytes:
    import base64

    return base64.b64decode(SECRETS["WECHAT_AES_KEY"] + "=")


def wechat_encrypt(plain: bytes, appid: str = WECHAT_APPID, length: int | None = None, pad: bytes | None = None,
                   prefix: bytes = b"0123456789abcdef") -> str:  # fmt: skip
    """WeChat's ``Encrypt``: base64(AES-256-CBC(random16 + len(4, network order) + xml + appid + PKCS#7/32))."""
    import base64

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = _aes_key()
    data = prefix + struct.pack(">I", len(plain) if length is None else length % 2**32) + plain + appid.encode()
    count = 32 - len(data) % 32
    data += pad if pad is not None else bytes([count]) * count
    if len(data) % 16:
        data += b"\x00" * (16 - len(data) % 16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


@st.composite
def wechat_aes_body(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(label, body, Encrypt text the msg_signature covers) — the push encrypted, or the envelope broken."""
    label, inner = draw(wechat_xml())
    kind = draw(st.sampled_from(["good"] * 6 + ["envelope"] * 4))
    if kind == "good":
        encrypt = wechat_encrypt(inner)
        return label, _envelope(encrypt), encrypt
    op = draw(st.sampled_from(["no Encrypt", "not base64", "short", "length lie", "huge length", "wrong appid",
                               "bad padding", "padding 0", "inner not UTF-8", "Encrypt nested", "Encrypt twice",
                               "Encrypt surrogate", "envelope malformed", "empty body"]))  # fmt: skip
    encrypt = wechat_encrypt(inner)
    if op == "no Encrypt":
        return "envelope: no Encrypt", b"<xml><ToUserName>x</ToUserName></xml>", ""
    if op == "not base64":
        encrypt = draw(st.sampled_from(["!!!notbase64!!!", "YWJj", "====", "a" * 7, "\u4e2d\u6587"]))
    elif op == "short":
        encrypt = draw(st.sampled_from(["", "AAAAAAAAAAAAAAAAAAAAAA==", "QUFBQUFBQUFBQUFBQUFBQQ=="]))
    elif op == "length lie":
        encrypt = wechat_encrypt(inner, length=len(inner) + draw(st.integers(1, 10**6)))
    elif op == "huge length":
        encrypt = wechat_encrypt(inner, length=2**32 - 1)
    elif op == "wrong appid":
        encrypt = wechat_encrypt(inner, appid=draw(st.sampled_from(["wxother", "", "\u4e2d"])))
    elif op == "bad padding":
        encrypt = wechat_encrypt(inner, pad=b"\x21" * 32)
    elif op == "padding 0":
        encrypt = wechat_encrypt(inner, pad=b"\x00" * 32)
    elif op == "inner not UTF-8":
        encrypt = wechat_encrypt(b"<xml>\xff\xed\xa0\x80</xml>")
    elif op == "Encrypt nested":
        return f"envelope: {op}", b"<xml><Encrypt><a>1</a></Encrypt></xml>", ""
    elif op == "Encrypt twice":
        body = f"<xml><Encrypt>{encrypt}</Encrypt><Encrypt>{encrypt}</Encrypt></xml>".encode()
        return f"envelope: {op}", body, encrypt
    elif op == "Encrypt surrogate":
        return f"envelope: {op}", b"<xml><Encrypt>\xed\xa0\x80</Encrypt></xml>", "\ud800"
    elif op == "envelope malformed":
        return f"envelope: {op}", b"<xml><Encrypt>" + encrypt.encode(), encrypt
    else:
        return "envelope: empty body", b"", ""
    return f"envelope: {op}", f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode(), encrypt


# ---- endpoint case strategies ------------------------------------------------------------------------------
SENDERS = ["fuzz-u1", "fuzz-u2", "fuzz-u3"]


def _sender() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SENDERS), st.text(alphabet="abcdefghij0123456789-_", min_size=1, max_size=12))


def _http(endpoint: str, method: str, path: bytes, body_label: str, body: bytes, ctype: tuple[str, Any],
          headers: tuple[str, list[tuple[bytes, bytes]]], meth: tuple[str, str], **kw: Any) -> Case:  # fmt: skip
    return Case(endpoint, join(body_label, ctype[0], headers[0], meth[0]), meth[1] or method, path,
                headers=list(headers[1]), body=body, content_type=ctype[1], **kw)  # fmt: skip


SITES = ["body"] * 15 + ["content-type"] * 2 + ["header"] * 3 + ["method"]


@st.composite
def json_endpoint(draw: st.DrawFn, endpoint: str, path: bytes, template: st.SearchStrategy[dict[str, Any]],
                  paths: list[Path], limit: int, method: str = "POST", extra_bad: list[tuple[str, Any]] | None = None,
                  headers: list[tuple[str, list[tuple[bytes, bytes]]]] | None = None, **kw: Any) -> Case:  # fmt: skip
    """One damage per case — the body, the Content-Type, a header or the method — so a failure names its cause."""
    site = draw(st.sampled_from(SITES))
    if site == "body":
        label, body = draw(json_body(template, paths, limit, extra_bad))
        return _http(endpoint, method, path, label, body, ("", b"application/json"), ("", []), ("", method), **kw)
    body = dumps(draw(template))
    ctype = (
        draw(content_type(b"application/json", JSON_TYPES, always=True))
        if site == "content-type"
        else ("", b"application/json")
    )
    hdrs = draw(header_fuzz(headers, rate=100)) if site == "header" else ("", [])
    meth = draw(method_for(method, always=True)) if site == "method" else ("", method)
    return _http(endpoint, method, path, "", body, ctype, hdrs, meth, **kw)


# REST and NLU
def rest_template() -> st.SearchStrategy[dict[str, Any]]:
    meta = st.fixed_dictionaries({}, optional={"message_id": st.text("0123456789abcdef", min_size=8, max_size=32),
                                               "lang": st.sampled_from(["zh", "en"]),
                                               "token": st.just("$JWT")})  # fmt: skip
    return st.fixed_dictionaries({"sender": _sender(), "message": st.sampled_from(TEXTS)}, optional={"metadata": meta})


REST_PATHS: list[Path] = [("sender",), ("message",), ("metadata",), ("metadata", "message_id"), ("metadata", "lang"),
                          ("metadata", "token")]  # fmt: skip
REST_TOKENS: list[tuple[str, Any]] = [("token not a JWT", "not.a.jwt"), ("token alg none", "eyJhbGciOiJub25lIn0.e30."),
                                      ("token 10k chars", "a." * 5000)]  # fmt: skip
REST_HEADERS = [("session cookie garbage", [(b"Cookie", b"gw_rest_session=\xed\xa0\x80" + b"x" * 40)]),
                ("session cookie huge", [(b"Cookie", b"gw_rest_session=" + b"A" * 5000)])]  # fmt: skip


def rest_cases() -> st.SearchStrategy[Case]:
    return json_endpoint("rest", b"/webhooks/rest/webhook", rest_template(), REST_PATHS, 16384, extra_bad=REST_TOKENS,
                         headers=REST_HEADERS)  # fmt: skip


def parse_cases() -> st.SearchStrategy[Case]:
    template = st.fixed_dictionaries({"text": st.sampled_from(TEXTS)}, optional={"lang": st.sampled_from(["zh", "en"])})
    return json_endpoint("model-parse", b"/model/parse", template, [("text",), ("lang",)], 16384)


# simple GET endpoints (query and headers only)
@st.composite
def get_cases(draw: st.DrawFn, endpoint: str, paths: list[bytes], template: Query, names: list[str],
              auth: list[str] | None = None) -> Case:  # fmt: skip
    path = draw(st.sampled_from(paths))
    site = draw(st.sampled_from(["query"] * 14 + ["raw query"] * 2 + ["header"] * 3 + ["method"]))
    case = Case(endpoint, "", "GET", path, query=list(template))
    if site == "raw query":
        case.label, case.raw_query = draw(st.sampled_from(RAW_QUERIES))
    elif site == "query":
        case.label, case.query = draw(query_fuzz(template, names))
    elif site == "header":
        case.label, case.headers = draw(header_fuzz(rate=100))
    else:
        case.label, case.method = draw(method_for("GET", always=True))
    case.label = join(case.label, f"path {path[:40].decode('latin-1')!r}" if len(paths) > 1 else "")
    if auth:
        case.auth = draw(st.sampled_from(auth))
        case.label = join(case.label, _auth_label(case.auth))
    return case


def healthz_cases() -> st.SearchStrategy[Case]:
    return get_cases("healthz", [b"/healthz"], [], ["verbose"])


def metrics_cases() -> st.SearchStrategy[Case]:
    return st.one_of(get_cases("metrics", [b"/metrics"], [], ["name[]"]),
                     get_cases("metrics", [b"/metrics"], [], ["x"]).map(_metrics_token))  # fmt: skip


def _metrics_token(case: Case) -> Case:
    case.headers = [*case.headers, (b"Authorization", b"Bearer " + SECRETS["METRICS_TOKEN"].encode())]
    case.label = join(case.label, "metrics token")
    return case


PAGE_PATHS = [b"/", b"/agent", b"/widget.js", b"/static/widget.js", b"/static/../config/gateway.yml",
              b"/static/%2e%2e/%2e%2e/etc/passwd", b"/static/\xed\xa0\x80", b"/%ED%A0%80", b"/" + b"a" * 9000,
              b"/static/" + b"x/" * 300, b"//", b"/?"]  # fmt: skip


def page_cases() -> st.SearchStrategy[Case]:
    return get_cases("pages", PAGE_PATHS, [("lang", "zh", "pct"), ("token", "$JWT", "pct")], ["lang", "token"])


# the agents' API
AUTH_MODES = ["super"] * 6 + ["agent"] * 2 + ["nocookie", "garbage-cookie", "nonascii-cookie", "nocsrf", "badcsrf",
                                              "nonascii-csrf", "huge-csrf"]  # fmt: skip
CHAT_IDS = [b"$CHAT"] * 6 + [b"0", b"-1", b"deadbeefdeadbeef", b"..", b"%2e%2e", b"a%2Fb", b"%ED%A0%80",
                             b"\xed\xa0\x80",
                             b"%00", b"x" * 5000, b"%FF%FE", b"{id}", b"1e999", b"\xff"]  # fmt: skip


def _auth_label(auth: str) -> str:
    return "" if auth == "super" else f"auth={auth}"


@st.composite
def agent_json(draw: st.DrawFn, endpoint: str, path: bytes, template: st.SearchStrategy[dict[str, Any]],
               paths: list[Path], auth: list[str] | None = None, limit: int = 16384,
               extra_bad: list[tuple[str, Any]] | None = None) -> Case:  # fmt: skip
    case = draw(json_endpoint(endpoint, path, template, paths, limit, extra_bad=extra_bad))
    case.auth = draw(st.sampled_from(auth or AUTH_MODES))
    case.label = join(case.label, _auth_label(case.auth))
    return case


def login_cases() -> st.SearchStrategy[Case]:
    name = st.sampled_from([FUZZ_LOGIN, "nobody", "", "a" * 300, "\u4e2d\u6587"])
    password = st.sampled_from(["demo-agent2", "wrong", "x" * 73, "密" * 25, "p" * 5000])
    template = st.fixed_dictionaries({"name": name, "password": password})
    extra = [("password 73 bytes", "a" * 73), ("password 75 bytes CJK", "密" * 25), ("password 100 KB", "p" * 100_000)]
    origins = [("Origin cross-site", [(b"Origin", b"https://evil.example")]), ("Origin null", [(b"Origin", b"null")])]
    return json_endpoint("agent-login", b"/api/agent/login", template, [("name",), ("password",)], 16384,
                         extra_bad=extra, headers=origins)  # fmt: skip


def logout_cases() -> st.SearchStrategy[Case]:
    # never with a valid session *and* its CSRF token: that would end the session the other endpoints use
    modes = ["nocookie", "garbage-cookie", "nonascii-cookie", "nocsrf", "badcsrf", "nonascii-csrf", "huge-csrf"]
    return agent_json("agent-logout", b"/api/agent/logout", st.just({}), [("x",)], auth=modes)


def me_cases() -> st.SearchStrategy[Case]:
    return get_cases("agent-me", [b"/api/agent/me"], [], ["x"], auth=AUTH_MODES)


def status_cases() -> st.SearchStrategy[Case]:
    template = st.fixed_dictionaries({"status": st.sampled_from(["online", "away", "offline", "busy"])})
    return agent_json("agent-status", b"/api/agent/status", template, [("status",)])


def queue_cases() -> st.SearchStrategy[Case]:
    return get_cases("queue", [b"/api/queue"], [], ["x"], auth=AUTH_MODES)


@st.composite
def chat_get_cases(draw: st.DrawFn) -> Case:
    chat = draw(st.sampled_from(CHAT_IDS))
    suffix = draw(st.sampled_from([b"", b"/canned"]))
    case = draw(get_cases("chat-detail", [b"/api/chats/" + chat + suffix], [], ["x"], auth=AUTH_MODES))
    case.label = join(case.label, f"id={chat[:12]!r}" if chat != b"$CHAT" else "", "canned" if suffix else "")
    return case


def canned_cases() -> st.SearchStrategy[Case]:
    return st.builds(_canned, get_cases("chat-canned", [b"/api/chats/$CHAT/canned"], [], ["x"], auth=AUTH_MODES),
                     st.sampled_from(CHAT_IDS))  # fmt: skip


def _canned(case: Case, chat: bytes) -> Case:
    case.path = b"/api/chats/" + chat + b"/canned"
    case.label = join(case.label, f"id={chat[:12]!r}" if chat != b"$CHAT" else "")
    return case


ACTIONS: dict[str, tuple[st.SearchStrategy[dict[str, Any]], list[Path]]] = {
    "accept": (st.just({}), [("x",)]),
    "messages": (st.fixed_dictionaries({"text": st.sampled_from(TEXTS)}), [("text",)]),
    "notes": (st.fixed_dictionaries({"text": st.sampled_from(TEXTS)}), [("text",)]),
    "transfer": (
        st.fixed_dictionaries(
            {},
            optional={
                "to_agent": st.sampled_from(["agent2", "nobody"]),
                "to_skill": st.sampled_from(["network", "x"]),
                "note": st.sampled_from(TEXTS),
            },
        ),
        [("to_agent",), ("to_skill",), ("note",)],
    ),
    "close": (
        st.fixed_dictionaries({"disposition": st.sampled_from(["follow_up", "bogus", "resolved"])}),
        [("disposition",)],
    ),
}


@st.composite
def chat_action_cases(draw: st.DrawFn) -> Case:
    action = draw(st.sampled_from(sorted(ACTIONS)))
    chat = draw(st.sampled_from(CHAT_IDS))
    template, paths = ACTIONS[action]
    case = draw(agent_json("chat-actions", b"/api/chats/" + chat + b"/" + action.encode(), template, paths))
    case.label = join(case.label, action, f"id={chat[:12]!r}" if chat != b"$CHAT" else "")
    return case


@st.composite
def callback_cases(draw: st.DrawFn) -> Case:
    if draw(st.booleans()):
        return draw(get_cases("callbacks", [b"/api/callbacks"], [("all", "1", "pct")], ["all"], auth=AUTH_MODES))
    action = draw(st.sampled_from([b"reply", b"done"]))
    task = draw(st.sampled_from([b"cb-1", b"0", b"%ED%A0%80", b"\xed\xa0\x80", b"x" * 3000, b"..", b"$CHAT"]))
    template = st.fixed_dictionaries({}, optional={"text": st.sampled_from(TEXTS), "note": st.sampled_from(TEXTS)})
    case = draw(agent_json("callbacks", b"/api/callbacks/" + task + b"/" + action, template, [("text",), ("note",)]))
    case.label = join(case.label, action.decode())
    return case


def outboxes_cases() -> st.SearchStrategy[Case]:
    return get_cases("outboxes", [b"/api/outboxes"], [], ["x"], auth=AUTH_MODES)


def broadcast_cases() -> st.SearchStrategy[Case]:
    numbers = st.lists(st.sampled_from(["13800138000", "+8613900139000", "+447700900123", "12", "abc"]), min_size=1,
                       max_size=3)  # fmt: skip
    texts = st.sampled_from(["新品上市", "Big sale", "流量包半价"])
    template = st.fixed_dictionaries({"text": texts, "numbers": numbers},
                                     optional={"lang": st.sampled_from(["zh", "en"])})  # fmt: skip
    extra = [("10001 numbers", ["13800138000"] * 10_001), ("numbers with surrogates", ["1380013800\ud800", "\udc00"]),
             ("numbers of wrong types", [1, None, [], {}, 1.5, True]),
             ("text UTF-16 surrogate pair halves", "\ud83d\ude00"[:1] * 3),
             ("text 4 parts", "短信" * 200)]  # fmt: skip
    return agent_json("sms-broadcast", b"/api/sms/broadcast", template,
                      [("text",), ("numbers",), ("lang",)], extra_bad=extra, limit=64 * 1024)  # fmt: skip


# provider webhooks
SIGN_MODES = ["good"] * 8 + ["none", "wrong", "nonascii", "huge"]


@st.composite
def signed_json(draw: st.DrawFn, endpoint: str, path: bytes, scheme: str, template: st.SearchStrategy[dict[str, Any]],
                paths: list[Path], limit: int, **kw: Any) -> Case:  # fmt: skip
    case = draw(json_endpoint(endpoint, path, template, paths, limit, **kw))
    case.sign, case.sign_mode = scheme, draw(st.sampled_from(SIGN_MODES))
    case.label = join(case.label, "" if case.sign_mode == "good" else f"signature={case.sign_mode}")
    return case


PHONES = ["+8613800138000", "13800138001", "+8613900139002", "+447700900123", "008613800138000", "138-0013-8000"]


NOW = Raw(b"$NOWTS")  # the Unix time at sending (a signed timestamp must be within 5 minutes)


def sms_webhook_cases() -> st.SearchStrategy[Case]:
    template = st.fixed_dictionaries({"from": st.sampled_from(PHONES), "to": st.just("10658000"),
                                      "text": st.sampled_from(TEXTS), "timestamp": st.just(NOW),
                                      "id": st.text("0123456789abcdef", min_size=6, max_size=20)})  # fmt: skip
    return signed_json("sms-webhook", b"/channels/sms/webhook", "sms", template,
                       [("from",), ("to",), ("text",), ("id",), ("timestamp",)], 64 * 1024)  # fmt: skip


def sms_status_cases() -> st.SearchStrategy[Case]:
    template = st.fixed_dictionaries({"id": st.sampled_from(["log-x", "unknown", "abc123"]),
                                      "status": st.sampled_from(["delivered", "DELIVRD", "failed", "weird"]),
                                      "timestamp": st.just(NOW)},
                                     optional={"error": st.sampled_from(["", "E001"])})  # fmt: skip
    return signed_json("sms-status", b"/channels/sms/status", "sms", template,
                       [("id",), ("status",), ("error",), ("timestamp",)], 64 * 1024)  # fmt: skip


FORM_TYPES = [("json", b"application/json"), ("text/plain", b"text/plain"), ("no content-type", None),
              ("form unknown charset", b"application/x-www-form-urlencoded; charset=klingon"),
              ("form non-ASCII charset", b"application/x-www-form-urlencoded; charset=\xff"),
              ("multipart", b"multipart/form-data; boundary=xyz"), ("garbage content-type", b";;;")]  # fmt: skip


@st.composite
def twilio_cases(draw: st.DrawFn, status: bool = False) -> Case:
    sid = st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda s: "SM" + s)
    if status:
        template = st.tuples(
            sid, st.sampled_from(["delivered", "undelivered", "failed", "sent", "x"]), st.sampled_from(["", "30003"])
        ).map(
            lambda t: [("MessageSid", t[0]), ("MessageStatus", t[1]), ("ErrorCode", t[2]), ("AccountSid", TWILIO_SID)]
        )
        names = ["MessageSid", "MessageStatus", "ErrorCode", "AccountSid", "To"]
        endpoint, path = "twilio-status", b"/channels/sms/twilio/status"
    else:
        template = st.tuples(sid, st.sampled_from(PHONES), st.sampled_from(TEXTS)).map(
            lambda t: [
                ("MessageSid", t[0]),
                ("SmsSid", t[0]),
                ("AccountSid", TWILIO_SID),
                ("From", t[1]),
                ("To", "+8610658000"),
                ("Body", t[2]),
                ("NumMedia", "0"),
                ("NumSegments", "1"),
            ]
        )
        names = ["MessageSid", "SmsSid", "From", "To", "Body", "NumMedia"]
        endpoint, path = "twilio-webhook", b"/channels/sms/twilio"
    site = draw(st.sampled_from(SITES))
    form = b"application/x-www-form-urlencoded"
    if site == "body":
        label, body = draw(form_body(template, names, 64 * 1024))
    else:
        label, body = "", encode_query([(n, v, "pct") for n, v in draw(template)])
    ctype = draw(content_type(form, FORM_TYPES, always=True)) if site == "content-type" else ("", form)
    hdrs = draw(header_fuzz(rate=100)) if site == "header" else ("", [])
    meth = draw(method_for("POST", always=True)) if site == "method" else ("", "POST")
    case = _http(endpoint, "POST", path, label, body, ctype, hdrs, meth)
    case.sign, case.sign_mode = "twilio", draw(st.sampled_from(SIGN_MODES))
    case.label = join(case.label, "" if case.sign_mode == "good" else f"signature={case.sign_mode}")
    return case


def _tg_user() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"id": st.integers(10**8, 10**9), "is_bot": st.just(False),
                                  "first_name": st.sampled_from(["测试", "Ann"]),
                                  "language_code": st.sampled_from(["zh-hans", "en", "ru"])})  # fmt: skip


@st.composite
def telegram_update(draw: st.DrawFn) -> dict[str, Any]:
    user = draw(_tg_user())
    chat = {"id": user["id"], "type": draw(st.sampled_from(["private"] * 4 + ["group"])), "first_name": "测试"}
    date = draw(st.integers(1_600_000_000, 1_800_000_000))
    message: dict[str, Any] = {"message_id": draw(st.integers(1, 10**6)), "date": date,
                               "chat": chat, "from": user}  # fmt: skip
    kind = draw(st.sampled_from(["text"] * 4 + ["command", "photo", "callback", "edited", "sticker"]))
    update: dict[str, Any] = {"update_id": draw(st.integers(1, 2**31))}
    if kind == "text":
        message["text"] = draw(st.sampled_from(TEXTS))
    elif kind == "command":
        message["text"] = draw(st.sampled_from(["/start", "/help", "/human", "/bind", "/start@test_cs_bot x"]))
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(message["text"].split()[0])}]
    elif kind == "photo":
        message["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90}]
        if draw(st.booleans()):
            message["caption"] = draw(st.sampled_from(TEXTS))
    elif kind == "sticker":
        message["sticker"] = {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1,
                              "is_animated": False, "is_video": False}  # fmt: skip
    if kind == "callback":
        update["callback_query"] = {"id": str(draw(st.integers(1, 10**9))), "from": user, "chat_instance": "ci",
                                    "data": draw(st.sampled_from(["/query_balance", "h:deadbeef", "x"])),
                                    "message": {**message, "text": "buttons"}}  # fmt: skip
    elif kind == "edited":
        update["edited_message"] = {**message, "text": "edited", "edit_date": message["date"] + 1}
    else:
        update["message"] = message
    return update


TG_PATHS: list[Path] = [("update_id",), ("message",), ("message", "message_id"), ("message", "date"),
                        ("message", "chat"),
                        ("message", "chat", "id"), ("message", "chat", "type"), ("message", "from"),
                        ("message", "from", "id"), ("message", "from", "language_code"), ("message", "text"),
                        ("message", "entities"), ("message", "photo"), ("message", "caption"), ("callback_query",),
                        ("callback_query", "data"), ("callback_query", "from"), ("callback_query", "message"),
                        ("edited_message",)]  # fmt: skip


def telegram_cases() -> st.SearchStrategy[Case]:
    return signed_json("telegram", b"/channels/telegram/webhook", "telegram", telegram_update(), TG_PATHS, 256 * 1024)


WECHAT_QUERY: Query = [("signature", "$SIG", "pct"), ("timestamp", "$TS", "pct"), ("nonce", "$NONCE", "pct")]
QUERY_SIGN = ["good"] * 8 + ["none", "wrong"]


@st.composite
def _signed_get(draw: st.DrawFn, endpoint: str, path: bytes, scheme: str, ts: str) -> Case:
    template = [(n, ts if v == "$TS" else v, m) for n, v, m in WECHAT_QUERY] + [("echostr", "echo-123", "pct")]
    case = draw(get_cases(endpoint, [path], template, ["signature", "timestamp", "nonce", "echostr"]))
    case.sign, case.sign_mode = scheme, draw(st.sampled_from(QUERY_SIGN))
    case.label = join(case.label, "" if case.sign_mode == "good" else f"signature={case.sign_mode}")
    return case


def wechat_get_cases() -> st.SearchStrategy[Case]:
    return _signed_get("wechat-get", b"/channels/wechat", "wechat", "$TS")


def weibo_get_cases() -> st.SearchStrategy[Case]:
    return _signed_get("weibo-get", b"/channels/weibo", "weibo", "$TSMS")


XML_TYPES = [("application/json", b"application/json"), ("no content-type", None),
             ("unknown charset", b"text/xml; charset=klingon"), ("charset utf-16", b"text/xml; charset=utf-16"),
             ("form", b"application/x-www-form-urlencoded")]  # fmt: skip


def _envelope(encrypt: str) -> bytes:
    return (b"<xml><ToUserName><![CDATA[gh_3f8a2c9d1e7b]]></ToUserName><Encrypt><![CDATA[" + encrypt.encode()
            + b"]]></Encrypt></xml>")  # fmt: skip


@st.composite
def wechat_push_cases(draw: st.DrawFn, aes: bool) -> Case:
    endpoint = "wechat-aes" if aes else "wechat-plain"
    query = [*WECHAT_QUERY, ("openid", OPENIDS[0], "pct")]
    if aes:
        query += [("encrypt_type", "aes", "pct"), ("msg_signature", "$MSGSIG", "pct")]
        names = ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature"]
    else:
        names = ["signature", "timestamp", "nonce", "openid", "encrypt_type"]
    site = draw(st.sampled_from(["query"] * 3 + SITES))
    label, qlabel, encrypt = "", "", ""
    if site == "body":
        label, body, encrypt = draw(wechat_aes_body()) if aes else (*draw(wechat_xml()), "")
    else:
        inner = render_xml(draw(wechat_fields()))
        encrypt = wechat_encrypt(inner) if aes else ""
        body = _envelope(encrypt) if aes else inner
    if site == "query":
        qlabel, query = draw(query_fuzz(query, names))
    if aes and site == "body" and draw(st.integers(0, 19)) == 0:  # a plaintext push (encrypt_type dropped)
        label, body = draw(wechat_xml())
        query = [p for p in query if p[0] not in ("encrypt_type", "msg_signature")]
        label = join("plaintext push to an AES deployment", label)
    ctype = draw(content_type(b"text/xml", XML_TYPES, always=True)) if site == "content-type" else ("", b"text/xml")
    hdrs = draw(header_fuzz(rate=100)) if site == "header" else ("", [])
    meth = draw(method_for("POST", always=True)) if site == "method" else ("", "POST")
    case = _http(endpoint, "POST", b"/channels/wechat", label, body, ctype, hdrs, meth, query=query, encrypt=encrypt)
    case.sign, case.sign_mode = "wechat", draw(st.sampled_from(QUERY_SIGN))
    case.label = join(
        qlabel,
        case.label if case.label != "valid" else "",
        "" if case.sign_mode == "good" else f"signature={case.sign_mode}",
    )
    return case


def weibo_template() -> st.SearchStrategy[dict[str, Any]]:
    kind = st.sampled_from(["text"] * 4 + ["event", "image", "voice", "position", "mention", "weird"])
    data = st.fixed_dictionaries({}, optional={"subtype": st.sampled_from(["follow", "unfollow", "click", "x"]),
                                               "key": st.sampled_from(["BALANCE", "HUMAN", "x"])})  # fmt: skip
    return st.fixed_dictionaries({"type": kind, "receiver_id": st.just(int(WEIBO_UID)),
                                  "sender_id": st.integers(10**9, 10**10),
                                  "created_at": st.just("Mon Jan 01 00:00:00 +0800 2024"),
                                  "text": st.sampled_from(TEXTS), "data": data})  # fmt: skip


@st.composite
def weibo_push_cases(draw: st.DrawFn) -> Case:
    case = draw(json_endpoint("weibo-post", b"/channels/weibo", weibo_template(),
                              [("type",), ("receiver_id",), ("sender_id",), ("created_at",), ("text",), ("data",),
                               ("data", "subtype"), ("data", "key")], 64 * 1024))  # fmt: skip
    template = [(n, "$TSMS" if v == "$TS" else v, m) for n, v, m in WECHAT_QUERY]
    qlabel, case.query = "", template
    if case.label == "valid" and draw(st.booleans()):
        qlabel, case.query = draw(query_fuzz(template, ["signature", "timestamp", "nonce"]))
    case.sign, case.sign_mode = "weibo", draw(st.sampled_from(QUERY_SIGN))
    case.label = join(qlabel, case.label, "" if case.sign_mode == "good" else f"signature={case.sign_mode}")
    return case


def discourse_template() -> st.SearchStrategy[dict[str, Any]]:
    post = st.fixed_dictionaries({
        "id": st.integers(1, 10**9), "topic_id": st.integers(1, 10**6), "post_number": st.integers(1, 50),
        "username": st.sampled_from(["wang", "li", "support", "system"]),
        "raw": st.sampled_from(TEXTS).map(lambda t: t * 3),
        "cooked": st.just("<p>朝阳区是不是有网络故障？</p>"), "topic_slug": st.just("topic"),
        "topic_title": st.just("朝阳区网络问题咨询一下"), "created_at": st.just("$NOWISO"),
    })  # fmt: skip
    return st.fixed_dictionaries({"post": post})


DISCOURSE_PATHS: list[Path] = [("post",), ("post", "id"), ("post", "topic_id"), ("post", "post_number"),
                               ("post", "username"), ("post", "raw"), ("post", "cooked"), ("post", "topic_slug"),
                               ("post", "topic_title"), ("post", "created_at")]  # fmt: skip


@st.composite
def discourse_cases(draw: st.DrawFn) -> Case:
    case = draw(signed_json("discourse", b"/channels/forum/discourse", "discourse", discourse_template(),
                            DISCOURSE_PATHS, 512 * 1024))  # fmt: skip
    event = draw(
        st.sampled_from([b"post_created"] * 6 + [b"ping", b"topic_created", b"", b"\xed\xa0\x80", b"x" * 3000])
    )
    event_id = draw(st.one_of(st.integers(1, 2**40).map(lambda n: str(n).encode()),
                              st.sampled_from([b"", b"\xff\xed\xa0\x80", b"-1", b"9" * 5000, b"a b"])))  # fmt: skip
    case.headers = [(b"X-Discourse-Event", event), (b"X-Discourse-Event-Id", event_id),
                    (b"X-Discourse-Event-Type", b"post"), *case.headers]  # fmt: skip
    odd = [] if event == b"post_created" else [f"event={event[:12]!r}"]
    if not event_id.isdigit():
        odd.append(f"event id={event_id[:8]!r}")
    case.label = join(case.label, *odd)
    return case


# ---- WebSockets ----------------------------------------------------------------------------------------------
TEXT, BINARY = 0x1, 0x2


def _frame(label: str, value: Any, expect: str) -> Frame:
    payload = value if isinstance(value, bytes) else dumps(value)
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:  # not a valid text frame: the server may close with 1007 instead
        expect = "error-or-close"
    return Frame(TEXT, payload, expect, label)


def usable_text(value: Any) -> bool:
    """What the gateway accepts as a message's text: a non-blank string of at most 1,000 characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def chat_frame(draw: st.DrawFn, max_bytes: int = 16384) -> Frame:
    kind = draw(st.sampled_from(["valid"] * 3 + ["field"] * 6 + ["frame"] * 4))
    message = {"type": "message", "text": draw(st.sampled_from(TEXTS)),
               "client_id": draw(st.text("0123456789abcdef", min_size=8, max_size=16))}  # fmt: skip
    if kind == "valid":
        choice = draw(st.sampled_from(["message", "message", "typing", "lang"]))
        if choice == "message":
            return _frame("valid message", message, "any")
        if choice == "typing":
            return _frame("typing", {"type": "typing"}, "any")
        return _frame("lang", {"type": "lang", "lang": draw(st.sampled_from(["zh", "en"]))}, "any")
    if kind == "field":
        name = draw(st.sampled_from(["text", "text", "text", "client_id", "lang", "display", "type"]))
        op = draw(st.sampled_from(["replace"] * 5 + ["missing", "duplicate"]))
        label, value = draw(bad_values())
        if op == "missing":
            message.pop(name, None)
            label = "missing"
            doc: Any = message
        elif op == "duplicate":
            doc = Obj([*message.items(), (name, value)])
            label = f"duplicated as {label}"
        else:
            message[name] = value
            doc = message
        # a message without usable text, or of no known type, must be answered with an error frame; a strange
        # client_id/lang/display may be coerced or refused
        must = (name == "type" or (name == "text" and not usable_text(value)) or op == "missing") and op != "duplicate"
        must = must and not (op == "missing" and name not in ("text", "type"))
        return _frame(f"{name}={label}" if op != "missing" else f"{name} missing", doc, "error" if must else "any")
    op = draw(st.sampled_from(["not json", "array", "string", "number", "null", "no type", "unknown type", "deep",
                               "5000 digits", "NaN", "binary", "invalid utf-8", "oversize", "empty", "lang bad",
                               "binary json"]))  # fmt: skip
    if op == "not json":
        return _frame("frame=not JSON", draw(st.sampled_from([b"hello", b"{", b"{'a': 1}", b"\x00"])), "error")
    if op in ("array", "string", "number", "null"):
        return _frame(f"frame=JSON {op}", {"array": [message], "string": "message", "number": 7, "null": None}[op],
                      "error")  # fmt: skip
    if op == "no type":
        return _frame("frame=no type", {"text": "查话费"}, "error")
    if op == "unknown type":
        return _frame("frame=unknown type", {"type": draw(st.sampled_from(["hack", "", "\ud800", "MESSAGE"]))}, "error")
    if op == "deep":
        return _frame("frame=deep nesting 5000", _deep_list(5000).data, "error")
    if op == "5000 digits":
        return _frame("frame=5000-digit number", b'{"type":"message","text":"x","client_id":' + b"9" * 5000 + b"}",
                      "any")  # fmt: skip
    if op == "NaN":
        return _frame("frame=NaN token", b'{"type":"message","text":NaN}', "error")
    if op == "binary":
        return Frame(BINARY, draw(st.binary(min_size=0, max_size=64)), "error-or-close", "frame=binary")
    if op == "binary json":
        return Frame(BINARY, dumps(message), "error-or-close", "frame=binary JSON")
    if op == "invalid utf-8":
        return Frame(TEXT, b'{"type":"message","text":"\xff\xed\xa0\x80"}', "error-or-close", "frame=invalid UTF-8")
    if op == "oversize":
        return Frame(TEXT, b'{"type":"message","text":"' + b"x" * (max_bytes + 10) + b'"}', "error-or-close",
                     "frame=over the size limit")  # fmt: skip
    if op == "empty":
        return _frame("frame=empty", b"", "error")
    return _frame("frame=lang unknown", {"type": "lang", "lang": draw(st.sampled_from(["fr", "", None, ["zh"]]))},
                  "error")  # fmt: skip


@st.composite
def agent_frame(draw: st.DrawFn) -> Frame:
    kind = draw(st.sampled_from(["valid"] * 3 + ["field"] * 5 + ["frame"] * 4))
    if kind == "valid":
        return draw(st.sampled_from([_frame("heartbeat", {"type": "heartbeat"}, "any"),
                                     _frame("typing", {"type": "typing", "chat": "$CHAT"}, "any")]))  # fmt: skip
    if kind == "field":
        label, value = draw(bad_values())
        name = draw(st.sampled_from(["chat", "type"]))
        doc: dict[str, Any] = {"type": "typing", "chat": "$CHAT"}
        doc[name] = value
        must = name == "type" or not isinstance(value, str)
        return _frame(f"{name}={label}", doc, "error" if must else "any")
    op = draw(st.sampled_from(["not json", "array", "string", "number", "null", "unknown type", "deep", "NaN",
                               "5000 digits", "binary", "invalid utf-8", "oversize", "empty"]))  # fmt: skip
    if op == "not json":
        return _frame("frame=not JSON", b"{nope", "error")
    if op in ("array", "string", "number", "null"):
        return _frame(f"frame=JSON {op}", {"array": [1], "string": "typing", "number": 3, "null": None}[op], "error")
    if op == "unknown type":
        return _frame("frame=unknown type", {"type": "accept", "chat": "$CHAT"}, "error")
    if op == "deep":
        return _frame("frame=deep nesting 3000", _deep_list(3000).data, "error")
    if op == "NaN":
        return _frame("frame=NaN token", b'{"type":"typing","chat":NaN}', "error")
    if op == "5000 digits":
        return _frame("frame=5000-digit number", b'{"type":"heartbeat","n":' + b"9" * 5000 + b"}", "any")
    if op == "binary":
        return Frame(BINARY, b"\x00\x01binary", "error-or-close", "frame=binary")
    if op == "invalid utf-8":
        return Frame(TEXT, b'{"type":"typing","chat":"\xff"}', "error-or-close", "frame=invalid UTF-8")
    if op == "oversize":
        return Frame(TEXT, b'{"type":"typing","chat":"' + b"x" * 9000 + b'"}', "error-or-close",
                     "frame=over the size limit")  # fmt: skip
    return _frame("frame=empty", b"", "error")


def sized(frame: Frame, limit: int) -> Frame:
    """A frame over the socket's size limit may be refused with a close 1009 instead of an error frame."""
    if len(frame.payload) > limit:
        return Frame(frame.opcode, frame.payload, "oversize", frame.label)
    return frame


CHAT_FRAME_LIMIT, AGENT_FRAME_LIMIT = 16384, 8192


@st.composite
def ws_chat_frames(draw: st.DrawFn) -> Case:
    frames = [sized(f, CHAT_FRAME_LIMIT) for f in draw(st.lists(chat_frame(), min_size=1, max_size=3))]
    return Case("ws-chat", " + ".join(f.label for f in frames), ws=True, path=b"/ws/chat", frames=frames)


@st.composite
def ws_agent_frames(draw: st.DrawFn) -> Case:
    frames = [sized(f, AGENT_FRAME_LIMIT) for f in draw(st.lists(agent_frame(), min_size=1, max_size=3))]
    return Case("ws-agent", " + ".join(f.label for f in frames), ws=True, path=b"/ws/agent", frames=frames,
                auth="super")  # fmt: skip


@st.composite
def ws_chat_handshake(draw: st.DrawFn) -> Case:
    template = [("lang", draw(st.sampled_from(["zh", "en"])), "pct"), ("last_seq", "0", "pct")]
    if draw(st.booleans()):
        template.append(("token", "$JWT", "pct"))
    case = draw(get_cases("ws-chat-handshake", [b"/ws/chat"], template, ["lang", "last_seq", "token", "visitor_id"]))
    case.ws = True
    return case


@st.composite
def ws_agent_handshake(draw: st.DrawFn) -> Case:
    case = draw(get_cases("ws-agent-handshake", [b"/ws/agent"], [], ["x"], auth=AUTH_MODES))
    case.ws = True
    return case


# ---- a sweep of the request-level classes over one valid request --------------------------------------------------
PLAIN_TOKENS = {"valid", "accept", "messages", "notes", "transfer", "close", "canned", "reply", "done"}


def is_plain(case: Case) -> bool:
    """A case without damage (a valid request of the endpoint, signed, with a valid session when it needs one)."""
    tokens = {t for t in case.label.split(" | ") if not t.startswith("path ")}
    return not case.frames and case.auth in ("", "super") and tokens <= PLAIN_TOKENS


def request_variants(base: Case) -> list[Case]:
    """``base`` once with each header damage, each wrong Content-Type of its family and each odd method: the
    classes a handful of random cases would likely miss, every time."""
    from dataclasses import replace

    out = [replace(base, label=f"hdr={label}", headers=[*base.headers, *headers]) for label, headers in HEADER_FUZZ]
    if not base.ws and base.content_type is not None:
        family = (JSON_TYPES if b"json" in base.content_type else FORM_TYPES if b"form" in base.content_type
                  else XML_TYPES)  # fmt: skip
        out += [replace(base, label=f"ct={label}", content_type=ct) for label, ct in family if ct != base.content_type]
    out += [replace(base, label=f"method={m.decode('latin-1')!r}", method=m.decode("latin-1")) for m in METHODS]
    if not base.ws and base.method == "POST":
        out += [replace(base, label=f"body {label}", headers=[*base.headers, *headers], encoding=encoding)
                for label, headers, encoding in ENCODINGS]  # fmt: skip
        out.append(replace(base, label="body sent chunked", chunked=True))
    return out


ENCODINGS = [  # (label, headers, how finalize encodes the body on the wire)
    ("gzip-compressed", [(b"Content-Encoding", b"gzip")], "gzip"),
    ("deflate-compressed", [(b"Content-Encoding", b"deflate")], "deflate"),
    ("not deflate-compressed (Content-Encoding deflate)", [(b"Content-Encoding", b"deflate")], ""),
    ("gzip bomb (100 MB of zeros)", [(b"Content-Encoding", b"gzip")], "bomb"),
    ("gzip, truncated", [(b"Content-Encoding", b"gzip")], "gzip-truncated"),
]


# ---- the endpoints ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    name: str
    what: str  # "POST /webhooks/rest/webhook"
    cases: Any  # () -> SearchStrategy[Case]
    server: str = "main"  # "main" (every secret, WeChat in safe mode) | "plain" (WeChat in plaintext mode)


ENDPOINTS: list[Endpoint] = [
    Endpoint("rest", "POST /webhooks/rest/webhook", rest_cases),
    Endpoint("model-parse", "POST /model/parse", parse_cases),
    Endpoint("ws-chat-handshake", "GET /ws/chat (query, headers)", ws_chat_handshake),
    Endpoint("ws-chat", "/ws/chat frames", ws_chat_frames),
    Endpoint("pages", "GET / · /agent · /widget.js · /static (query, paths)", page_cases),
    Endpoint("healthz", "GET /healthz", healthz_cases),
    Endpoint("metrics", "GET /metrics", metrics_cases),
    Endpoint("agent-me", "GET /api/agent/me", me_cases),
    Endpoint("agent-status", "POST /api/agent/status", status_cases),
    Endpoint("agent-logout", "POST /api/agent/logout", logout_cases),
    Endpoint("queue", "GET /api/queue", queue_cases),
    Endpoint("chat-detail", "GET /api/chats/{id}", chat_get_cases),
    Endpoint("chat-actions", "POST /api/chats/{id}/accept·messages·notes·transfer·close", chat_action_cases),
    Endpoint("chat-canned", "GET /api/chats/{id}/canned", canned_cases),
    Endpoint("ws-agent-handshake", "GET /ws/agent (cookie, origin)", ws_agent_handshake),
    Endpoint("ws-agent", "/ws/agent frames", ws_agent_frames),
    Endpoint("callbacks", "GET /api/callbacks, POST /api/callbacks/{id}/reply·done", callback_cases),
    Endpoint("outboxes", "GET /api/outboxes", outboxes_cases),
    Endpoint("sms-broadcast", "POST /api/sms/broadcast", broadcast_cases),
    Endpoint("sms-webhook", "POST /channels/sms/webhook (HMAC)", sms_webhook_cases),
    Endpoint("sms-status", "POST /channels/sms/status (HMAC)", sms_status_cases),
    Endpoint("twilio-webhook", "POST /channels/sms/twilio", lambda: twilio_cases(False)),
    Endpoint("twilio-status", "POST /channels/sms/twilio/status", lambda: twilio_cases(True)),
    Endpoint("telegram", "POST /channels/telegram/webhook", telegram_cases),
    Endpoint("wechat-get", "GET /channels/wechat (URL check)", wechat_get_cases),
    Endpoint("wechat-plain", "POST /channels/wechat (plaintext mode)", lambda: wechat_push_cases(False), "plain"),
    Endpoint("wechat-aes", "POST /channels/wechat (safe mode, AES)", lambda: wechat_push_cases(True)),
    Endpoint("weibo-get", "GET /channels/weibo (URL check)", weibo_get_cases),
    Endpoint("weibo-post", "POST /channels/weibo", weibo_push_cases),
    Endpoint("discourse", "POST /channels/forum/discourse (HMAC)", discourse_cases),
    # last: its failures lock the guessed account and this address out of logging in
    Endpoint("agent-login", "POST /api/agent/login", login_cases),
]
BY_NAME = {e.name: e for e in ENDPOINTS}
