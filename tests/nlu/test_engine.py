"""The NLU facade: parse contract, fallback, artifacts, and the optional Rasa back end."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from nlu import FALLBACK_INTENT, INTENTS, NLU, NLUConfig, NLUInputError, ParseResult, Ranked

NOW = date(2026, 11, 28)
FIELDS = {
    "text", "intent", "confidence", "intent_ranking", "complaint_type", "complaint_type_confidence", "lang",
    "entities", "urgency",
}  # fmt: skip


def with_config(engine: NLU, **changes: Any) -> NLUConfig:
    """The engine's config with ``fallback``/``backend`` fields or top-level fields replaced."""
    config = engine.config
    fallback = {k: changes.pop(k) for k in ("threshold", "ambiguity_threshold") if k in changes}
    backend = {k: changes.pop(k) for k in ("kind", "url", "timeout") if k in changes}
    if fallback:
        config = dataclasses.replace(config, fallback=dataclasses.replace(config.fallback, **fallback))
    if backend:
        config = dataclasses.replace(config, backend=dataclasses.replace(config.backend, **backend))
    return dataclasses.replace(config, **changes)


# ---- the parse contract ----
def test_parse_returns_every_field(nlu_engine):
    result = nlu_engine.parse("上个月乱扣了我五十块，我要投诉到工信部！！！", now=NOW)
    assert isinstance(result, ParseResult)
    flat = result.to_flat()
    assert set(flat) == FIELDS
    assert flat["text"] == "上个月乱扣了我五十块，我要投诉到工信部！！！"
    assert flat["intent"] == "complaint"
    assert flat["complaint_type"] == "business"
    assert 0 < flat["complaint_type_confidence"] <= 1
    assert flat["lang"] == "zh"
    assert flat["urgency"] == 3
    assert [(e["entity"], e["value"]) for e in flat["entities"]] == [("month", "2026-10"), ("money", 50)]
    assert json.loads(result.to_json()) == flat


def test_ranking_is_sorted_probabilities_of_known_intents(nlu_engine):
    result = nlu_engine.parse("我的话费还剩多少")
    ranking = result.intent_ranking
    assert all(isinstance(r, Ranked) for r in ranking)
    assert 2 <= len(ranking) <= 10
    confidences = [r.confidence for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 <= c <= 1 for c in confidences) and sum(confidences) <= 1 + 1e-9
    assert {r.name for r in ranking} <= set(INTENTS)
    assert len({r.name for r in ranking}) == len(ranking)
    assert result.confidence == ranking[0].confidence and result.top_intent == ranking[0].name


def test_the_model_knows_every_intent(nlu_engine):
    assert set(nlu_engine.intents) == set(INTENTS)


@pytest.mark.parametrize("text", ["我的话费还剩多少", "帮我查一下余额", "餘額還有多少", "话费余额"])
def test_chinese_balance_question(nlu_engine, text):
    result = nlu_engine.parse(text)
    assert result.intent == "query_balance"
    assert result.lang == "zh"


@pytest.mark.parametrize("text", ["what's my balance", "how much balance do I have left", "check my balance please"])
def test_english_balance_question(nlu_engine, text):
    result = nlu_engine.parse(text)
    assert result.intent == "query_balance"
    assert result.lang == "en"


@pytest.mark.parametrize(
    ("text", "intent"),
    [("查一下流量", "query_data_usage"), ("转人工", "request_human"), ("你好", "greet"), ("hi", "greet")],
)
def test_other_clear_messages(nlu_engine, text, intent):
    assert nlu_engine.parse(text).intent == intent


@pytest.mark.parametrize(
    ("text", "lang"),
    [("我的data还剩多少", "zh"), ("my 流量 please", "zh"), ("餘額", "zh"), ("my data please", "en"), ("１２３", "en")],
)
def test_language(nlu_engine, text, lang):
    assert nlu_engine.parse(text).lang == lang


@pytest.mark.parametrize(
    ("text", "ctype"),
    [
        ("信号太差了，打电话老掉线，我要投诉", "network"),
        ("我要投诉你们乱扣费", "business"),
        ("客服态度太差了我要投诉", "service"),
    ],
)
def test_complaints_get_a_type(nlu_engine, text, ctype):
    result = nlu_engine.parse(text)
    assert result.intent == "complaint"
    assert result.complaint_type == ctype
    assert 0 < result.complaint_type_confidence <= 1


