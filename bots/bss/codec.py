"""JSON ↔ BSS values, shared by the HTTP adapter and the reference server (``openapi.yaml``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from bots.bss.base import (
    Balance,
    Bill,
    BillItem,
    Broadband,
    BSSError,
    Bucket,
    Order,
    Outage,
    Plan,
    PortingCheck,
    RoamingRate,
    Store,
    Subscriber,
    Vas,
    Window,
)  # fmt: skip


def dump(value: Any) -> Any:
    """A BSS value (or tuple of them) as JSON-ready data: dates as ISO 8601 strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Bucket):
            out["left_mb"] = value.left_mb
        return out
    if isinstance(value, tuple | list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _datetime(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _names(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not {"zh", "en"} <= value.keys():
        raise BSSError(f"expected names in zh and en, got {value!r}")
    return {"zh": str(value["zh"]), "en": str(value["en"])}


def window(d: dict[str, Any]) -> Window:
    return Window(dt.datetime.fromisoformat(d["start"]), dt.datetime.fromisoformat(d["end"]))


def subscriber(d: dict[str, Any]) -> Subscriber:
    bb = d.get("broadband")
    return Subscriber(
        phone=str(d["phone"]), name=_names(d["name"]), plan=str(d["plan"]), tier=str(d["tier"]), lang=str(d["lang"]),
        district=str(d["district"]), since=dt.date.fromisoformat(d["since"]), contract_end=_date(d.get("contract_end")),
        status=str(d["status"]), roaming_enabled=bool(d["roaming_enabled"]),
        broadband=Broadband(str(bb["account"]), int(bb["speed_mbps"]), _names(bb["address"])) if bb else None,
        pending_plan=d.get("pending_plan"),
    )  # fmt: skip


def balance(d: dict[str, Any]) -> Balance:
    return Balance(float(d["balance"]), float(d["credit_limit"]), dt.datetime.fromisoformat(d["as_of"]))


def bucket(d: dict[str, Any]) -> Bucket:
    return Bucket(str(d["bucket"]), int(d["used_mb"]), int(d["total_mb"]))


def bill(d: dict[str, Any]) -> Bill:
    items = tuple(BillItem(_names(i["name"]), float(i["amount"])) for i in d["items"])
    return Bill(str(d["month"]), float(d["total"]), str(d["status"]), items)


def plan(d: dict[str, Any]) -> Plan:
    return Plan(str(d["id"]), _names(d["name"]), float(d["fee"]), int(d["data_mb"]), int(d["directed_mb"]),
                int(d["voice_min"]), int(d["sms"]), str(d["network"]), bool(d.get("open", True)))  # fmt: skip


def vas(d: dict[str, Any]) -> Vas:
    return Vas(str(d["id"]), _names(d["name"]), float(d["fee"]))


def store(d: dict[str, Any]) -> Store:
    return Store(str(d["district"]), _names(d["name"]), _names(d["address"]), str(d["hours"]), str(d["phone"]))


def roaming_rate(d: dict[str, Any]) -> RoamingRate:
    return RoamingRate(_names(d["country"]), float(d["day_pass"]), float(d["data_per_mb"]),
                       float(d["call_per_min"]), float(d["sms"]),
                       tuple(str(a).lower() for a in d.get("aliases", ())))  # fmt: skip


def outage(d: dict[str, Any]) -> Outage:
    return Outage(str(d["id"]), str(d["district"]), _names(d["area"]), str(d["service"]), _names(d["description"]),
                  bool(d["active"]), dt.datetime.fromisoformat(d["started"]), _datetime(d.get("eta")))  # fmt: skip


def porting(d: dict[str, Any]) -> PortingCheck:
    return PortingCheck(bool(d["eligible"]), tuple(str(r) for r in d.get("reasons", ())))


def order(d: dict[str, Any]) -> Order:
    return Order(str(d["order_id"]), str(d["kind"]), _date(d.get("effective")),
                 window(d["window"]) if d.get("window") else None, d.get("url"),
                 dict(d.get("details") or {}))  # fmt: skip
