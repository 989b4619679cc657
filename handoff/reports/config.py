"""``config/reports.yml``: the reports' time zone, service-level targets, staffing and case milestones.

The recorder's hooks sit in code that knows Redis and the keys but not the deployment's configuration folder, so
the configuration is the process's: the packaged file until ``configure(folder)`` (the app factory) names another.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from handoff.config import config_folder
from handoff.reports.buckets import Targets


class ReportsConfigError(ValueError):
    """config/reports.yml or config/quality.yml is missing a key or holds a wrong value (the message names it)."""


@dataclass(frozen=True, slots=True)
class Rubric:
    raw: dict[str, Any]

    def phrases(self, item: str) -> tuple[str, ...]:
        groups = self.raw[item].get("phrases") or {}
        return tuple(str(p).lower() for lang in ("zh", "en") for p in groups.get(lang) or ())

    def points(self, item: str, name: str = "points") -> int:
        return int(self.raw[item][name])


@dataclass(frozen=True, slots=True)
class Staffing:
    service_level: float = 0.8
    answer_within: float = 15.0
    concurrency: int = 3
    max_agents: int = 500


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    timezone: str
    targets: Targets
    staffing: Staffing
    first_response_stages: tuple[str, ...]
    solution_stages: tuple[str, ...]
    folder: Path
    rubric: Rubric

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _number(raw: dict[str, Any], name: str, section: str, low: float = 0.0) -> float:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= low:
        raise ReportsConfigError(f"reports.yml: '{section}.{name}' must be a number above {low:g}")
    return float(value)


NUMBERS = {
    "greeting": ("points", "within_messages"),
    "closing": ("points", "within_messages"),
    "courtesy": ("points", "min_share"),
    "forbidden": ("points_each", "max"),
    "response_gap": ("seconds", "points_each", "max"),
    "resolution": ("points",),
    "survey": ("points",),
}
PHRASED = ("greeting", "closing", "courtesy", "forbidden")


def _rubric(where: Path) -> Rubric:
    """``quality.yml`` of the folder (else the packaged one), checked: a missing or wrong key raises
    ``ReportsConfigError`` naming it."""
    path = where / "quality.yml"
    if not path.is_file():
        path = config_folder(None) / "quality.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ReportsConfigError(f"{path}: {exc}") from None
    for item, names in NUMBERS.items():
        section = (raw or {}).get(item)
        if not isinstance(section, dict):
            raise ReportsConfigError(f"{path}: '{item}' is missing (a mapping)")
        for name in names:
            value = section.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ReportsConfigError(f"{path}: '{item}.{name}' must be a number, 0 or more")
        if item in PHRASED:
            phrases = section.get("phrases")
            if not isinstance(phrases, dict) or not all(isinstance(v, list) for v in phrases.values()):
                raise ReportsConfigError(f"{path}: '{item}.phrases' must map zh/en to lists of phrases")
    return Rubric(raw)


@functools.cache
def load(folder: Path | str | None = None) -> ReportsConfig:
    where = config_folder(folder)
    path = where / "reports.yml"
    if not path.is_file():
        path = config_folder(None) / "reports.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        ZoneInfo(str(raw.get("timezone", "Asia/Shanghai")))
    except (OSError, yaml.YAMLError, ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportsConfigError(f"{path}: {exc}") from None
    t, s, c = raw.get("targets") or {}, raw.get("staffing") or {}, raw.get("cases") or {}
    targets = Targets(*(_number(t, n, "targets") for n in ("bot_answer", "pickup", "complaint_first_response",
                                                           "complaint_solution")))  # fmt: skip
    level = _number(s, "service_level", "staffing")
    if level >= 1:
        raise ReportsConfigError("reports.yml: 'staffing.service_level' must be below 1 (e.g. 0.8)")
    staffing = Staffing(level, _number(s, "answer_within", "staffing"), int(_number(s, "concurrency", "staffing")),
                        int(_number(s, "max_agents", "staffing")))  # fmt: skip
    return ReportsConfig(str(raw.get("timezone", "Asia/Shanghai")), targets, staffing,
                         tuple(c.get("first_response", ("in_progress", "replied", "resolved"))),
                         tuple(c.get("solution", ("replied", "resolved"))), where, _rubric(where))  # fmt: skip


_current: list[ReportsConfig] = []


def configure(folder: Path | str | None) -> ReportsConfig:
    """Use ``folder``'s reports.yml and quality.yml (else the packaged ones) from now on in this process; either
    wrong raises ``ReportsConfigError`` naming the key (at start-up, not at the first chat closed)."""
    config = load(folder)
    _current[:] = [config]
    return config


def current() -> ReportsConfig:
    return _current[0] if _current else load(None)
