"""The parse cache: the same text gets the same result as parsing it afresh, within a bound, for one day."""

from __future__ import annotations

import dataclasses
import time
from datetime import date
from pathlib import Path

import pytest

from nlu import NLU
from nlu.config import ConfigError, NLUConfig

TEXTS = ["你好", "转人工", "我的话费还剩多少", "上个月账单", "宽带坏了，光猫红灯一直闪", "手机号13800138000的流量",
         "ＴＤ", "what's my balance", "朝陽區是不是斷網了"]  # fmt: skip


def _engine(folder: Path, size: int) -> NLU:
    return NLU.from_dir(folder, dataclasses.replace(NLUConfig.load(), cache_size=size))


def test_a_cached_result_is_the_result_of_parsing_afresh(nlu_artifact: Path) -> None:
    engine = _engine(nlu_artifact, 64)
    for text in TEXTS * 2:
        assert engine.parse(text) == engine.parse(text, now=date.today())  # ``now`` given: never cached
    assert engine.parse("转人工") is engine.parse("转人工")


def test_the_cache_keeps_the_recently_used_texts_within_its_size(nlu_artifact: Path) -> None:
    engine = _engine(nlu_artifact, 2)
    first = engine.parse("你好")
    engine.parse("转人工")
    assert engine.parse("你好") is first  # used again: now the most recent
    engine.parse("上个月账单")  # a third text: the least recently used one ("转人工") leaves
    assert engine.parse("你好") is first
    assert engine.cached == 2


def test_size_zero_turns_the_cache_off(nlu_artifact: Path) -> None:
    engine = _engine(nlu_artifact, 0)
    assert engine.parse("你好") is not engine.parse("你好")
    assert engine.cached == 0


def test_a_new_day_empties_the_cache(nlu_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Results hold dates relative to today ("上个月"): after midnight the cache starts again."""
    engine = _engine(nlu_artifact, 64)
    engine.parse("上个月账单")
    engine.parse("你好")
    assert engine.cached == 2
    tomorrow = time.time() + 86400
    monkeypatch.setattr("nlu.engine.time.time", lambda: tomorrow)
    engine.parse("你好")
    assert engine.cached == 1


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ConfigError, match="cache_size"):
        NLUConfig.from_dict({"cache_size": -1}, "test.yml")
