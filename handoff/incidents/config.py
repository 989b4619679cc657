"""``config/incidents.yml`` read once into frozen objects (a malformed file names itself and the key)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from handoff.incidents.broadcast import BroadcastConfig
from handoff.incidents.model import STAGES
from handoff.incidents.tasks import TasksConfig

PACKAGED = Path(__file__).resolve().parents[2] / "config" / "incidents.yml"


class IncidentsConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    enabled: bool = True
    interval: float = 60.0
    window_minutes: int = 60
    baseline_days: int = 28
    factor: float = 5.0
    min_count: int = 20
    floor: float = 1.0
    per_channel: bool = True
    cooldown: int = 7200
    samples: int = 5


@dataclass(frozen=True, slots=True)
class IncidentsConfig:
    answer_stages: tuple[str, ...] = ("assessed", "plan", "acting", "monitoring")
    refresh_seconds: float = 5.0
    insist_window: int = 1800
    network_intents: tuple[str, ...] = ("network_status", "broadband_repair")
    monitoring_token_env: str = "INCIDENTS_TOKEN"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)

    def monitoring_token(self, env: dict[str, str] | None = None) -> str:
        return (env if env is not None else os.environ).get(self.monitoring_token_env, "")


NESTED: dict[str, type] = {"detector": DetectorConfig, "broadcast": BroadcastConfig, "tasks": TasksConfig}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise IncidentsConfigError(f"{where}: must be a mapping")
    known = {f.name: f for f in fields(cls)}
    args: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise IncidentsConfigError(f"{where}: unknown key '{key}'; known: {', '.join(known)}")
        if key in NESTED:
            args[key] = _build(NESTED[key], value, f"{where}.{key}")
        elif isinstance(value, list):
            args[key] = tuple(str(v) for v in value)
        else:
            args[key] = value
    if cls is TasksConfig and "departments" in args and not _names(args["departments"]):
        raise IncidentsConfigError(f"{where}: departments: each needs a name in zh and en and may list members, "
                                   "e.g. network_ops: {zh: 网络运维部, en: Network operations, "
                                   "members: [wang]}")  # fmt: skip
    if cls is BroadcastConfig and not _rates(args.get("per_channel", {"sms": 1})):
        raise IncidentsConfigError(f"{where}: per_channel must map sms, wechat, telegram to positive integers")
    if cls is BroadcastConfig and "quiet_hours" in args and not _times(args["quiet_hours"]):
        raise IncidentsConfigError(f'{where}: quiet_hours must be two times, e.g. ["22:00", "08:00"]')
    try:
        made = cls(**args)
    except TypeError as exc:
        raise IncidentsConfigError(f"{where}: {exc}") from None
    return made


def _names(departments: Any) -> bool:
    return isinstance(departments, dict) and all(
        isinstance(v, dict)
        and isinstance(v.get("zh"), str)
        and isinstance(v.get("en"), str)
        and isinstance(v.get("members", []), list)
        and set(v) <= {"zh", "en", "members"}
        for v in departments.values()
    )


def _rates(rates: Any) -> bool:
    return isinstance(rates, dict) and all(
        k in ("sms", "wechat", "telegram") and isinstance(v, int) and v > 0 for k, v in rates.items()
    )


def _times(values: tuple[str, ...]) -> bool:
    try:
        return len(values) == 2 and all(dt.time.fromisoformat(v) for v in values)
    except ValueError:
        return False


def load_incidents_config(path: Path | str | None = None) -> IncidentsConfig:
    """``path``, else the file ``INCIDENTS_CONFIG`` names, else the packaged config/incidents.yml."""
    path = path or os.environ.get("INCIDENTS_CONFIG")
    source = Path(path) if path else PACKAGED
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IncidentsConfigError(f"{source}: {exc}") from None
    config: IncidentsConfig = _build(IncidentsConfig, data, str(source))
    bad = [s for s in config.answer_stages if s not in STAGES]
    if bad:
        raise IncidentsConfigError(f"{source}: answer_stages: unknown stage '{bad[0]}'; known: {', '.join(STAGES)}")
    return config
