"""Normalisation, entities, urgency, the Rasa loader and the parse contract."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from nlu import NLU, DataError, NLUConfig, NLUInputError, mask_id_card, mask_phone, mask_text
from nlu.data import load, load_rasa_yaml
from nlu.entities import EntityExtractor
from nlu.normalize import normalise, validate
from nlu.urgency import urgency

NOW = date(2026, 11, 28)


@pytest.fixture(scope="module")
def extractor():
    return EntityExtractor(NLUConfig.load().gazetteer)


def ents(extractor, text):
    return [(e.entity, e.value, text[e.start : e.end]) for e in extractor.extract(normalise(text).aligned, NOW)]


# ---- normalisation -------------------------------------------------------------------------------
def test_full_width_traditional_and_case_are_folded():
    n = normalise("餘額ＡＢＣ１２３！！！寬帶")
    assert n.aligned == "余额ABC123!!!宽带"
    assert len(n.aligned) == len(n.original)  # offsets stay valid
    assert n.model == "余额abc123!宽带"


def test_emoji_and_repeated_punctuation_are_tolerated():
    assert normalise("流量？？？😡😡 还剩多少").model == "流量? 还剩多少"


@pytest.mark.parametrize(
    ("text", "needle"), [("", "empty"), ("   \n", "empty"), (None, "string"), ("字" * 1001, "too long")]
)
def test_bad_input_is_a_clear_error(text, needle):
    with pytest.raises(NLUInputError, match=needle):
        validate(text, 1000)


# ---- entities ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的号码138 0013 8000", ("phone", "13800138000", "138 0013 8000")),
        ("+86 13800138000", ("phone", "13800138000", "+86 13800138000")),
        ("号码是+8613912345678", ("phone", "13912345678", "+8613912345678")),
        ("138-0013-8000", ("phone", "13800138000", "138-0013-8000")),
        ("１３８００１３８０００", ("phone", "13800138000", "１３８００１３８０００")),
        ("身份证11010119900307851X", ("id_card", "11010119900307851X", "11010119900307851X")),
        ("充50元", ("money", 50, "50元")),
        ("扣了我五十块", ("money", 50, "五十块")),
        ("两百块钱", ("money", 200, "两百块钱")),
        ("¥30", ("money", 30, "¥30")),
        ("上上个月的账单", ("month", "2026-09", "上上个月")),
        ("上个月", ("month", "2026-10", "上个月")),
        ("这个月", ("month", "2026-11", "这个月")),
        ("10月账单", ("month", "2026-10", "10月")),
        ("12月账单", ("month", "2025-12", "12月")),
        ("2024年3月", ("month", "2024-03", "2024年3月")),
        ("十月份的", ("month", "2026-10", "十月份")),
        ("bill for last month", ("month", "2026-10", "last month")),
        ("October bill", ("month", "2026-10", "October")),
        ("10月5号", ("date", "2026-10-05", "10月5号")),
        ("2025-06", ("month", "2025-06", "2025-06")),
        ("流量用了2G", ("data_volume", 2048, "2G")),
        ("500兆", ("data_volume", 500, "500兆")),
        ("1.5GB", ("data_volume", 1536, "1.5GB")),
        ("两个G", ("data_volume", 2048, "两个G")),
        ("朝阳区断网了吗", ("district", "朝阳区", "朝阳区")),
        ("outage in Pudong", ("district", "浦东新区", "Pudong")),
        ("换成畅享59", ("plan", "enjoy_59", "畅享59")),
    ],
)
def test_entities(extractor, text, expected):
    assert expected in ents(extractor, text)


def test_dollars_are_usd(extractor):
    found = extractor.extract("$20", NOW)
    assert found[0].value == 20 and found[0].unit == "USD"


@pytest.mark.parametrize("text", ["138001380001", "5G网络好慢", "4G信号差", "我们一块去营业厅"])
def test_not_entities(extractor, text):
    kinds = {k for k, _, _ in ents(extractor, text)}
    assert not kinds & {"phone", "data_volume", "money"}


def test_masking():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_id_card("11010119900307851X") == "110***********851X"
    text = "我的号码13800138000，身份证11010119900307851X"
    extractor = EntityExtractor(NLUConfig.load().gazetteer)
    masked = mask_text(text, extractor.extract(text, NOW))
    assert "13800138000" not in masked and "11010119900307851X" not in masked and "138****8000" in masked


# ---- urgency -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("我想查一下流量", 0, 0),
        ("what's my balance", 0, 0),
        ("信号太差了!!!", 1, 2),
        ("又断网了，这是第三次了", 1, 2),
        ("你们这帮骗子", 2, 3),
        ("再不解决我就投诉到工信部", 2, 3),
        ("I will take this to the media", 2, 3),
        ("垃圾运营商，第三次断网了，我要去315曝光！！！", 3, 3),
        ("THIS IS THE WORST SERVICE EVER", 1, 2),
    ],
)
def test_urgency(text, low, high):
    assert low <= urgency(normalise(text).aligned) <= high


def test_urgency_reads_traditional_characters():
    assert urgency(normalise("我要投訴到工信部").aligned) >= 2


# ---- the Rasa-format loader ----------------------------------------------------------------------
def test_rasa_yaml_with_retrieval_intents_and_annotations(tmp_path):
    path = tmp_path / "d.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: complaint/network\n  examples: |\n    - 信号太差\n'
        "- intent: query_balance\n  examples: |\n    - 查一下[138 0013 8000](phone)的余额\n"
        "- synonym: 话费\n  examples: |\n    - 花费\n",
        encoding="utf-8",
    )
    examples = load_rasa_yaml(path)
    assert [(e.intent, e.complaint_type, e.text) for e in examples] == [
        ("complaint", "network", "信号太差"),
        ("query_balance", None, "查一下138 0013 8000的余额"),
    ]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n   - bad: [\n', "line"),
        ('version: "3.1"\nnlu:\n- intent: say_hello\n  examples: |\n    - hi\n', "unknown intent 'say_hello'"),
        ('version: "3.1"\nnlu:\n- intent: complaint\n  examples: |\n    - bad\n', "complaint/"),
        ('version: "3.1"\nstories: []\n', "not a Rasa NLU file"),
    ],
)
def test_malformed_data_names_file_and_problem(tmp_path, content, needle):
    path = tmp_path / "broken.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load([path])
    assert "broken.yml" in str(info.value) and needle in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  - oops: [unclosed\n')
    with pytest.raises(DataError, match=r"bad\.yml:line \d+"):
        load([path])


def test_jsonl_and_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jsonl").write_text(
        json.dumps({"text": "网速太慢了", "intent": "complaint", "complaint_type": "network"}, ensure_ascii=False)
        + "\n"
    )
    assert load([tmp_path])[0].complaint_type == "network"
    (tmp_path / "sub" / "b.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match=r"b\.jsonl:line 1"):
        load([tmp_path])


def test_bundled_data_meets_the_minimums():
    examples = load()
    from collections import Counter

    per = Counter((e.intent, e.lang) for e in examples)
    from nlu import INTENTS

    for intent in INTENTS:
        for lang in ("zh", "en"):
            assert per[(intent, lang)] >= 30, (intent, lang, per[(intent, lang)])
    types = Counter(e.complaint_type for e in examples if e.lang == "zh" and e.complaint_type)
    assert min(types.values()) >= 60 and len(types) == 4


# ---- parse ---------------------------------------------------------------------------------------
def test_parse_contract(nlu_engine):
    result = nlu_engine.parse("上个月乱扣了我五十块，我要投诉到工信部！！！", now=NOW)
    flat = result.to_flat()
    assert set(flat) == {"text", "intent", "confidence", "intent_ranking", "complaint_type",
                         "complaint_type_confidence", "lang", "entities", "urgency"}  # fmt: skip
    assert flat["intent"] == "complaint" and flat["complaint_type"] == "business"
    assert flat["lang"] == "zh" and flat["urgency"] == 3
    assert ("money", 50) in [(e["entity"], e["value"]) for e in flat["entities"]]
    rasa = result.to_rasa()
    assert rasa["intent"]["name"] == "complaint" and 0 < rasa["intent"]["confidence"] <= 1


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我的话费还剩多少", "query_balance"),
        ("餘額還有多少", "query_balance"),
        ("how much data do I have left", "query_data_usage"),
        ("转人工", "request_human"),
        ("营业厅几点关门", "store_hours"),
    ],
)
def test_clear_messages(nlu_engine, text, intent):
    assert nlu_engine.parse(text).intent == intent


def test_complaint_type_only_for_complaints(nlu_engine):
    assert nlu_engine.parse("查一下流量").complaint_type is None
    assert nlu_engine.parse("信号太差了，打电话老掉线，我要投诉").complaint_type == "network"


def test_mixed_text_with_chinese_is_zh(nlu_engine):
    assert nlu_engine.parse("我的data还剩多少").lang == "zh"
    assert nlu_engine.parse("my data please").lang == "en"


def with_fallback(engine, **changes):
    config = dataclasses.replace(engine.config, fallback=dataclasses.replace(engine.config.fallback, **changes))
    return NLU(engine._intents, engine._types, config)


def test_fallback_keeps_the_ranking(nlu_engine):
    result = with_fallback(nlu_engine, threshold=0.999).parse("我的话费还剩多少")
    assert result.intent == "nlu_fallback"
    assert result.top_intent == "query_balance" and len(result.intent_ranking) > 1
    gap = with_fallback(nlu_engine, threshold=0.0, ambiguity_threshold=1.0)
    assert gap.parse("我的话费还剩多少").intent == "nlu_fallback"
    assert with_fallback(nlu_engine, threshold=0.0, ambiguity_threshold=0.0).parse("我的话费还剩多少").intent == (
        "query_balance"
    )


def test_gibberish_is_not_confident(nlu_engine):
    assert nlu_engine.parse("xq zzv kpl").confidence < 0.5


def test_too_long_input_is_an_error(nlu_engine):
    with pytest.raises(NLUInputError, match="too long"):
        nlu_engine.parse("a" * 1001)


def test_artifact_is_plain_arrays_and_json(tmp_path):
    NLU.load(cache_dir=tmp_path)
    files = list(tmp_path.rglob("*.*"))
    assert {f.suffix for f in files} == {".npz", ".json"}
    for npz in tmp_path.rglob("*.npz"):
        with np.load(npz, allow_pickle=False) as arrays:
            assert arrays["coef"].ndim == 2


# ---- remote back end -----------------------------------------------------------------------------
class FakeRasa(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        payload = {"text": body["text"], "intent": {"name": "roaming", "confidence": 0.97},
                   "intent_ranking": [{"name": "roaming", "confidence": 0.97}, {"name": "greet", "confidence": 0.03}],
                   "entities": []}  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_rasa_backend_and_its_fallback(nlu_engine):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRasa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    config = dataclasses.replace(nlu_engine.config, backend=dataclasses.replace(nlu_engine.config.backend,
                                                                                kind="rasa", url=url))  # fmt: skip
    remote = NLU(nlu_engine._intents, nlu_engine._types, config)
    result = remote.parse("138 0013 8000 这个号码查一下话费！！！")
    assert result.intent == "roaming" and result.confidence == pytest.approx(0.97)
    assert ("phone", "13800138000") in [(e.entity, e.value) for e in result.entities]  # local layers still apply
    server.shutdown()
    server.server_close()
    assert remote.parse("我的话费还剩多少").intent == "query_balance"  # server gone: the embedded model answers


def test_config_unknown_key_is_named(tmp_path):
    from nlu import ConfigError

    bad = tmp_path / "c.yml"
    bad.write_text("fallbak:\n  threshold: 0.5\n")
    with pytest.raises(ConfigError, match="fallbak"):
        NLUConfig.load(bad)
