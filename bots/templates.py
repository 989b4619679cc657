"""Customer-facing texts: jinja2 templates per intent × language, with channel variants.

``templates/bots/<lang>/<name>.j2`` holds one macro per message of a flow (``answer``,
``ask_month`` …). ``<name>.sms.j2`` / ``<name>.wechat.j2`` may redefine some of them for that
channel; the others fall back to the default file. After rendering, text is fitted to the
channel: SMS to ``sms_max_parts`` parts (the template's ``short`` form first, then cut at a
sentence boundary), WeChat to 2,048 bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

from gateway import sms_units as sms
from gateway.models import Button
from gateway.privacy import mask_phone

ROOT = Path(__file__).resolve().parent.parent / "templates" / "bots"
LANGS = ("zh", "en")
VARIANTS = {"sms": "sms", "wechat": "wechat", "forum": "forum"}  # channel → template variant
WECHAT_MAX_BYTES = 2048
MEMO_SIZE = 4096  # rendered texts remembered per process (see Renderer.text)
_BLANKS = re.compile(r"\n{3,}")


class TemplateError(LookupError):
    pass


def _lang(ctx: Any) -> str:
    return str(ctx.get("lang", "zh"))


@jinja2.pass_context
def _money(ctx: Any, value: float) -> str:
    value = float(value)
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value):.2f}元" if _lang(ctx) == "zh" else f"{sign}¥{abs(value):.2f}"


def _volume(mb: float) -> str:
    mb = float(mb)
    if abs(mb) >= 1024:
        return f"{mb / 1024:.2f}".rstrip("0").rstrip(".") + "GB"
    return f"{mb:.0f}MB"


@jinja2.pass_context
def _date(ctx: Any, value: dt.date | str) -> str:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if _lang(ctx) == "zh":
        return f"{value.month}月{value.day}日"
    return f"{value.day} {value:%b} {value.year}"


@jinja2.pass_context
def _month(ctx: Any, value: str) -> str:
    year, month = value.split("-")
    if _lang(ctx) == "zh":
        return f"{year}年{int(month)}月"
    return f"{dt.date(int(year), int(month), 1):%B %Y}"


@jinja2.pass_context
def _time(ctx: Any, value: dt.datetime | str) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return f"{value:%H:%M}"


@jinja2.pass_context
def _names(ctx: Any, value: dict[str, str] | str) -> str:
    return value if isinstance(value, str) else value.get(_lang(ctx)) or value.get("zh", "")


class Renderer:
    def __init__(self, root: Path = ROOT, sms_max_parts: int = 3) -> None:
        self.root = root
        self.sms_max_parts = sms_max_parts
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(root), undefined=jinja2.StrictUndefined, autoescape=False,
            trim_blocks=True, lstrip_blocks=True,
        )  # fmt: skip
        self.env.filters.update(money=_money, volume=_volume, date=_date, month=_month, time=_time, names=_names,
                                mask=mask_phone)  # fmt: skip
        labels = yaml.safe_load((root / "labels.yml").read_text(encoding="utf-8"))
        self.labels: dict[str, dict[str, str]] = labels["intents"]
        self.complaint_labels: dict[str, dict[str, str]] = labels["complaint_types"]
        self.districts: dict[str, str] = labels["districts"]
        self.env.globals.update(complaint_labels=self.complaint_labels)

        @jinja2.pass_context
        def district(ctx: Any, name: str) -> str:
            return name if _lang(ctx) == "zh" else self.districts.get(name, name)

        self.env.filters["district"] = district
        self._modules: dict[tuple[str, str, str, bool], list[Any]] = {}
        self._memo: dict[tuple[Any, ...], str] = {}
        self._seen: set[int] = set()  # the hashes of renders seen once (see ``text``)

    def names(self) -> set[str]:
        """Template names (``query_balance``, ``common`` …) present for every language."""
        return {p.name.split(".")[0] for p in (self.root / "zh").glob("*.j2")}

    def _module_chain(self, name: str, lang: str, channel: str, short: bool) -> list[Any]:
        key = (name, lang, channel, short)
        chain = self._modules.get(key)
        if chain is None:
            chain = []
            variables = {"lang": lang, "channel": channel, "short": short}
            variant = VARIANTS.get(channel)
            files = [f"{lang}/{name}.{variant}.j2"] if variant else []
            files.append(f"{lang}/{name}.j2")
            for file in files:
                if (self.root / file).exists():
                    chain.append(self.env.get_template(file).make_module(variables))
            if not chain:
                raise TemplateError(f"no template {lang}/{name}.j2 under {self.root}")
            self._modules[key] = chain
        return chain

    def _render(self, name: str, macro: str, lang: str, channel: str, short: bool, args: dict[str, Any]) -> str:
        for module in self._module_chain(name, lang, channel, short):
            fn = getattr(module, macro, None)
            if fn is not None:
                kwargs = {k: args[k] for k in fn.arguments if k in args}
                text = str(fn(**kwargs))
                lines = [line.strip() for line in text.strip().splitlines()]
                return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
        raise TemplateError(f"template {lang}/{name}.j2 has no macro {macro!r}")

    def text(self, name: str, macro: str, lang: str, channel: str = "", **args: Any) -> str:
        """The message, fitted to the channel. Renders whose arguments are all hashable (menus,
        questions, most replies) are memoised from their second render on: the same inputs always give the same
        text. Renders naming a ticket or a request id never repeat; the process must not grow with them. The memo
        holds at most ``MEMO_SIZE`` texts and is emptied when full."""
        try:
            key: tuple[Any, ...] | None = (name, macro, lang, channel, *sorted(args.items()))
            hit = self._memo.get(key)  # type: ignore[arg-type]
        except TypeError:  # a dict or list argument: render every time
            key, hit = None, None
        if hit is not None:
            return hit
        text = self._fit(name, macro, lang, channel, args)
        if key is not None:
            # kept from its second render on: a text naming a ticket or a request id is rendered once and leaves
            # only its hash behind; both are bounded and start over when full
            seen = hash(key)
            if seen in self._seen:
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = text
            else:
                if len(self._seen) >= MEMO_SIZE:
                    self._seen.clear()
                self._seen.add(seen)
        return text

    def _fit(self, name: str, macro: str, lang: str, channel: str, args: dict[str, Any]) -> str:
        text = self._render(name, macro, lang, channel, False, args)
        if channel == "sms" and sms.segments(text) > self.sms_max_parts:
            text = sms.fit(self._render(name, macro, lang, channel, True, args), self.sms_max_parts)
        elif channel == "wechat" and len(text.encode()) > WECHAT_MAX_BYTES:
            text = _fit_bytes(self._render(name, macro, lang, channel, True, args), WECHAT_MAX_BYTES)
        return text

    def label(self, intent: str, lang: str) -> str:
        return self.labels[intent][lang]

    def button(self, intent: str, lang: str, payload: str | None = None) -> Button:
        return Button(self.labels[intent][lang], payload or f"/{intent}")


def _fit_bytes(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    out = ""
    for piece in re.split(r"(?<=[。！？.!?\n])", text):
        if len((out + piece + "…").encode()) > limit:
            break
        out += piece
    if not out:
        out = text.encode()[: limit - 3].decode(errors="ignore")
    return out + "…"
