"""``python -m nlu`` end to end, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "NLU_CACHE_DIR": str(ROOT / "var" / "test-nlu")}


def nlu(*args, stdin=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "nlu", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)  # fmt: skip


def test_predict_reads_json_lines_and_reports_bad_lines():
    lines = "\n".join([json.dumps({"text": "上个月的账单多少钱"}, ensure_ascii=False), "not json", '{"text": ""}',
                       '{"txt": "x"}']) + "\n"  # fmt: skip
    out = nlu("predict", "--now", "2026-11-28", stdin=lines)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 4
    good = rows[0]
    assert set(good) == {"text", "intent", "confidence", "intent_ranking", "complaint_type",
                         "complaint_type_confidence", "lang", "entities", "urgency"}  # fmt: skip
    assert good["intent"] == "query_bill"
    assert {"entity": "month", "value": "2026-10"}.items() <= good["entities"][0].items()
    assert "line 2" in rows[1]["error"] and "not JSON" in rows[1]["error"]
    assert "line 3" in rows[2]["error"] and "empty" in rows[2]["error"]
    assert "line 4" in rows[3]["error"]


def test_train_prints_time_and_size(tmp_path):
    out = nlu("train", "--out", str(tmp_path / "model"))
    assert out.returncode == 0, out.stderr
    assert "trained on" in out.stdout and " s;" in out.stdout and "KiB" in out.stdout
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "complaint_type.json", "complaint_type.npz", "intent.json", "intent.npz"]  # fmt: skip


def test_train_with_malformed_extra_data_is_a_clear_error(tmp_path):
    bad = tmp_path / "extra.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  - x: [\n')
    out = nlu("train", "--data", str(bad), "--out", str(tmp_path / "m"))
    assert out.returncode == 2
    assert "extra.yml" in out.stderr and "line" in out.stderr and "Traceback" not in out.stderr


def test_unknown_config_key_exits_2_naming_it(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("fallback:\n  treshold: 0.5\n")
    out = nlu("--config", str(cfg), "predict", stdin='{"text": "hi"}\n')
    assert out.returncode == 2 and "treshold" in out.stderr


@pytest.mark.slow
def test_evaluate_writes_a_report(tmp_path):
    heldout = ROOT / "tests" / "data" / "heldout_zh.jsonl"
    report = tmp_path / "r.md"
    args = ["evaluate", "--report", str(report)] + (["--data", str(heldout)] if heldout.exists() else ["--folds", "2"])
    out = nlu(*args, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "acc" in out.stdout
    text = report.read_text()
    assert "| intent | precision | recall | F1 | support |" in text and "Most confused" in text
