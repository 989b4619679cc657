"""config/reports.yml and config/quality.yml are checked when the app starts: a wrong key is named."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from gateway.app import create_app
from handoff.reports.config import ReportsConfigError, configure

CONFIG = Path(__file__).resolve().parents[2] / "config"


def folder_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    for f in ("reports.yml", "quality.yml"):
        shutil.copy(CONFIG / f, tmp_path / f)
    text = (tmp_path / name).read_text(encoding="utf-8")
    assert old in text
    (tmp_path / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("name", "old", "new", "key"), [
    ("reports.yml", "pickup: 15 ", "pickup: soon ", "targets.pickup"),
    ("reports.yml", "service_level: 0.8", "service_level: 80", "staffing.service_level"),
    ("quality.yml", "points_each: 20", "points_each: lots", "forbidden.points_each"),
    ("quality.yml", "response_gap:", "response_gaps:", "'response_gap' is missing"),
])  # fmt: skip
def test_a_wrong_key_is_named(tmp_path, name, old, new, key):
    with pytest.raises(ReportsConfigError, match=key.replace(".", r"\.")):
        configure(folder_with(tmp_path, name, old, new))


def test_the_app_refuses_to_start_with_a_broken_rubric(tmp_path, make_settings, nlu_engine):
    folder = folder_with(tmp_path, "quality.yml", "seconds: 60", "seconds: -1")
    settings = dataclasses.replace(make_settings(), source=str(folder))
    with pytest.raises(ReportsConfigError, match=r"response_gap\.seconds"):
        create_app(settings, nlu=nlu_engine)
    configure(None)  # the packaged configuration again for the tests after this one
