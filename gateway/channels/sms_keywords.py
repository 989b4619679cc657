"""SMS keyword commands (``config/sms_keywords.yml``): a text that is exactly a keyword — "YE", "TD", "帮助" — is
a command (an intent, or an action: opt out, opt in, help) instead of a question for the NLU. Matching ignores
case, width, edge punctuation and traditional/simplified script."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import opencc
import yaml

KEYWORDS = Path(__file__).resolve().parents[2] / "config" / "sms_keywords.yml"
_TO_SIMPLIFIED = opencc.OpenCC("t2s")
_EDGE_PUNCT = re.compile(r"^[\s\W_]+|[\s\W_]+$")


@dataclass(frozen=True, slots=True)
class Keyword:
    word: str
    intent: str | None
    action: str | None
    lang: str
    label: str | None


class Keywords:
    """``config/sms_keywords.yml``: exact-match commands, case-, width- and script-insensitive."""

    ACTIONS = ("opt_out", "opt_in", "help")

    def __init__(self, entries: list[dict[str, Any]], source: str = "", intents: frozenset[str] = frozenset()) -> None:
        self.by_word: dict[str, Keyword] = {}
        self.listed: list[Keyword] = []
        for i, entry in enumerate(entries):
            where = f"{source}: keywords[{i}]"
            words, intent, action = entry.get("words"), entry.get("intent"), entry.get("action")
            if not isinstance(words, list) or not words:
                raise ValueError(f"{where}: 'words' must be a non-empty list")
            if bool(intent) == bool(action):
                raise ValueError(f"{where}: give exactly one of 'intent' or 'action'")
            if intent and intent not in intents:
                raise ValueError(f"{where}: unknown intent {intent!r}")
            if action and action not in self.ACTIONS:
                raise ValueError(f"{where}: action must be one of {', '.join(self.ACTIONS)}")
            lang = entry.get("lang", "zh")
            first = Keyword(str(words[0]), intent, action, lang, entry.get("label"))
            for word in words:
                key = self.key(str(word))
                if key in self.by_word:
                    raise ValueError(f"{where}: {word!r} is listed twice")
                self.by_word[key] = Keyword(str(word), intent, action, lang, entry.get("label"))
            if first.label:
                self.listed.append(first)

    @classmethod
    def load(cls, path: Path | str | None, intents: frozenset[str]) -> Keywords:
        path = Path(path) if path else KEYWORDS
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(data.get("keywords") or [], str(path), intents)

    @staticmethod
    def key(text: str) -> str:
        folded = unicodedata.normalize("NFKC", text).strip()
        stripped = _EDGE_PUNCT.sub("", folded) or folded  # "YE。" → "YE"; a bare "?" stays "?"
        return _TO_SIMPLIFIED.convert(stripped).upper()

    def match(self, text: str) -> Keyword | None:
        if len(text) > 24:
            return None
        return self.by_word.get(self.key(text))

    def help_items(self, lang: str) -> list[dict[str, str]]:
        return [{"word": k.word, "label": k.label or ""} for k in self.listed if k.lang == lang]
