"""The interim responder: intent → template table (``templates/replies.yml``), zh-CN and en.

It answers every intent politely in the customer's language with quick replies; the bots issue
replaces the self-service entries with real flows behind the same ``respond`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from gateway.models import Button
from nlu import ParseResult, mask_phone

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "replies.yml"
LANGS = ("zh", "en")


class ReplyTableError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()


class ReplyTable:
    def __init__(self, path: Path = TEMPLATES) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        env = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined, keep_trailing_newline=False)
        self.labels: dict[str, dict[str, str]] = data["labels"]
        self.complaint_labels: dict[str, dict[str, str]] = data["complaint_labels"]
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        self._buttons: dict[str, tuple[str, ...]] = {}
        self._memo: dict[tuple[object, ...], Reply] = {}
        for key, entry in data["replies"].items():
            for lang in LANGS:
                if not entry.get(lang):
                    raise ReplyTableError(f"{path}: reply {key!r} has no {lang} text")
                self._templates[(key, lang)] = env.from_string(entry[lang])
            self._buttons[key] = tuple(entry.get("buttons", ()))
            for intent in self._buttons[key]:
                if intent not in self.labels:
                    raise ReplyTableError(f"{path}: reply {key!r} has a button for {intent!r} without a label")

    @property
    def keys(self) -> set[str]:
        return {key for key, _ in self._templates}

    def button(self, intent: str, lang: str) -> Button:
        return Button(self.labels[intent][lang], f"/{intent}")

    def render(self, key: str, lang: str, **context: Any) -> Reply:
        """The rendered reply; identical inputs give identical replies, so they are memoised."""
        memo_key = (key, lang, tuple(sorted(context.items())))
        reply = self._memo.get(memo_key)
        if reply is None:
            text = self._templates[(key, lang)].render(**context).strip()
            reply = Reply(text, tuple(self.button(i, lang) for i in self._buttons[key]))
            if len(self._memo) < 10_000:
                self._memo[memo_key] = reply
        return reply

    def respond(self, result: ParseResult, lang: str, phone: str | None) -> Reply:
        context = _context(result)
        context["phone"] = mask_phone(phone) if phone else None
        if result.intent == "nlu_fallback":
            reply = self.render("nlu_fallback", lang)
            guesses = [r.name for r in result.intent_ranking[:2] if r.name in self.labels or r.name in self.keys]
            buttons = tuple(Button(self._title(name, lang), f"/{name}") for name in guesses)
            return Reply(reply.text, (*buttons, self.button("request_human", lang)))
        if result.intent == "complaint" and result.complaint_type:
            context["complaint_label"] = self.complaint_labels[result.complaint_type][lang]
        return self.render(result.intent, lang, **context)

    def _title(self, intent: str, lang: str) -> str:
        if intent in self.labels:
            return self.labels[intent][lang]
        return intent.replace("_", " ")  # pragma: no cover - every intent has a label


def _context(result: ParseResult) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for entity in result.entities:
        if entity.entity == "money":
            context.setdefault("amount", entity.value)
        elif entity.entity in {"month", "district", "plan"}:
            context.setdefault(entity.entity, entity.value)
    return context
