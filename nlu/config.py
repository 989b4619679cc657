"""NLU settings: ``nlu/config.yml`` plus an optional override file of the same shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu.entities import Gazetteer
from nlu.model import ModelParams

DEFAULT_CONFIG = Path(__file__).parent / "config.yml"


class ConfigError(ValueError):
    """The NLU configuration is malformed; the message names the key and file."""


@dataclass(frozen=True, slots=True)
class FallbackSettings:
    threshold: float = 0.30
    ambiguity_threshold: float = 0.05


@dataclass(frozen=True, slots=True)
class BackendSettings:
    kind: str = "embedded"
    url: str = ""
    timeout: float = 1.0


@dataclass(frozen=True, slots=True)
class NLUConfig:
    max_length: int = 1000
    cache_size: int = 4096  # parse results kept by exact text (for the day: relative dates); 0 turns it off
    model: ModelParams = field(default_factory=ModelParams)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    gazetteer: Gazetteer = field(default_factory=lambda: Gazetteer({}, {}))

    @classmethod
    def load(cls, path: Path | str | None = None) -> NLUConfig:
        raw = _read(DEFAULT_CONFIG)
        if path is not None:
            _merge(raw, _read(Path(path)), str(path), "")
        return cls.from_dict(raw, str(path or DEFAULT_CONFIG))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str) -> NLUConfig:
        try:
            entities = raw.get("entities", {}) or {}
            unknown = set(entities) - {"districts", "plans"}
            if unknown:
                raise ConfigError(f"{source}: unknown key 'entities.{sorted(unknown)[0]}'; known: districts, plans")
            gazetteer = Gazetteer(
                districts={str(k): tuple(map(str, v or ())) for k, v in (entities.get("districts") or {}).items()},
                plans={str(k): tuple(map(str, v or ())) for k, v in (entities.get("plans") or {}).items()},
            )
            config = cls(
                max_length=int(raw.get("max_length", 1000)),
                cache_size=int(raw.get("cache_size", 4096)),
                model=ModelParams(**(raw.get("model") or {})),
                fallback=FallbackSettings(**{k: float(v) for k, v in (raw.get("fallback") or {}).items()}),
                backend=BackendSettings(**(raw.get("backend") or {})),
                gazetteer=gazetteer,
            )
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{source}: invalid value: {exc}") from None
        if config.backend.kind not in {"embedded", "rasa"}:
            raise ConfigError(f"{source}: backend.kind must be 'embedded' or 'rasa', got {config.backend.kind!r}")
        if config.backend.kind == "rasa" and not config.backend.url:
            raise ConfigError(f"{source}: backend.url is required when backend.kind is 'rasa'")
        if config.max_length < 1:
            raise ConfigError(f"{source}: max_length must be positive")
        if config.cache_size < 0:
            raise ConfigError(f"{source}: cache_size must be 0 (off) or more")
        return config


_KNOWN = {"max_length", "cache_size", "model", "fallback", "backend", "entities"}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - _KNOWN
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}; known keys: {', '.join(sorted(_KNOWN))}")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any], source: str, prefix: str) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source, f"{prefix}{key}.")
        else:
            base[key] = value
