"""What the flows need from the operator's back end (BSS), as one interface.

Two implementations: ``DemoBSS`` (``config/demo_bss.yml``, the embedded default) and ``HttpBSS``
(a real operator back end speaking the contract in ``bots/bss/openapi.yaml``). Values are plain
frozen dataclasses; customer-facing names carry both languages (``{"zh": …, "en": …}``).

Writes take an ``idempotency_key``: the same key always returns the first result and never
changes anything twice (a retried or duplicated customer message, a crash mid-turn).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

Names = dict[str, str]  # {"zh": …, "en": …}


def month_key(today: dt.date, months_back: int) -> str:
    """``YYYY-MM`` of the month ``months_back`` before ``today``'s (how bills are named)."""
    year, month = divmod(today.year * 12 + today.month - 1 - months_back, 12)
    return f"{year:04d}-{month + 1:02d}"


class BSSError(Exception):
    """The back end answered, but not with what the flow asked for."""


class BSSUnavailable(BSSError):
    """The back end did not answer (timeout, connection refused, 5xx, circuit open)."""


class NotFound(BSSError):
    """No such subscriber / bill / service."""


class Rejected(BSSError):
    """The back end refused a write (not eligible, wrong state); ``code`` says why."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Broadband:
    account: str
    speed_mbps: int
    address: Names


@dataclass(frozen=True, slots=True)
class Subscriber:
    phone: str
    name: Names
    plan: str
    tier: str  # normal | gold | vip
    lang: str
    district: str
    since: dt.date
    contract_end: dt.date | None
    status: str  # active | suspended
    roaming_enabled: bool
    broadband: Broadband | None = None
    pending_plan: str | None = None  # a plan change booked for next month


@dataclass(frozen=True, slots=True)
class Balance:
    balance: float
    credit_limit: float
    as_of: dt.datetime


@dataclass(frozen=True, slots=True)
class Bucket:
    bucket: str  # general | directed | roaming
    used_mb: int
    total_mb: int

    @property
    def left_mb(self) -> int:
        return max(self.total_mb - self.used_mb, 0)


@dataclass(frozen=True, slots=True)
class BillItem:
    name: Names
    amount: float


@dataclass(frozen=True, slots=True)
class Bill:
    month: str  # YYYY-MM
    total: float
    status: str  # paid | unpaid
    items: tuple[BillItem, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: Names
    fee: float
    data_mb: int
    directed_mb: int
    voice_min: int
    sms: int
    network: str
    open: bool = True


@dataclass(frozen=True, slots=True)
class Vas:
    id: str
    name: Names
    fee: float


@dataclass(frozen=True, slots=True)
class Store:
    district: str
    name: Names
    address: Names
    hours: str
    phone: str

    def __hash__(self) -> int:  # by content (its names are dicts): a reply listing stores is rendered once, then kept
        return hash((self.district, *self.name.items(), *self.address.items(), self.hours, self.phone))


@dataclass(frozen=True, slots=True)
class RoamingRate:
    country: Names
    day_pass: float
    data_per_mb: float
    call_per_min: float
    sms: float
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outage:
    id: str
    district: str
    area: Names
    service: str  # mobile | broadband
    description: Names
    active: bool
    started: dt.datetime
    eta: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @property
    def key(self) -> str:
        return self.start.strftime("%Y%m%d%H%M")


@dataclass(frozen=True, slots=True)
class Order:
    """The result of a write: its order number and what it did."""

    order_id: str
    kind: str  # plan_change | suspension | repair | vas_cancellation | payment | goodwill
    effective: dt.date | None = None
    window: Window | None = None
    url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PortingCheck:
    eligible: bool
    reasons: tuple[str, ...]  # contract | arrears | suspended | tenure


class BSS(Protocol):
    """Every call may raise ``BSSUnavailable``; lookups of a phone may raise ``NotFound``."""

    async def subscriber(self, phone: str) -> Subscriber: ...
    async def balance(self, phone: str) -> Balance: ...
    async def usage(self, phone: str) -> tuple[Bucket, ...]: ...
    async def bill(self, phone: str, month: str) -> Bill: ...
    async def plans(self) -> tuple[Plan, ...]: ...
    async def vas(self, phone: str) -> tuple[Vas, ...]: ...
    async def puk(self, phone: str) -> str: ...
    async def porting_check(self, phone: str) -> PortingCheck: ...
    async def repair_windows(self, phone: str) -> tuple[Window, ...]: ...
    async def outages(self, district: str | None) -> tuple[Outage, ...]: ...
    async def stores(self, district: str | None) -> tuple[Store, ...]: ...
    async def roaming_rate(self, country: str) -> RoamingRate | None: ...
    async def destinations(self) -> tuple[RoamingRate, ...]: ...

    async def change_plan(self, phone: str, plan_id: str, idempotency_key: str) -> Order: ...
    async def suspend(self, phone: str, reason: str, idempotency_key: str) -> Order: ...
    async def create_repair(self, phone: str, window: str, idempotency_key: str) -> Order: ...
    async def cancel_vas(self, phone: str, vas_id: str, idempotency_key: str) -> Order: ...
    async def district_phones(self, district: str, after: str = "", limit: int = 1000) -> tuple[tuple[str, ...], str]:
        """The subscribers living in ``district``, a page of numbers in ascending order after ``after``, and the
        next page's ``after`` ("" at the end) — whom a major incident's broadcast or goodwill offer concerns."""
        ...

    async def goodwill(self, phone: str, kind: str, amount: float, reason: str, idempotency_key: str) -> Order:
        """A goodwill gesture on the account: ``kind`` ``data`` (``amount`` MB added to this month's data) or
        ``credit`` (``amount`` yuan added to the balance)."""
        ...

    async def payment_link(self, phone: str, amount: float, idempotency_key: str) -> Order: ...

    async def close(self) -> None: ...