@pytest.mark.parametrize("text", ["查一下流量", "我的话费还剩多少", "hi", "what's my balance"])
def test_non_complaints_have_no_type(nlu_engine, text):
    result = nlu_engine.parse(text)
    assert result.intent != "complaint"
    assert result.complaint_type is None and result.complaint_type_confidence is None


def test_complaint_type_method(nlu_engine):
    ctype, conf = nlu_engine.complaint_type("信号太差了,老掉线")
    assert ctype == "network" and 0 < conf <= 1


def test_now_resolves_relative_months(nlu_engine):
    result = nlu_engine.parse("上个月的账单", now=NOW)
    (month,) = [e for e in result.entities if e.entity == "month"]
    assert month.value == "2026-10"
    assert result.text[month.start : month.end] == "上个月"
    earlier = nlu_engine.parse("上个月的账单", now=date(2026, 1, 10))
    assert [e.value for e in earlier.entities if e.entity == "month"] == ["2025-12"]


def test_entity_offsets_index_the_original_text(nlu_engine):
    text = "我的號碼是１３８ ００１３ ８０００"
    result = nlu_engine.parse(text)
    (phone,) = result.entities
    assert text[phone.start : phone.end] == "１３８ ００１３ ８０００" and phone.value == "13800138000"


def test_to_rasa_shape(nlu_engine):
    result = nlu_engine.parse("我的话费还剩多少")
    rasa = result.to_rasa()
    assert rasa["intent"] == {"name": "query_balance", "confidence": round(result.confidence, 4)}
    assert 0 < rasa["intent"]["confidence"] <= 1
    assert "confidence" not in rasa
    assert rasa["text"] == "我的话费还剩多少"
    assert all(set(r) == {"name", "confidence"} for r in rasa["intent_ranking"])
    assert {"entities", "complaint_type", "lang", "urgency"} <= set(rasa)


# ---- fallback ----
def test_fallback_below_the_threshold_keeps_the_ranking(nlu_engine, nlu_artifact):
    text = "I want to complain about the network"
    plain = nlu_engine.parse(text)
    assert plain.intent == "complaint" and plain.confidence < 0.99, "precondition: a complaint below 0.99"
    strict = NLU.from_dir(nlu_artifact, with_config(nlu_engine, threshold=0.99))
    result = strict.parse(text)
    assert result.intent == FALLBACK_INTENT
    assert result.top_intent == "complaint"
    assert result.intent_ranking == plain.intent_ranking  # the real intents, not nlu_fallback
    assert FALLBACK_INTENT not in {r.name for r in result.intent_ranking}
    assert result.confidence == plain.confidence
    assert result.complaint_type is None  # no type for a message we are not sure is a complaint
    assert result.to_rasa()["intent"]["name"] == FALLBACK_INTENT


def test_fallback_threshold_boundary(nlu_engine):
    text = "帮我查一下余额"
    conf = nlu_engine.parse(text).confidence
    above = NLU(nlu_engine._intents, nlu_engine._types, with_config(nlu_engine, threshold=conf + 1e-9))
    below = NLU(nlu_engine._intents, nlu_engine._types, with_config(nlu_engine, threshold=conf - 1e-9))
    assert above.parse(text).intent == FALLBACK_INTENT
    assert below.parse(text).intent == "query_balance"


def test_ambiguity_gap(nlu_engine, nlu_artifact):
    text = "帮我查一下余额"
    plain = nlu_engine.parse(text)
    gap = plain.intent_ranking[0].confidence - plain.intent_ranking[1].confidence
    wide = NLU.from_dir(nlu_artifact, with_config(nlu_engine, threshold=0.0, ambiguity_threshold=gap + 1e-9))
    narrow = NLU.from_dir(nlu_artifact, with_config(nlu_engine, threshold=0.0, ambiguity_threshold=gap - 1e-9))
    result = wide.parse(text)
    assert result.intent == FALLBACK_INTENT
    assert result.top_intent == "query_balance" and result.intent_ranking == plain.intent_ranking
    assert narrow.parse(text).intent == "query_balance"
    always = NLU.from_dir(nlu_artifact, with_config(nlu_engine, threshold=0.0, ambiguity_threshold=1.0))
    assert always.parse("我的话费还剩多少").intent == FALLBACK_INTENT


def test_no_fallback_when_both_thresholds_are_zero(nlu_engine):
    lax = NLU(nlu_engine._intents, nlu_engine._types, with_config(nlu_engine, threshold=0.0, ambiguity_threshold=0.0))
    assert lax.parse("xq zzv kpl").intent != FALLBACK_INTENT


