"""``config/cases.yml`` read once into frozen objects: the case clocks (per type and severity), how severity is
judged, the departments and the dispatch table (type → region → department), the reopen window and the delay of
the follow-up visit. A malformed file names itself and the key."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PACKAGED = Path(__file__).resolve().parents[2] / "config" / "cases.yml"
TYPES = ("service", "business", "network", "other")
SEVERITIES = ("high", "medium", "low")
CLOCKS = ("first_response", "solution")


class CasesConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CaseClock:
    due: float  # seconds from registration
    warn_before: float  # the warning, this long before the breach
    head_after: float  # after the breach, escalated again (to the department head) this long later


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    name: dict[str, str]
    skill: str
    agents: tuple[str, ...]
    supervisor: str
    head: str

    def label(self, lang: str) -> str:
        return self.name.get(lang) or self.name.get("zh") or self.id


@dataclass(frozen=True, slots=True)
class Severity:
    default: str = "medium"
    high_urgency: int = 3
    high_tiers: tuple[str, ...] = ("vip",)
    repeat_days: int = 30
    high_repeats: int = 2
    high_words: tuple[str, ...] = ()
    low_types: tuple[str, ...] = ("other",)


@dataclass(frozen=True, slots=True)
class CasesConfig:
    clocks: dict[str, CaseClock]
    overrides: tuple[dict[str, Any], ...]
    severity: Severity
    departments: dict[str, Department]
    dispatch: dict[str, dict[str, str]]
    reopen_window: float = 7 * 86400
    followup_delay: float = 3600
    extra: dict[str, Any] = field(default_factory=dict)

    def clock(self, name: str, complaint_type: str, severity: str) -> CaseClock:
        """The clock for a case of this type and severity: the defaults, then every matching override in order."""
        clock = self.clocks[name]
        for o in self.overrides:
            if o.get("type", complaint_type) == complaint_type and o.get("severity", severity) == severity:
                clock = replace(clock, **{k: float(v) for k, v in (o.get(name) or {}).items()})
        return clock

    def department(self, complaint_type: str, region: str | None) -> Department:
        table = self.dispatch.get(complaint_type) or self.dispatch["other"]
        return self.departments[table.get(region or "", table["default"])]

    def replace(self, **changes: Any) -> CasesConfig:
        return replace(self, **changes)

    def with_clocks(self, **clocks: dict[str, float]) -> CasesConfig:
        """A copy with some clocks changed, e.g. ``with_clocks(first_response={"due": 2, "warn_before": 1})``
        (overrides dropped: the clocks are then the same for every case)."""
        merged = {k: replace(v, **clocks.get(k, {})) for k, v in self.clocks.items()}
        return replace(self, clocks=merged, overrides=())


def _clock(raw: dict[str, Any]) -> CaseClock:
    clock = CaseClock(float(raw["due"]), float(raw.get("warn_before", 0)), float(raw.get("head_after", raw["due"])))
    if not (clock.due > 0 and 0 <= clock.warn_before < clock.due and clock.head_after > 0):
        raise ValueError("a clock needs due > 0, 0 ≤ warn_before < due and head_after > 0")
    return clock


def parse(data: dict[str, Any]) -> CasesConfig:
    clocks = {name: _clock(data["clocks"][name]) for name in CLOCKS}
    departments = {}
    for key, d in (data.get("departments") or {}).items():
        name = d.get("name") or key
        departments[str(key)] = Department(str(key), {str(k): str(v) for k, v in name.items()} if isinstance(
            name, dict) else {"zh": str(name), "en": str(name)}, str(d["skill"]), tuple(d.get("agents") or ()),
            str(d.get("supervisor") or ""), str(d.get("head") or d.get("supervisor") or ""))  # fmt: skip
    dispatch = {str(t): {str(k): str(v) for k, v in row.items()} for t, row in data["dispatch"].items()}
    for t in TYPES:
        if t not in dispatch or "default" not in dispatch[t]:
            raise ValueError(f"'dispatch.{t}.default' is missing")
    for t, row in dispatch.items():
        for region, dept in row.items():
            if dept not in departments:
                raise ValueError(f"'dispatch.{t}.{region}': no department {dept!r}")
    overrides = tuple(dict(o) for o in data.get("overrides") or ())
    for o in overrides:
        if o.get("type") not in (None, *TYPES) or o.get("severity") not in (None, *SEVERITIES):
            raise ValueError(f"'overrides': unknown type or severity in {o}")
    s = data.get("severity") or {}
    severity = Severity(str(s.get("default", "medium")), int(s.get("high_urgency", 3)),
                        tuple(s.get("high_tiers") or ()), int(s.get("repeat_days", 30)), int(s.get("high_repeats", 2)),
                        tuple(str(w).lower() for w in s.get("high_words") or ()),
                        tuple(s.get("low_types") or ()))  # fmt: skip
    if severity.default not in SEVERITIES:
        raise ValueError(f"'severity.default' must be one of {', '.join(SEVERITIES)}")
    window, delay = float(data.get("reopen_window", 7 * 86400)), float(data.get("followup_delay", 3600))
    return CasesConfig(clocks, overrides, severity, departments, dispatch, window, delay)


def load_cases_config(path: Path | str | None = None) -> CasesConfig:
    """``cases.yml`` at ``path`` (a file, or a folder holding one), else the packaged ``config/cases.yml``."""
    where = Path(path) if path else PACKAGED
    if where.is_dir():
        where = where / "cases.yml"
    if not where.is_file():
        where = PACKAGED
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("expected a mapping at the top level")
        return parse(data)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise CasesConfigError(f"{where}: {type(exc).__name__}: {exc}") from None
