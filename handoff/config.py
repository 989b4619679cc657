"""Routing (``routing.yml``), SLA clocks (``sla.yml``) and canned responses (``canned.yml``) from the
configuration folder (the one holding the gateway.yml given with ``--config``; a file it lacks comes from the
packaged ``config/``), read once into frozen objects; a malformed file names itself and the key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from handoff.cases.config import CasesConfig, load_cases_config

CONFIG = Path(__file__).resolve().parent.parent / "config"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HandoffConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Clock:
    warn: float
    breach: float


@dataclass(frozen=True, slots=True)
class DemoAgent:
    name: str
    password: str
    display_name: str
    role: str
    skills: tuple[str, ...]
    capacity: int
    names: dict[str, str] = field(default_factory=dict)  # language → display name ({zh: 王小明, en: Xiaoming Wang})


def _demo(a: dict[str, Any]) -> DemoAgent:
    """A demo agent of routing.yml; ``display_name`` is one name or one per language (the first is the default)."""
    shown = a["display_name"]
    names = {str(k): str(v) for k, v in shown.items()} if isinstance(shown, dict) else {}
    default = names.get("zh") or next(iter(names.values()), "") if names else str(shown)
    return DemoAgent(str(a["name"]), str(a["password"]), default, str(a["role"]), tuple(a["skills"]),
                     int(a["capacity"]), names)  # fmt: skip


@dataclass(frozen=True, slots=True)
class HandoffConfig:
    on_complaint: dict[str, bool]
    urgency_threshold: int
    vip_tiers: tuple[str, ...]
    complaint_skills: dict[str, str]
    language_skills: dict[str, str]
    channel_skills: dict[str, str]
    priority: dict[str, float]
    push: bool
    average_handle_seconds: float
    timezone: str
    days: tuple[str, ...]
    open: str
    close: str
    heartbeat_timeout: float
    disconnect_grace: float
    demo_agents: tuple[DemoAgent, ...]
    clocks: dict[str, Clock]
    complaint_solution: float
    canned: dict[str, dict[str, Any]] = field(default_factory=dict)
    restart_grace: float = 60.0  # seconds from a process start for consoles to reconnect before chats go back
    outage_after: float = 5.0  # no process alive this long: a system outage (SLA clocks paused for it)
    supervisors_push: bool = False  # supervisors are pull-only unless routing.yml says otherwise
    cases: CasesConfig | None = None  # config/cases.yml (complaint cases); None: the packaged one

    def in_service_hours(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(ZoneInfo(self.timezone))
        if DAYS[now.weekday()] not in self.days:
            return False
        minutes = now.hour * 60 + now.minute
        return _minutes(self.open) <= minutes < _minutes(self.close)

    def skills_for(self, lang: str, channel: str, complaint_type: str | None) -> tuple[str, ...]:
        skills = [self.language_skills.get(lang, lang)]
        if complaint_type:
            skills.append(self.complaint_skills.get(complaint_type, complaint_type))
        if channel in self.channel_skills:
            skills.append(self.channel_skills[channel])
        return tuple(dict.fromkeys(skills))

    def replace(self, **changes: Any) -> HandoffConfig:
        import dataclasses

        return dataclasses.replace(self, **changes)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise HandoffConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise HandoffConfigError(f"{path}: expected a mapping at the top level")
    return data


def config_folder(source: str | Path | None) -> Path:
    """The folder of a configuration: ``source`` is a folder, or a file in one (``Settings.source``, the
    gateway.yml the settings were read from); the packaged ``config/`` when it is neither."""
    path = Path(source) if source else None
    if path is not None and path.is_dir():
        return path
    if path is not None and path.is_file():
        return path.parent
    return CONFIG


def _pick(folder: Path, name: str) -> Path:
    """``folder/name``, or the packaged file when the folder does not have it."""
    path = folder / name
    return path if path.is_file() else CONFIG / name


def load_handoff_config(folder: Path | str | None = None) -> HandoffConfig:
    """``routing.yml``, ``sla.yml`` and ``canned.yml`` from ``folder`` (a configuration folder, or a file in
    one), each file the folder lacks from the packaged ``config/``."""
    where = config_folder(folder)
    routing_path, sla_path, canned_path = (_pick(where, n) for n in ("routing.yml", "sla.yml", "canned.yml"))
    r, s = _read(routing_path), _read(sla_path)
    try:
        clocks = {name: Clock(float(s[name]["warn"]), float(s[name]["breach"]))
                  for name in ("pickup", "first_reply", "complaint_first_response")}  # fmt: skip
        for name, clock in clocks.items():
            if not 0 < clock.warn <= clock.breach:
                raise ValueError(f"'{name}': warn must be positive and not after breach")
        hours = r["service_hours"]
        for day in hours["days"]:
            if day not in DAYS:
                raise ValueError(f"'service_hours.days': unknown day {day!r}")
        _minutes(hours["open"]), _minutes(hours["close"])
        config = HandoffConfig(
            on_complaint={k: bool(v) for k, v in r["handoff"]["on_complaint"].items()},
            urgency_threshold=int(r["handoff"]["urgency_threshold"]),
            vip_tiers=tuple(r["handoff"].get("vip_tiers") or ()),
            complaint_skills=dict(r["skills"]["complaint_type"]),
            language_skills=dict(r["skills"]["language"]),
            channel_skills=dict(r["skills"].get("channel") or {}),
            priority={k: float(v) for k, v in r["priority"].items()},
            push=bool(r["assignment"]["push"]),
            average_handle_seconds=float(r["assignment"]["average_handle_seconds"]),
            timezone=str(hours["timezone"]), days=tuple(hours["days"]), open=str(hours["open"]),
            close=str(hours["close"]),
            heartbeat_timeout=float(r["presence"]["heartbeat_timeout"]),
            disconnect_grace=float(r["presence"]["disconnect_grace"]),
            restart_grace=float(r["presence"].get("restart_grace", 60)),
            outage_after=float(s.get("outage_after", 5)),
            supervisors_push=bool(r["assignment"].get("supervisors_push", False)),
            demo_agents=tuple(_demo(a) for a in r.get("demo_agents") or ()),
            clocks=clocks, complaint_solution=float(s["complaint_solution"]),
            canned=_read(canned_path) if canned_path.exists() else {},
            cases=load_cases_config(_pick(where, "cases.yml")),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise HandoffConfigError(f"{routing_path} / {sla_path}: {type(exc).__name__}: {exc}") from None
    return config
