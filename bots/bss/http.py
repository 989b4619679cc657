"""``HttpBSS``: a real operator back end over HTTP/JSON (contract: ``bots/bss/openapi.yaml``).

* Base URL from settings; an optional auth header from the environment (``BSS_AUTH_HEADER``,
  e.g. ``Authorization: Bearer …``) — never from a file, never logged.
* A timeout per call; reads (GET) are retried with exponential back-off and full jitter;
  writes are never retried here — they carry an ``Idempotency-Key`` header instead, so the
  bot may safely repeat a whole turn.
* A circuit breaker: after ``failure_threshold`` failures in a row the back end is not called for
  ``reset_after`` seconds (calls fail at once with ``BSSUnavailable``); then one trial call
  decides whether it closes again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from bots.bss import codec
from bots.bss.base import (
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
)  # fmt: skip
from gateway.privacy import mask_phone

log = logging.getLogger(__name__)
_PHONE = re.compile(r"1[3-9]\d{9}")


def _masked(path: str) -> str:
    """A path for messages and logs: phone numbers masked."""
    return _PHONE.sub(lambda m: mask_phone(m.group()), path)


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_after: float = 30.0) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if time.monotonic() - self.opened_at >= self.reset_after else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.failure_threshold or self.opened_at is not None:
            if self.opened_at is None:
                log.warning("operator back end: circuit opened after %d failures in a row", self.failures)
            self.opened_at = time.monotonic()


class HttpBSS:
    def __init__(
        self, base_url: str, *, auth_header: str = "", timeout: float = 2.0, retries: int = 2,
        backoff: float = 0.1, failure_threshold: int = 5, reset_after: float = 30.0,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self.breaker = CircuitBreaker(failure_threshold, reset_after)
        self._headers = {"Accept": "application/json"}
        if auth_header:
            name, _, value = auth_header.partition(":")
            if not value.strip():
                raise ValueError("BSS_AUTH_HEADER must look like 'Header-Name: value'")
            self._headers[name.strip()] = value.strip()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: Any = None, idempotency_key: str | None = None) -> Any:  # fmt: skip
        if not self.breaker.allow():
            raise BSSUnavailable("operator back end circuit is open")
        attempts = 1 + (self.retries if method == "GET" else 0)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(random.uniform(0, self.backoff * 2 ** (attempt - 1)))
            try:
                async with self._client().request(method, self.base_url + path, params=params, json=body,
                                                  headers=headers) as resp:  # fmt: skip
                    if resp.status >= 500 or resp.status == 429:
                        last = BSSUnavailable(f"operator back end answered {resp.status} to {method} {_masked(path)}")
                        continue
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                last = BSSUnavailable(f"operator back end: {type(exc).__name__} on {method} {_masked(path)}")
                continue
            self.breaker.success()
            if resp.status == 404:
                raise NotFound(_masked(_error(data)))
            if resp.status in (409, 422):
                code = str(data.get("code", "rejected")) if isinstance(data, dict) else "rejected"
                raise Rejected(code, _masked(_error(data)))
            if resp.status >= 400:
                raise BSSError(f"operator back end answered {resp.status}: {_masked(_error(data))}")
            return data
        self.breaker.failure()
        assert last is not None
        raise last

    # ---- reads -----------------------------------------------------------------------------------
    async def subscriber(self, phone: str) -> Subscriber:
        return codec.subscriber(await self._call("GET", f"/subscribers/{phone}"))

    async def balance(self, phone: str) -> Balance:
        return codec.balance(await self._call("GET", f"/subscribers/{phone}/balance"))

    async def usage(self, phone: str) -> tuple[Bucket, ...]:
        data = await self._call("GET", f"/subscribers/{phone}/usage")
        return tuple(codec.bucket(b) for b in data["buckets"])

    async def bill(self, phone: str, month: str) -> Bill:
        return codec.bill(await self._call("GET", f"/subscribers/{phone}/bills/{month}"))

    async def plans(self) -> tuple[Plan, ...]:
        return tuple(codec.plan(p) for p in await self._call("GET", "/plans"))

    async def vas(self, phone: str) -> tuple[Vas, ...]:
        return tuple(codec.vas(v) for v in await self._call("GET", f"/subscribers/{phone}/vas"))

    async def puk(self, phone: str) -> str:
        return str((await self._call("GET", f"/subscribers/{phone}/puk"))["puk"])

    async def porting_check(self, phone: str) -> PortingCheck:
        return codec.porting(await self._call("GET", f"/subscribers/{phone}/porting-check"))

    async def repair_windows(self, phone: str) -> tuple[Window, ...]:
        return tuple(codec.window(w) for w in await self._call("GET", f"/subscribers/{phone}/repair-windows"))

    async def outages(self, district: str | None) -> tuple[Outage, ...]:
        params = {"district": district} if district else None
        return tuple(codec.outage(o) for o in await self._call("GET", "/outages", params=params))

    async def stores(self, district: str | None) -> tuple[Store, ...]:
        params = {"district": district} if district else None
        return tuple(codec.store(s) for s in await self._call("GET", "/stores", params=params))

    async def roaming_rate(self, country: str) -> RoamingRate | None:
        try:
            return codec.roaming_rate(await self._call("GET", f"/roaming-rates/{quote(country, safe='')}"))
        except NotFound:
            return None

    async def destinations(self) -> tuple[RoamingRate, ...]:
        return tuple(codec.roaming_rate(r) for r in await self._call("GET", "/roaming-rates"))

    async def district_phones(self, district: str, after: str = "", limit: int = 1000) -> tuple[tuple[str, ...], str]:
        params = {"district": district, "after": after, "limit": str(limit)}
        data = await self._call("GET", "/subscribers", params=params)
        return tuple(str(p) for p in data["phones"]), str(data.get("next") or "")

    # ---- writes (never retried here; idempotent by key on the back end) ---------------------------
    async def _write(self, path: str, body: dict[str, Any], key: str) -> Order:
        return codec.order(await self._call("POST", path, body=body, idempotency_key=key))

    async def change_plan(self, phone: str, plan_id: str, idempotency_key: str) -> Order:
        return await self._write(f"/subscribers/{phone}/plan-change", {"plan_id": plan_id}, idempotency_key)

    async def suspend(self, phone: str, reason: str, idempotency_key: str) -> Order:
        return await self._write(f"/subscribers/{phone}/suspension", {"reason": reason}, idempotency_key)

    async def create_repair(self, phone: str, window: str, idempotency_key: str) -> Order:
        return await self._write(f"/subscribers/{phone}/repair-orders", {"window": window}, idempotency_key)

    async def cancel_vas(self, phone: str, vas_id: str, idempotency_key: str) -> Order:
        return await self._write(f"/subscribers/{phone}/vas-cancellations", {"vas_id": vas_id}, idempotency_key)

    async def payment_link(self, phone: str, amount: float, idempotency_key: str) -> Order:
        return await self._write("/payments", {"phone": phone, "amount": amount}, idempotency_key)

    async def goodwill(self, phone: str, kind: str, amount: float, reason: str, idempotency_key: str) -> Order:
        body = {"kind": kind, "amount": amount, "reason": reason}
        return await self._write(f"/subscribers/{phone}/goodwill", body, idempotency_key)


def _error(data: Any) -> str:
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return "no error message"
