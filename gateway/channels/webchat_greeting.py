"""Web chat: the greeting with starter buttons a customer sees when the chat opens on an empty conversation.

Configured in ``webchat_greeting.yml`` (the configuration folder's, else the packaged ``config/``); its texts
are templates (``templates/bots/{zh,en}/webchat_greeting.j2``): macro ``text`` is the greeting, each starter's
``title`` names the macro of its label. It rides on the ``hello`` frame in both languages (the page follows its
zh/EN switch without asking again) and is not kept for replay: a customer with history sees the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.channels.base import Host
from gateway.settings import SettingsError

PACKAGED = Path(__file__).resolve().parents[2] / "config"
FILE = "webchat_greeting.yml"
TEMPLATE = "webchat_greeting"
LANGS = ("zh", "en")


class GreetingConfigError(SettingsError):
    """``webchat_greeting.yml`` is malformed or names a payload or title that does not exist."""


@dataclass(frozen=True, slots=True)
class Starter:
    title: str  # a macro of webchat_greeting.j2: the button's label
    payload: str  # a quick-reply payload: /intent or /intent{"entity": "value"}


@dataclass(frozen=True, slots=True)
class GreetingConfig:
    enabled: bool
    starters: tuple[Starter, ...]


def config_path(source: str | None) -> Path:
    """``webchat_greeting.yml`` next to the gateway.yml the settings came from, else the packaged one."""
    path = Path(source) if source else None
    if path is not None and path.exists():  # a folder, or the gateway.yml in one
        folder = path if path.is_dir() else path.parent
        if (folder / FILE).is_file():
            return folder / FILE
    return PACKAGED / FILE


def load_greeting(source: str | None, intents: frozenset[str]) -> GreetingConfig:
    """The greeting's settings; every starter's payload must name one of ``intents``."""
    path = config_path(source)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GreetingConfigError(f"{path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("starters", []), list):
        raise GreetingConfigError(f"{path}: expected a mapping with 'enabled' and a list 'starters'")
    unknown = set(raw) - {"enabled", "starters"}
    if unknown:
        raise GreetingConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: enabled, starters")
    starters = []
    for i, item in enumerate(raw.get("starters") or []):
        if not isinstance(item, dict) or not isinstance(item.get("title"), str) or not isinstance(
                item.get("payload"), str):  # fmt: skip
            raise GreetingConfigError(f"{path}: 'starters[{i}]' needs a 'title' and a 'payload' (strings)")
        payload = item["payload"].strip()
        intent = payload[1:].partition("{")[0]
        if not payload.startswith("/") or intent not in intents:
            raise GreetingConfigError(f"{path}: 'starters[{i}].payload' {payload!r} is not /<intent> of a known intent")
        starters.append(Starter(item["title"], payload))
    return GreetingConfig(bool(raw.get("enabled", True)), tuple(starters))


class Greeting:
    """Builds the ``greeting`` of the ``hello`` frame from the configuration and the templates."""

    def __init__(self, host: Host, source: str | None) -> None:
        self.host = host
        self.config = load_greeting(source, host.intents)

    def check(self) -> None:
        """Render every text once in each language: a missing macro stops start-up, not a customer's chat."""
        if self.config.enabled:
            self.frame(None)

    def frame(self, phone: str | None) -> dict[str, Any] | None:
        """``{"zh": {"text", "buttons"}, "en": {…}}`` (the ``greeting`` of a ``hello``), None when switched off."""
        if not self.config.enabled:
            return None
        frame: dict[str, Any] = {}
        for lang in LANGS:
            buttons = [{"title": self.host.text(TEMPLATE, s.title, lang, "webchat"), "payload": s.payload}
                       for s in self.config.starters]  # fmt: skip
            frame[lang] = {"text": self.host.text(TEMPLATE, "text", lang, "webchat", phone=phone), "buttons": buttons}
        return frame
