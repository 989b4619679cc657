"""``python -m nlu`` end to end, as a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nlu import NLU

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "test-nlu"
ENV = {**os.environ, "NLU_CACHE_DIR": str(CACHE)}
FIELDS = {
    "text", "intent", "confidence", "intent_ranking", "complaint_type", "complaint_type_confidence", "lang",
    "entities", "urgency",
}  # fmt: skip
HELDOUT_EN = ROOT / "tests" / "data" / "heldout_en.jsonl"


def nlu(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nlu", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, env=ENV,
        timeout=timeout,
    )  # fmt: skip


def lines(*rows: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def output_rows(out: subprocess.CompletedProcess[str]) -> list[dict]:
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


# ---- predict ----
def test_predict_answers_every_line_and_names_the_bad_ones():
    out = nlu("predict", stdin=lines({"text": "我的话费还剩多少"}, "not json", {"text": ""}))
    rows = output_rows(out)
    assert len(rows) == 3
    good, bad_json, empty = rows
    assert set(good) == FIELDS
    assert good["text"] == "我的话费还剩多少" and good["intent"] == "query_balance" and good["lang"] == "zh"
    assert 0 < good["confidence"] <= 1 and good["intent_ranking"][0]["name"] == "query_balance"
    assert good["complaint_type"] is None and good["complaint_type_confidence"] is None
    assert good["entities"] == [] and good["urgency"] == 0
    assert set(bad_json) == {"error", "line"} and bad_json["line"] == 2
    assert bad_json["error"].startswith("line 2:") and "not JSON" in bad_json["error"]
    assert set(empty) == {"error", "line"} and empty["line"] == 3
    assert empty["error"].startswith("line 3:") and "empty" in empty["error"]
    assert "Traceback" not in out.stderr


def test_predict_other_bad_lines_and_blank_lines():
    stdin = lines(["not", "an object"], {"txt": "x"}, "", {"text": 5}, {"text": "hi"})
    rows = output_rows(nlu("predict", stdin=stdin))
    assert [r.get("line") for r in rows] == [1, 2, 4, None]  # the blank line 3 is skipped, but counted
    assert 'expected a JSON object with "text"' in rows[0]["error"]
    assert 'expected a JSON object with "text"' in rows[1]["error"]
    assert "must be a string" in rows[2]["error"]
    assert rows[3]["intent"] == "greet"


def test_predict_now_resolves_relative_months():
    rows = output_rows(nlu("predict", "--now", "2026-11-28", stdin=lines({"text": "上个月的账单多少钱"})))
    assert rows[0]["intent"] == "query_bill"
    assert rows[0]["entities"] == [{"entity": "month", "value": "2026-10", "start": 0, "end": 3, "text": "上个月"}]
    rows = output_rows(nlu("predict", "--now", "2026-01-05", stdin=lines({"text": "上个月的账单多少钱"})))
    assert rows[0]["entities"][0]["value"] == "2025-12"


def test_predict_complaint_line():
    rows = output_rows(nlu("predict", stdin=lines({"text": "上个月乱扣了我五十块，我要投诉到工信部！！！"})))
    row = rows[0]
    assert row["intent"] == "complaint" and row["complaint_type"] == "business" and row["urgency"] == 3
    assert ("money", 50, "CNY") in [(e["entity"], e["value"], e.get("unit")) for e in row["entities"]]


def test_predict_bad_now_is_a_clear_error():
    out = nlu("predict", "--now", "2026-13-01", stdin=lines({"text": "hi"}))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--now" in out.stderr and "2026-13-01" in out.stderr and out.stdout == ""


# ---- train ----
@pytest.mark.slow
def test_train_out_prints_time_and_size_and_writes_the_files(tmp_path):
    folder = tmp_path / "model"
    out = nlu("train", "--out", str(folder))
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["complaint_type.json", "complaint_type.npz", "intent.json", "intent.npz"]
    match = re.search(
        r"trained on (\d+) examples in ([\d.]+) s; (\d+) features; (\d+) KiB in (.+)$", out.stdout.strip()
    )
    assert match, out.stdout
    examples, seconds, _, kib, where = match.groups()
    assert int(examples) > 1000 and float(seconds) > 0
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert abs(int(kib) - size / 1024) <= 1
    assert Path(where) == folder
    assert NLU.from_dir(folder).parse("hi").intent == "greet"  # the files are a working model


@pytest.mark.slow
def test_train_with_malformed_extra_data_is_a_clear_error(tmp_path):
    bad = tmp_path / "extra.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n   - hello\n', encoding="utf-8")
    out = nlu("train", "--data", str(bad), "--out", str(tmp_path / "m"))
    assert out.returncode == 2
    assert "extra.yml" in out.stderr and "line 6" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "m").exists()


# ---- --config ----
@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("fallbak:\n  threshold: 0.5\n", "fallbak"),
        ("fallback:\n  treshold: 0.5\n", "treshold"),
        ("backend:\n  timout: 2\n", "timout"),
    ],
)
def test_unknown_config_key_exits_2_naming_it(tmp_path, content, key):
    cfg = tmp_path / "override.yml"
    cfg.write_text(content, encoding="utf-8")
    out = nlu("--config", str(cfg), "predict", stdin=lines({"text": "hi"}))
    assert out.returncode == 2
    assert out.stderr.startswith("error:") and key in out.stderr and "override.yml" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_config_override_applies(tmp_path):
    cfg = tmp_path / "override.yml"
    cfg.write_text("max_length: 5\n", encoding="utf-8")
    rows = output_rows(nlu("--config", str(cfg), "predict", stdin=lines({"text": "hello there"}, {"text": "hi"})))
    assert "too long" in rows[0]["error"] and rows[1]["intent"] == "greet"


def test_unknown_nested_entities_key_exits_2(tmp_path):
    cfg = tmp_path / "override.yml"
    cfg.write_text("entities:\n  distrcts:\n    X: [y]\n", encoding="utf-8")
    out = nlu("--config", str(cfg), "predict", stdin=lines({"text": "hi"}))
    assert out.returncode == 2 and "distrcts" in out.stderr and "override.yml" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("content", ["fallback:\n  threshold: abc\n", "max_length: lots\n", "fallback: [1, 2]\n"])
def test_config_value_of_the_wrong_type_exits_2(tmp_path, content):
    cfg = tmp_path / "override.yml"
    cfg.write_text(content, encoding="utf-8")
    out = nlu("--config", str(cfg), "predict", stdin=lines({"text": "hi"}))
    assert out.returncode == 2 and "Traceback" not in out.stderr and "override.yml" in out.stderr


def test_missing_config_file_exits_2(tmp_path):
    out = nlu("--config", str(tmp_path / "nope.yml"), "predict", stdin="")
    assert out.returncode == 2 and "nope.yml" in out.stderr and "Traceback" not in out.stderr


# ---- evaluate ----
def test_evaluate_on_a_test_file_writes_a_markdown_report(tmp_path):
    if not HELDOUT_EN.exists():
        pytest.skip(f"{HELDOUT_EN} not present")
    report = tmp_path / "R.md"
    out = nlu("evaluate", "--data", str(HELDOUT_EN.relative_to(ROOT)), "--report", str(report), timeout=300)
    assert out.returncode == 0, out.stderr
    assert re.search(r"en: acc \d\.\d{3} macro-F1 \d\.\d{3} \(n=\d+\)", out.stdout), out.stdout
    assert f"report written to {report}" in out.stdout
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# NLU evaluation (test set tests/data/heldout_en.jsonl")
    assert "## Per intent" in text and "| intent | precision | recall | F1 | support |" in text
    gold = {json.loads(line)["intent"] for line in HELDOUT_EN.read_text(encoding="utf-8").splitlines() if line.strip()}
    rows = dict(re.findall(r"^\| (\w+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\d+) \|$", text, re.MULTILINE))
    assert set(rows) == gold
    assert sum(map(int, rows.values())) == sum(1 for line in HELDOUT_EN.read_text().splitlines() if line.strip())
    assert "Most confused" in text


def test_evaluate_with_a_broken_test_file_exits_2(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\nnot json\n', encoding="utf-8")
    out = nlu("evaluate", "--data", str(bad))
    assert out.returncode == 2 and "broken.jsonl:line 2" in out.stderr and "Traceback" not in out.stderr


def test_a_command_is_required():
    out = nlu()
    assert out.returncode == 2 and "usage" in out.stderr
