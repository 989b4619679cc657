"""Rule-based entities: mobile number, ID-card number, money, month/date, data volume, place, plan.

Extraction runs on the width-folded, simplified text whose characters line up one to one with
the customer's original text, so ``start``/``end`` index the original message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import cn2an

_CN_NUM = "零〇一二两三四五六七八九十百千万点"
_NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{_CN_NUM}]+)"

PHONE = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?(1[3-9]\d(?:[\s-]?\d){8})(?!\d)")
ID_CARD = re.compile(
    r"(?<!\d)(\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx])(?![\dA-Za-z])"
)
MONEY = re.compile(
    rf"(?:(?P<sym>[¥￥$])\s*(?P<n1>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?))"
    rf"|(?:(?P<n2>{_NUM})\s*(?P<unit>元钱|元|块钱|块|rmb|yuan|dollars?|usd|美元|美金)(?![a-z]))",
)
DATA_VOLUME = re.compile(
    rf"(?P<n>{_NUM})\s*(?:个)?\s*(?P<unit>tb|gb|g|mb|m|兆|t)(?![a-z])"
    r"(?!\s*(?:网络|网|信号|手机|基站|套餐|宽带|光纤|带宽|光猫|network|phone|signal|broadband|fibre|fiber))",
)
REL_MONTH_ZH = re.compile(r"上上个?月|上个?月|这个月|本月|当月|下个?月")
REL_MONTH_EN = re.compile(r"\b(?:the month before last|last month|this month|next month)\b")
ABS_DATE = re.compile(
    rf"(?:(?P<y>\d{{4}}|[〇零一二三四五六七八九]{{4}})\s*年\s*)?(?P<m>\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*月份?(?:\s*(?P<d>\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*[日号])?"
)
ISO_MONTH = re.compile(r"(?<!\d)(?P<y>20\d{2})[-/.](?P<m>0?[1-9]|1[0-2])(?:[-/.](?P<d>[0-3]?\d))?(?!\d)")
EN_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
EN_MONTH = re.compile(
    r"\b(?P<name>january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\b(?:\s+(?P<y>20\d{2})(?![-/.\d]))?",
)
# Cheap gates: most messages have no numbers, months or money; skip those scans outright.
_HAS_NUMBER = re.compile(rf"[\d{_CN_NUM}]")
_HAS_MONEY = re.compile(r"[元块¥￥$美]|yuan|rmb|dollar|usd")
_HAS_LATIN = re.compile(r"[a-z]")

_REL_ZH = {"上上": -2, "上": -1, "这": 0, "本": 0, "当": 0, "下": 1}
_REL_EN = {"the month before last": -2, "last month": -1, "this month": 0, "next month": 1}
_TOGETHER = set("去儿来走吃玩住")
_DATA_CONTEXT = re.compile(r"流量|数据|用了|剩|包|data|used|left|remaining")
_CURRENCY = {"$": "USD", "¥": "CNY", "￥": "CNY"}


@dataclass(frozen=True, slots=True)
class Entity:
    entity: str
    value: str | float | int
    start: int
    end: int
    text: str
    unit: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "entity": self.entity, "value": self.value, "start": self.start, "end": self.end, "text": self.text,
        }  # fmt: skip
        if self.unit:
            out["unit"] = self.unit
        return out


_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")


def _year(raw: str) -> int:
    """``2024`` or ``二〇二四`` (years are read digit by digit)."""
    return int(raw.translate(_CN_DIGITS))


def to_number(raw: str) -> float | None:
    raw = raw.strip().replace(",", "")
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return float(cn2an.cn2an(raw, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _clean_number(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 2)


def shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _recent_month(now: date, month: int) -> int:
    """The year of the most recent ``month`` not after ``now`` (customers ask about the past)."""
    return now.year if month <= now.month else now.year - 1


@dataclass(frozen=True, slots=True)
class Gazetteer:
    """Configured names: ``{canonical: [alias, …]}`` for districts/cities and plans."""

    districts: dict[str, tuple[str, ...]]
    plans: dict[str, tuple[str, ...]]

    @staticmethod
    def _pattern(
        table: dict[str, tuple[str, ...]], variants: Callable[[str], Iterable[str]] = lambda name: (name,)
    ) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        lookup: dict[str, str] = {}
        for canonical, aliases in table.items():
            for name in (canonical, *aliases):
                for variant in variants(name.lower()):
                    lookup.setdefault(variant, canonical)
        if not lookup:
            return None, lookup
        names = sorted(lookup, key=len, reverse=True)
        return re.compile("|".join(re.escape(n) for n in names)), lookup


_PRICED_PLAN = re.compile(r"^(?P<head>.*?)(?P<n>\d+)(?P<unit>元|块钱|块)?(?P<kind>套餐|卡)$")


def plan_variants(name: str) -> Iterable[str]:
    """A plan's name as customers also write it: ``59元套餐`` → ``59元的套餐``, ``59块的套餐``,
    ``59块套餐``, ``59的套餐``, ``59 yuan plan``."""
    yield name
    m = _PRICED_PLAN.match(name)
    if not m:
        return
    head, n, kind = m.group("head"), m.group("n"), m.group("kind")
    for unit in ("元", "块", "块钱", ""):
        yield f"{head}{n}{unit}的{kind}"
        if unit:
            yield f"{head}{n}{unit}{kind}"
    if not head and kind == "套餐":
        yield from (f"{n} yuan plan", f"{n}-yuan plan", f"{n} rmb plan")


class EntityExtractor:
    def __init__(self, gazetteer: Gazetteer) -> None:
        self._district_re, self._districts = Gazetteer._pattern(gazetteer.districts)
        self._plan_re, self._plans = Gazetteer._pattern(gazetteer.plans, plan_variants)

    def extract(self, text: str, now: date) -> list[Entity]:
        """Entities of ``text``; scans run on a lower-cased copy of the same length."""
        low = text.lower()
        if len(low) != len(text):  # a rare letter whose lower case is longer: keep offsets right
            low = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
        return self._extract(text, low, now)

    def _extract(self, text: str, low: str, now: date) -> list[Entity]:
        found: list[Entity] = []
        taken: list[tuple[int, int]] = []

        def add(entity: Entity) -> None:
            if any(entity.start < e and s < entity.end for s, e in taken):
                return
            taken.append((entity.start, entity.end))
            found.append(entity)

        has_number = _HAS_NUMBER.search(low) is not None
        if has_number:
            for entity in self._identity(text):
                add(entity)
        for entity in self._gazette(text, low, self._plan_re, self._plans, "plan"):
            add(entity)
        if has_number or "月" in low or _HAS_LATIN.search(low):
            for entity in self._dates(text, low, now):
                add(entity)
        if has_number:
            if _HAS_MONEY.search(low):
                for entity in self._money(text, low):
                    add(entity)
            for entity in self._volume(text, low):
                add(entity)
        for entity in self._gazette(text, low, self._district_re, self._districts, "district"):
            add(entity)
        found.sort(key=lambda e: e.start)
        return found

    @staticmethod
    def _identity(text: str) -> Iterable[Entity]:
        if sum(map(str.isdigit, text)) < 11:
            return
        for m in ID_CARD.finditer(text):
            yield Entity("id_card", m.group(1).upper(), m.start(1), m.end(1), m.group(1))
        for m in PHONE.finditer(text):
            digits = re.sub(r"\D", "", m.group(1))
            yield Entity("phone", digits, m.start(), m.end(), m.group(0))

    @staticmethod
    def _money(text: str, low: str) -> Iterable[Entity]:
        for m in MONEY.finditer(low):
            if m.group("sym"):
                amount, currency = to_number(m.group("n1")), _CURRENCY[m.group("sym")]
            else:
                unit = m.group("unit").casefold()
                currency = "USD" if unit in {"dollar", "dollars", "usd", "美元", "美金"} else "CNY"
                amount = to_number(m.group("n2"))
            if m.group("n2") == "一" and low[m.end() : m.end() + 1] in _TOGETHER:
                continue  # 一块去 / 一块儿: "together", not one yuan
            if amount is not None:
                yield Entity("money", _clean_number(amount), m.start(), m.end(), text[m.start() : m.end()], currency)

    @staticmethod
    def _volume(text: str, low: str) -> Iterable[Entity]:
        factors = {"t": 1024 * 1024, "tb": 1024 * 1024, "g": 1024, "gb": 1024, "m": 1, "mb": 1, "兆": 1}
        for m in DATA_VOLUME.finditer(low):
            amount = to_number(m.group("n"))
            unit = m.group("unit").casefold()
            generation = unit == "g" and m.group("n") in {"2", "3", "4", "5"}
            if amount is None or (generation and _looks_like_network_generation(low, m.end())):
                continue
            yield Entity(
                "data_volume",
                _clean_number(amount * factors[unit]),
                m.start(),
                m.end(),
                text[m.start() : m.end()],
                "MB",
            )

    @staticmethod
    def _dates(text: str, low: str, now: date) -> Iterable[Entity]:
        for m in REL_MONTH_ZH.finditer(low):
            word = m.group(0)
            delta = next(v for k, v in sorted(_REL_ZH.items(), key=lambda kv: -len(kv[0])) if word.startswith(k))
            y, mo = shift_month(now.year, now.month, delta)
            yield Entity("month", f"{y:04d}-{mo:02d}", m.start(), m.end(), text[m.start() : m.end()])
        for m in REL_MONTH_EN.finditer(low):
            y, mo = shift_month(now.year, now.month, _REL_EN[m.group(0)])
            yield Entity("month", f"{y:04d}-{mo:02d}", m.start(), m.end(), text[m.start() : m.end()])
        for m in ISO_MONTH.finditer(low):
            entity = _date_entity(text, m, int(m.group("y")), int(m.group("m")), m.group("d"))
            if entity is not None:
                yield entity
        for m in ABS_DATE.finditer(low):
            month = to_number(m.group("m"))
            if month is None or not 1 <= month <= 12:
                continue
            year = _year(m.group("y")) if m.group("y") else _recent_month(now, int(month))
            entity = _date_entity(text, m, year, int(month), m.group("d"))
            if entity is not None:
                yield entity
        for m in EN_MONTH.finditer(low):
            name = m.group("name")
            if name == "may" and not m.group("y"):
                continue  # "may I …" is far more common than the month
            month = EN_MONTHS.index(name[:3]) + 1
            year = int(m.group("y")) if m.group("y") else _recent_month(now, month)
            yield Entity("month", f"{year:04d}-{month:02d}", m.start(), m.end(), text[m.start() : m.end()])

    @staticmethod
    def _gazette(
        text: str, low: str, pattern: re.Pattern[str] | None, lookup: dict[str, str], kind: str
    ) -> Iterable[Entity]:
        if pattern is None:
            return
        for m in pattern.finditer(low):
            yield Entity(kind, lookup[m.group(0)], m.start(), m.end(), text[m.start() : m.end()])


def _looks_like_network_generation(text: str, end: int) -> bool:
    """``5G`` alone or before 网/信号 is a network generation, not a data volume."""
    tail = text[end : end + 3]
    if not tail.strip():
        return not _DATA_CONTEXT.search(text)
    return bool(re.match(r"\s*(?:网|信号|手机|基站|套餐|network|phone|signal|plan)", tail))


def _date_entity(text: str, m: re.Match[str], year: int, month: int, day_raw: str | None) -> Entity | None:
    span = text[m.start() : m.end()]
    if day_raw:
        day = to_number(day_raw)
        if day is None or not 1 <= day <= 31:
            return None
        try:
            value = date(year, month, int(day)).isoformat()
        except ValueError:
            return None
        return Entity("date", value, m.start(), m.end(), span)
    return Entity("month", f"{year:04d}-{month:02d}", m.start(), m.end(), span)


def mask_phone(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]  # +86 country code
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_id_card(number: str) -> str:
    return f"{number[:3]}{'*' * (len(number) - 7)}{number[-4:]}" if len(number) > 7 else "*" * len(number)


def mask_text(text: str, entities: Sequence[Entity]) -> str:
    """``text`` with every phone and ID-card number masked (for logs and transcripts)."""
    out, last = [], 0
    for e in sorted(entities, key=lambda e: e.start):
        if e.entity not in {"phone", "id_card"} or e.start < last:
            continue
        out.append(text[last : e.start])
        out.append(mask_phone(str(e.value)) if e.entity == "phone" else mask_id_card(str(e.value)))
        last = e.end
    out.append(text[last:])
    return "".join(out)