@pytest.mark.parametrize("text", ["asdkjh qwe", "xq zzv kpl", "qwrtpsdf zxcv", "😡😡😡"])
def test_gibberish_is_not_a_confident_telecom_intent(nlu_engine, text):
    result = nlu_engine.parse(text)
    assert result.intent in {FALLBACK_INTENT, "out_of_scope"}, result.intent_ranking[:3]
    in_scope = [r for r in result.intent_ranking if r.name != "out_of_scope"]
    assert in_scope[0].confidence < 0.5


# ---- input errors ----
def test_too_long_input_is_an_error(nlu_engine):
    with pytest.raises(NLUInputError, match="too long"):
        nlu_engine.parse("话" * 1001)
    assert nlu_engine.parse("话" * 1000).text == "话" * 1000


def test_max_length_comes_from_the_config(nlu_engine):
    short = NLU(nlu_engine._intents, nlu_engine._types, with_config(nlu_engine, max_length=10))
    with pytest.raises(NLUInputError, match="limit 10"):
        short.parse("a" * 11)
    assert short.parse("hi").intent == "greet"


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_empty_or_non_string_input_is_an_error(nlu_engine, bad):
    with pytest.raises(NLUInputError):
        nlu_engine.parse(bad)


# ---- the trained artifact ----
def test_artifact_is_plain_arrays_and_json(nlu_artifact):
    names = sorted(p.name for p in nlu_artifact.iterdir())
    assert names == ["complaint_type.json", "complaint_type.npz", "intent.json", "intent.npz"]
    for stem in ("intent", "complaint_type"):
        payload = json.loads((nlu_artifact / f"{stem}.json").read_text(encoding="utf-8"))
        with np.load(nlu_artifact / f"{stem}.npz", allow_pickle=False) as arrays:
            assert set(arrays.files) == {"idf", "coef", "intercept"}
            assert all(arrays[k].dtype.kind == "f" for k in arrays.files)
            assert arrays["coef"].shape == (len(payload["terms"]), len(payload["classes"]))
            assert arrays["idf"].shape == (len(payload["terms"]),)
    assert sorted(json.loads((nlu_artifact / "complaint_type.json").read_text())["classes"]) == sorted(
        ["service", "business", "network", "other"]
    )


def test_artifact_loads_into_the_same_model(nlu_engine, nlu_artifact):
    again = NLU.from_dir(nlu_artifact, nlu_engine.config)
    for text in ["我的话费还剩多少", "信号太差了我要投诉", "hello"]:
        a, b = nlu_engine.parse(text), again.parse(text)
        assert (a.intent, a.complaint_type) == (b.intent, b.complaint_type)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-6)


SMALL = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - 你好
    - 您好
- intent: query_balance
  examples: |
    - what's my balance
    - balance please
    - 话费余额
    - 还剩多少话费
- intent: complaint/network
  examples: |
    - 信号太差
    - no signal
- intent: complaint/service
  examples: |
    - 客服态度差
    - rude staff
- intent: complaint/business
  examples: |
    - 乱扣费
    - wrong charge
- intent: complaint/other
  examples: |
    - 营业厅太远
    - store too far
"""


def test_load_trains_once_into_a_cache_of_npz_and_json(tmp_path):
    data = tmp_path / "small.yml"
    data.write_text(SMALL, encoding="utf-8")
    cache = tmp_path / "cache"
    first = NLU.load(data=[data], cache_dir=cache)
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".npz", ".json"} and len(files) == 4
    for npz in (p for p in files if p.suffix == ".npz"):
        with np.load(npz, allow_pickle=False) as arrays:
            assert arrays["coef"].ndim == 2
    stamps = {p: p.stat().st_mtime_ns for p in files}
    second = NLU.load(data=[data], cache_dir=cache)  # cached: not trained again
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    assert set(first.intents) == set(second.intents) == {"greet", "query_balance", "complaint"}
    data.write_text(SMALL + "- intent: thanks\n  examples: |\n    - thanks\n    - 谢谢\n", encoding="utf-8")
    NLU.load(data=[data], cache_dir=cache)  # other data: another folder
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


# ---- the Rasa back end ----
class FakeRasa:
    """A tiny ``POST /model/parse`` server answering like Rasa 3."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body: bytes | None = None
        self.release: threading.Event | None = None  # when set, answers wait for it
        self.ranking = [("roaming", 0.97), ("greet", 0.02), ("query_balance", 0.01)]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body})
                if fake.release is not None:
                    fake.release.wait(10)
                top_name, top_conf = fake.ranking[0]
                data = fake.body or json.dumps({
                    "text": body["text"],
                    "intent": {"name": top_name, "confidence": top_conf},
                    "entities": [],
                    "text_tokens": [[0, len(body["text"])]],
                    "intent_ranking": [{"name": n, "confidence": c} for n, c in fake.ranking],
                }).encode()  # fmt: skip
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.release is not None:
            self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    yield fake
    fake.close()


