"""The embedded demo back end: ``config/demo_bss.yml`` read-only, writes kept in Redis.

Plan changes, suspensions, service cancellations, repair orders and payment orders are stored
under the gateway's key prefix, so every gateway process sees the same demo customer, and each
write is idempotent: its ``idempotency_key`` maps to the first result for a day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import yaml

from bots.bss import codec
from bots.bss.base import (
    Balance,
    Bill,
    BillItem,
    Broadband,
    Bucket,
    NotFound,
    Order,
    Outage,
    Plan,
    PortingCheck,
    Rejected,
    RoamingRate,
    Store,
    Subscriber,
    Vas,
    Window,
    month_key,
)  # fmt: skip
from gateway.fastredis import FastRedis, Lean
from gateway.rkeys import BSS_IDEMPOTENCY_PENDING_TTL, BSS_IDEMPOTENCY_TTL, Keys

DEMO_DATA = Path(__file__).resolve().parents[2] / "config" / "demo_bss.yml"


class DemoDataError(ValueError):
    """The demo data file is malformed; the message names the file and the entry."""


class DemoBSS:
    def __init__(
        self, redis: aioredis.Redis, prefix: str | Keys, path: Path = DEMO_DATA, tz: str = "Asia/Shanghai",
        pay_url: str = "https://pay.example.com/order/", fast: FastRedis | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.lean = Lean(redis, fast)  # the reads of every account question: on the lean connection (one server)
        self.keys = prefix if isinstance(prefix, Keys) else Keys(prefix)  # the deployment's: numbers hashed in names
        self.tz = ZoneInfo(tz)
        self.pay_url = pay_url
        self.path = path
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            self._load(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DemoDataError(f"{path}: {type(exc).__name__}: {exc}") from None

    # ---- loading ------------------------------------------------------------------------------
    def _load(self, raw: dict[str, Any]) -> None:
        self._plans = {pid: codec.plan({"id": pid, **p}) for pid, p in raw["plans"].items()}
        self._vas = {vid: codec.vas({"id": vid, **v}) for vid, v in raw["vas"].items()}
        self._subs: dict[str, dict[str, Any]] = {}
        for phone, s in raw["subscribers"].items():
            phone = str(phone)
            where = f"subscriber {phone}"
            if s["plan"] not in self._plans:
                raise ValueError(f"{where}: unknown plan {s['plan']!r}")
            for v in s.get("vas") or ():
                if v not in self._vas:
                    raise ValueError(f"{where}: unknown value-added service {v!r}")
            for months_back, b in (s.get("bills") or {}).items():
                total = round(sum(float(i["amount"]) for i in b["items"]), 2)
                if abs(total - float(b["total"])) > 0.005:
                    raise ValueError(f"{where}: bill {months_back} total {b['total']} != sum of items {total}")
            self._subs[phone] = s
        self._stores = [codec.store(s) for s in raw["stores"]]
        self._roaming = [codec.roaming_rate(r) for r in raw["roaming"]]
        self._outages = [codec.outage(o) for o in raw["outages"]]
        self._windows = [(int(w["days_ahead"]), dt.time.fromisoformat(w["start"]), dt.time.fromisoformat(w["end"]))
                         for w in raw["repair_windows"]]  # fmt: skip

    @property
    def phones(self) -> tuple[str, ...]:
        return tuple(self._subs)

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()

    # ---- overlay (writes) ----------------------------------------------------------------------
    async def _overlay(self, phone: str) -> dict[str, str]:
        raw = await self.lean.hgetall(self.keys.bss_subscriber(phone))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def _raw(self, phone: str) -> dict[str, Any]:
        try:
            return self._subs[phone]
        except KeyError:
            raise NotFound(f"no subscriber {phone[:3]}****{phone[-4:]}") from None

    async def _once(self, key: str, write: Callable[[], Awaitable[Order]]) -> Order:
        """Run ``write`` once per idempotency key; later calls get the first result."""
        rkey = self.keys.bss_idempotency(key)
        for _ in range(250):
            if await self.redis.set(rkey, "pending", nx=True, ex=BSS_IDEMPOTENCY_PENDING_TTL):
                try:
                    order = await write()
                except BaseException:
                    await self.redis.delete(rkey)
                    raise
                await self.redis.set(rkey, json.dumps(codec.dump(order)), ex=BSS_IDEMPOTENCY_TTL)
                return order
            stored = await self.redis.get(rkey)
            if stored and stored != b"pending":
                return codec.order(json.loads(stored))
            await asyncio.sleep(0.02)
        raise Rejected("busy", "the same request is still being processed")

    async def _order_id(self, kind: str) -> str:
        n = await self.redis.incr(self.keys.bss_orders())
        return f"{kind}{self.today():%Y%m%d}{int(n):05d}"

    # ---- reads ------------------------------------------------------------------------------------
    async def subscriber(self, phone: str) -> Subscriber:
        s = self._raw(phone)
        over = await self._overlay(phone)
        bb = s.get("broadband")
        return Subscriber(
            phone=phone, name=s["name"], plan=s["plan"], tier=s["tier"], lang=s["lang"], district=s["district"],
            since=_as_date(s["since"]), contract_end=_as_date(s.get("contract_end")),
            status=over.get("status", s["status"]), roaming_enabled=bool(s.get("roaming_enabled")),
            broadband=Broadband(bb["account"], int(bb["speed_mbps"]), bb["address"]) if bb else None,
            pending_plan=over.get("pending_plan"),
        )  # fmt: skip

    async def balance(self, phone: str) -> Balance:
        s = self._raw(phone)
        credit = float((await self._overlay(phone)).get("goodwill_credit", 0))  # goodwill gestures (incidents)
        return Balance(round(float(s["balance"]) + credit, 2), float(s.get("credit_limit", 0)),
                       dt.datetime.now(self.tz))  # fmt: skip

    async def usage(self, phone: str) -> tuple[Bucket, ...]:
        s = self._raw(phone)
        bonus = int(float((await self._overlay(phone)).get("goodwill_mb", 0)))  # goodwill data (incidents)
        return tuple(Bucket(name, int(b["used_mb"]), int(b["total_mb"]) + (bonus if name == "general" else 0))
                     for name, b in s["usage"].items())  # fmt: skip

    async def bill(self, phone: str, month: str) -> Bill:
        s = self._raw(phone)
        today = self.today()
        for months_back, b in (s.get("bills") or {}).items():
            if month_key(today, int(months_back)) == month:
                items = tuple(BillItem(i["name"], float(i["amount"])) for i in b["items"])
                return Bill(month, float(b["total"]), b["status"], items)
        raise NotFound(f"no bill for {month}")

    async def plans(self) -> tuple[Plan, ...]:
        return tuple(self._plans.values())

    async def vas(self, phone: str) -> tuple[Vas, ...]:
        s = self._raw(phone)
        cancelled = set(json.loads((await self._overlay(phone)).get("vas_cancelled", "[]")))
        return tuple(self._vas[v] for v in s.get("vas") or () if v not in cancelled)

    async def puk(self, phone: str) -> str:
        return str(self._raw(phone)["puk"])

    async def porting_check(self, phone: str) -> PortingCheck:
        sub = await self.subscriber(phone)
        bal = await self.balance(phone)
        reasons = []
        if sub.contract_end and sub.contract_end > self.today():
            reasons.append("contract")
        if bal.balance < 0:
            reasons.append("arrears")
        if sub.status != "active":
            reasons.append("suspended")
        if (self.today() - sub.since).days < 120:
            reasons.append("tenure")
        return PortingCheck(not reasons, tuple(reasons))

    async def repair_windows(self, phone: str) -> tuple[Window, ...]:
        today = self.today()
        out = []
        for days, start, end in self._windows:
            day = today + dt.timedelta(days=days)
            out.append(Window(dt.datetime.combine(day, start, self.tz), dt.datetime.combine(day, end, self.tz)))
        return tuple(out)

    async def outages(self, district: str | None) -> tuple[Outage, ...]:
        return tuple(o for o in self._outages if o.active and (district is None or o.district == district))

    async def stores(self, district: str | None) -> tuple[Store, ...]:
        return tuple(s for s in self._stores if district is None or s.district == district)

    async def roaming_rate(self, country: str) -> RoamingRate | None:
        wanted = country.strip().lower()
        for rate in self._roaming:
            if wanted in {rate.country["zh"], rate.country["en"].lower(), *rate.aliases}:
                return rate
        return None

    async def destinations(self) -> tuple[RoamingRate, ...]:
        return tuple(self._roaming)

    # ---- writes -----------------------------------------------------------------------------------
    async def change_plan(self, phone: str, plan_id: str, idempotency_key: str) -> Order:
        async def write() -> Order:
            sub = await self.subscriber(phone)
            plan = self._plans.get(plan_id)
            if plan is None or not plan.open:
                raise Rejected("not_open", f"plan {plan_id} is not open for sign-up")
            if sub.plan == plan_id:
                raise Rejected("same_plan", "already on this plan")
            if sub.status != "active":
                raise Rejected("suspended", "the line is suspended")
            today = self.today()
            effective = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
            await self.redis.hset(self.keys.bss_subscriber(phone), "pending_plan", plan_id)
            order_id = await self._order_id("PC")
            return Order(order_id, "plan_change", effective, details={"from": sub.plan, "to": plan_id})

        return await self._once(idempotency_key, write)

    async def suspend(self, phone: str, reason: str, idempotency_key: str) -> Order:
        async def write() -> Order:
            self._raw(phone)
            await self.redis.hset(self.keys.bss_subscriber(phone), "status", "suspended")
            return Order(await self._order_id("SU"), "suspension", self.today(), details={"reason": reason})

        return await self._once(idempotency_key, write)

    async def create_repair(self, phone: str, window: str, idempotency_key: str) -> Order:
        async def write() -> Order:
            sub = await self.subscriber(phone)
            if sub.broadband is None:
                raise Rejected("no_broadband", "no fixed broadband on this account")
            chosen = next((w for w in await self.repair_windows(phone) if w.key == window), None)
            if chosen is None:
                raise Rejected("window", "that appointment window is not offered")
            return Order(await self._order_id("RP"), "repair", chosen.start.date(), chosen,
                         details={"account": sub.broadband.account})  # fmt: skip

        return await self._once(idempotency_key, write)

    async def cancel_vas(self, phone: str, vas_id: str, idempotency_key: str) -> Order:
        async def write() -> Order:
            if vas_id not in {v.id for v in await self.vas(phone)}:
                raise Rejected("not_subscribed", f"not subscribed to {vas_id}")
            over = await self._overlay(phone)
            cancelled = [*json.loads(over.get("vas_cancelled", "[]")), vas_id]
            await self.redis.hset(self.keys.bss_subscriber(phone), "vas_cancelled", json.dumps(cancelled))
            return Order(await self._order_id("VC"), "vas_cancellation", self.today(), details={"vas": vas_id})

        return await self._once(idempotency_key, write)

    async def district_phones(self, district: str, after: str = "", limit: int = 1000) -> tuple[tuple[str, ...], str]:
        phones = sorted(p for p, s in self._subs.items() if s["district"] == district and p > after)
        page = tuple(phones[: max(limit, 1)])
        return page, (page[-1] if len(phones) > len(page) else "")

    async def goodwill(self, phone: str, kind: str, amount: float, reason: str, idempotency_key: str) -> Order:
        async def write() -> Order:
            self._raw(phone)
            if kind not in ("data", "credit") or not 0 < amount <= 100_000:
                raise Rejected("invalid", "a goodwill gesture is data (MB) or credit (yuan), a positive amount")
            field = "goodwill_mb" if kind == "data" else "goodwill_credit"
            await self.redis.hincrbyfloat(self.keys.bss_subscriber(phone), field, amount)
            return Order(await self._order_id("GW"), "goodwill", self.today(),
                         details={"kind": kind, "amount": amount, "reason": reason})  # fmt: skip

        return await self._once(idempotency_key, write)

    async def payment_link(self, phone: str, amount: float, idempotency_key: str) -> Order:
        async def write() -> Order:
            self._raw(phone)
            order_id = await self._order_id("PAY")
            return Order(order_id, "payment", url=f"{self.pay_url}{order_id}", details={"amount": amount})

        return await self._once(idempotency_key, write)

    async def close(self) -> None:
        return None


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
