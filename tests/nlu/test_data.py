"""The Rasa 3 YAML and JSONL loaders, and the bundled training data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nlu import COMPLAINT_TYPES, INTENTS, DataError
from nlu.data import DATA_DIR, data_files, load, load_jsonl, load_rasa_yaml

HEAD = 'version: "3.1"\nnlu:\n'


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def rows(examples):
    return [(e.text, e.intent, e.complaint_type, e.lang) for e in examples]


# ---- Rasa YAML ----
def test_valid_rasa_file(tmp_path):
    path = write(
        tmp_path,
        "nlu.yml",
        HEAD + "- intent: greet\n  examples: |\n    - hi\n    - 你好\n\n"
        "- intent: complaint/network\n  examples: |\n    - 信号太差\n    - no signal at all\n",
    )
    assert rows(load_rasa_yaml(path)) == [
        ("hi", "greet", None, "en"),
        ("你好", "greet", None, "zh"),
        ("信号太差", "complaint", "network", "zh"),
        ("no signal at all", "complaint", "network", "en"),
    ]
    assert {e.source for e in load_rasa_yaml(path)} == {str(path)}


@pytest.mark.parametrize("ctype", COMPLAINT_TYPES)
def test_every_complaint_type_is_a_retrieval_intent(tmp_path, ctype):
    path = write(tmp_path, "c.yml", HEAD + f"- intent: complaint/{ctype}\n  examples: |\n    - x\n")
    assert rows(load_rasa_yaml(path)) == [("x", "complaint", ctype, "en")]


def test_entity_annotations_are_reduced_to_their_text(tmp_path):
    path = write(
        tmp_path,
        "a.yml",
        HEAD + "- intent: query_balance\n  examples: |\n"
        "    - 查一下[138 0013 8000](phone)的余额\n"
        '    - balance for [last month]{"entity": "month", "value": "2026-10"}\n'
        "    - [50元](money)[两次](count)\n",
    )
    assert [e.text for e in load_rasa_yaml(path)] == ["查一下138 0013 8000的余额", "balance for last month", "50元两次"]


def test_synonym_regex_and_lookup_blocks_are_ignored(tmp_path):
    path = write(
        tmp_path,
        "s.yml",
        HEAD + "- intent: thanks\n  examples: |\n    - thanks\n"
        "- synonym: 话费\n  examples: |\n    - 花费\n"
        "- regex: phone\n  examples: |\n    - \\d{11}\n"
        "- lookup: city\n  examples: |\n    - 北京\n",
    )
    assert rows(load_rasa_yaml(path)) == [("thanks", "thanks", None, "en")]


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (HEAD + "- intent: greet\n  examples: |\n    - hi\n   - hello\n", 6),  # bad indentation
        (HEAD + "- intent: greet\n   examples: |\n    - hi\n", 4),
        (HEAD + "- intent: greet\n\texamples: |\n    - hi\n", 4),  # a tab
    ],
)
def test_malformed_yaml_names_the_file_and_line(tmp_path, content, line):
    path = write(tmp_path, "broken_file.yml", content)
    with pytest.raises(DataError) as info:
        load([path])
    message = str(info.value)
    assert "broken_file.yml" in message and f"line {line}" in message
    assert "malformed YAML" in message


def test_unknown_intent_is_named(tmp_path):
    path = write(tmp_path, "u.yml", HEAD + "- intent: say_hello\n  examples: |\n    - hi\n")
    with pytest.raises(DataError, match="unknown intent 'say_hello'") as info:
        load([path])
    assert "u.yml" in str(info.value)


@pytest.mark.parametrize("name", ["complaint", "complaint/", "complaint/billing", "complaint/Network"])
def test_complaint_needs_a_known_type(tmp_path, name):
    path = write(tmp_path, "c.yml", HEAD + f"- intent: {name}\n  examples: |\n    - 我要投诉\n")
    with pytest.raises(DataError, match="complaint examples need a type") as info:
        load([path])
    assert "c.yml" in str(info.value)


def test_only_complaint_has_sub_intents(tmp_path):
    path = write(tmp_path, "s.yml", HEAD + "- intent: greet/casual\n  examples: |\n    - hi\n")
    with pytest.raises(DataError, match="only complaint has sub-intents"):
        load([path])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "not a Rasa NLU file"),
        ('version: "3.1"\nstories: []\n', "not a Rasa NLU file"),
        (HEAD.replace("nlu:\n", "nlu: {}\n"), "'nlu' must be a list"),
        (HEAD + "- just a string\n", "expected a mapping"),
        (HEAD + "- examples: |\n    - hi\n", "missing 'intent'"),
        (HEAD + "- intent: greet\n", "'examples' must be a block"),
        (HEAD + "- intent: greet\n  examples:\n  - hi\n", "'examples' must be a block"),
        (HEAD + "- intent: greet\n  examples: |\n    - hi\n    hello\n", "does not start with '- '"),
    ],
)
def test_structural_problems_are_data_errors_naming_the_file(tmp_path, content, needle):
    path = write(tmp_path, "shape.yml", content)
    with pytest.raises(DataError) as info:
        load([path])
    assert "shape.yml" in str(info.value) and needle in str(info.value)


# ---- JSON lines ----
def test_jsonl_loader(tmp_path):
    lines = [
        {"text": "hi", "intent": "greet"},
        {"text": "网速太慢了", "intent": "complaint", "complaint_type": "network"},
        {"text": "态度差", "intent": "complaint/service"},
        {"text": "bye", "intent": "goodbye", "complaint_type": None},
    ]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n\n")
    assert rows(load_jsonl(path)) == [
        ("hi", "greet", None, "en"),
        ("网速太慢了", "complaint", "network", "zh"),
        ("态度差", "complaint", "service", "zh"),
        ("bye", "goodbye", None, "en"),
    ]


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ('{"text": "x", "intent": "greet"', "not JSON"),
        ("not json", "not JSON"),
        ('["hi"]', "expected an object"),
        ('{"intent": "greet"}', "expected an object"),
        ('{"text": 5, "intent": "greet"}', "expected an object"),
        ('{"text": "x", "intent": "bogus"}', "unknown intent 'bogus'"),
        ('{"text": "x", "intent": "complaint"}', "complaint examples need a type"),
    ],
)
def test_jsonl_bad_line_is_named(tmp_path, bad, needle):
    good = json.dumps({"text": "hi", "intent": "greet"})
    path = write(tmp_path, "bad_lines.jsonl", f"{good}\n\n{good}\n{bad}\n{good}\n")
    with pytest.raises(DataError) as info:
        load([path])
    message = str(info.value)
    assert "bad_lines.jsonl:line 4" in message and needle in message


# ---- files and folders ----
def test_a_folder_is_loaded_recursively(tmp_path):
    write(tmp_path, "a.yml", HEAD + "- intent: greet\n  examples: |\n    - hi\n")
    write(tmp_path, "sub/b.yaml", HEAD + "- intent: thanks\n  examples: |\n    - thanks\n")
    write(tmp_path, "sub/deeper/c.jsonl", json.dumps({"text": "bye", "intent": "goodbye"}) + "\n")
    write(tmp_path, "sub/notes.txt", "- intent: nonsense\n")  # not a data file: ignored
    assert sorted(e.intent for e in load([tmp_path])) == ["goodbye", "greet", "thanks"]
    assert [p.name for p in data_files([tmp_path])] == ["a.yml", "b.yaml", "c.jsonl"]


def test_an_error_deep_in_a_folder_names_that_file(tmp_path):
    write(tmp_path, "a.yml", HEAD + "- intent: greet\n  examples: |\n    - hi\n")
    write(tmp_path, "sub/b.jsonl", "{not json\n")
    with pytest.raises(DataError, match=r"b\.jsonl:line 1"):
        load([tmp_path])


def test_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load([tmp_path / "nope.yml"])


def test_a_folder_without_examples_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no training examples"):
        load([tmp_path / "empty"])


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# ---- the bundled data ----
ZH = DATA_DIR / "zh.yml"


@pytest.fixture(scope="module")
def bundled():
    return load()


def test_bundled_data_uses_only_known_labels(bundled):
    assert {e.intent for e in bundled} <= set(INTENTS)
    assert {e.complaint_type for e in bundled if e.intent == "complaint"} <= set(COMPLAINT_TYPES)
    assert all(e.complaint_type is None for e in bundled if e.intent != "complaint")


def test_bundled_english_has_30_examples_per_intent(bundled):
    per = Counter(e.intent for e in bundled if e.lang == "en")
    short = {intent: per[intent] for intent in INTENTS if per[intent] < 30}
    assert not short, f"intents with fewer than 30 English examples: {short}"


def test_bundled_chinese_has_30_examples_per_intent(bundled):
    if not ZH.exists():
        pytest.skip(f"{ZH} not written yet")
    per = Counter(e.intent for e in bundled if e.lang == "zh")
    short = {intent: per[intent] for intent in INTENTS if per[intent] < 30}
    assert not short, f"intents with fewer than 30 Chinese examples: {short}"


def test_bundled_chinese_has_60_examples_per_complaint_type(bundled):
    if not ZH.exists():
        pytest.skip(f"{ZH} not written yet")
    per = Counter(e.complaint_type for e in bundled if e.lang == "zh" and e.intent == "complaint")
    short = {ctype: per[ctype] for ctype in COMPLAINT_TYPES if per[ctype] < 60}
    assert not short, f"complaint types with fewer than 60 Chinese examples: {short}"