def remote_engine(engine: NLU, url: str, timeout: float = 2.0) -> NLU:
    return NLU(engine._intents, engine._types, with_config(engine, kind="rasa", url=url, timeout=timeout))


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_rasa_backend_gives_the_intent_local_layers_the_rest(nlu_engine, fake_rasa):
    remote = remote_engine(nlu_engine, fake_rasa.url + "/")
    assert remote.is_remote and not nlu_engine.is_remote
    text = "138 0013 8000 这个号码上个月又扣错了！！！"
    result = remote.parse(text, now=NOW)
    assert fake_rasa.requests == [{"path": "/model/parse", "body": {"text": text}}]
    assert result.intent == "roaming"
    assert result.confidence == pytest.approx(0.97)
    assert [(r.name, r.confidence) for r in result.intent_ranking] == fake_rasa.ranking
    assert [(e.entity, e.value) for e in result.entities] == [("phone", "13800138000"), ("month", "2026-10")]
    assert result.urgency == nlu_engine.parse(text).urgency >= 2
    assert result.lang == "zh"
    assert result.complaint_type is None


def test_rasa_complaint_gets_the_local_complaint_type(nlu_engine, fake_rasa):
    fake_rasa.ranking = [("complaint", 0.9), ("network_status", 0.1)]
    result = remote_engine(nlu_engine, fake_rasa.url).parse("信号太差了，打电话老掉线")
    assert result.intent == "complaint" and result.complaint_type == "network"


def test_rasa_intents_unknown_here_are_dropped(nlu_engine, fake_rasa):
    fake_rasa.ranking = [("chitchat", 0.6), ("roaming", 0.35), ("greet", 0.05)]
    result = remote_engine(nlu_engine, fake_rasa.url).parse("hello")
    assert [r.name for r in result.intent_ranking] == ["roaming", "greet"]
    assert result.intent == "roaming"


def test_rasa_low_confidence_still_falls_back(nlu_engine, fake_rasa):
    fake_rasa.ranking = [("roaming", 0.2), ("greet", 0.1)]
    result = remote_engine(nlu_engine, fake_rasa.url).parse("hello")
    assert result.intent == FALLBACK_INTENT and result.top_intent == "roaming"


def test_rasa_down_means_the_embedded_model_answers(nlu_engine):
    remote = remote_engine(nlu_engine, closed_port_url())
    text = "我的话费还剩多少"
    result, local = remote.parse(text), nlu_engine.parse(text)
    assert result.intent == "query_balance"
    assert result.intent_ranking == local.intent_ranking


def test_rasa_shut_down_mid_session(nlu_engine, fake_rasa):
    remote = remote_engine(nlu_engine, fake_rasa.url)
    assert remote.parse("我的话费还剩多少").intent == "roaming"
    fake_rasa.close()
    assert remote.parse("我的话费还剩多少").intent == "query_balance"


@pytest.mark.parametrize(("status", "body"), [(500, b'{"error": "boom"}'), (200, b"<html>not json"), (200, b"{}")])
def test_rasa_errors_mean_the_embedded_model_answers(nlu_engine, fake_rasa, status, body):
    fake_rasa.status, fake_rasa.body = status, body
    result = remote_engine(nlu_engine, fake_rasa.url).parse("我的话费还剩多少")
    assert len(fake_rasa.requests) == 1
    assert result.intent == "query_balance"


def test_rasa_timeout_means_the_embedded_model_answers(nlu_engine, fake_rasa):
    fake_rasa.release = threading.Event()  # the server holds every answer until the test ends
    result = remote_engine(nlu_engine, fake_rasa.url, timeout=0.2).parse("我的话费还剩多少")
    assert len(fake_rasa.requests) == 1
    assert result.intent == "query_balance"


def test_rasa_config_needs_a_url():
    from nlu import ConfigError

    with pytest.raises(ConfigError, match=r"backend\.url is required"):
        NLUConfig.from_dict({"backend": {"kind": "rasa"}}, "x.yml")
    with pytest.raises(ConfigError, match=r"backend\.kind must be"):
        NLUConfig.from_dict({"backend": {"kind": "spacy"}}, "x.yml")
