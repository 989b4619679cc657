"""The operator back end: one interface (``base.BSS``), a demo and an HTTP implementation."""

from bots.bss.base import (
    BSS,
    Balance,
    Bill,
    BSSError,
    BSSUnavailable,
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

__all__ = [
    "BSS", "BSSError", "BSSUnavailable", "Balance", "Bill", "Bucket", "NotFound", "Order", "Outage", "Plan",
    "PortingCheck", "Rejected", "RoamingRate", "Store", "Subscriber", "Vas", "Window", "month_key",
]  # fmt: skip
