"""The audit trail: one append-only Redis stream (``Keys.audit``) of who did what, to which customer, when, from where.

An entry's fields: ``who`` (an agent's sign-in name, ``system``, or ``cli:<user>``), ``what`` (``sign_in``,
``sign_in_failed``, ``sign_out``, ``reveal``, ``export``, ``deletion``, ``agent_created``, ``agent_changed``,
``role_change``, ``config_change``, ``key_rotation``, ``audit_export``, …), ``at`` (epoch seconds), ``where`` (the
client's address as the trusted proxies tell it, ``websec.client_key``), ``customer`` — never the number: its keyed
hash (``customer_ref``: ``Keys.cid`` of the number's 11 digits, so ``+86 138-0013-8000`` and ``13800138000`` are the
same customer) —, ``reason`` (the words an agent gave for a reveal) and ``details`` (JSON). Free text (who, reason,
details) goes through ``privacy.mask_text``: a number typed into a reason is not kept either.

Nothing edits or deletes an entry: no API route does, and the only trimming is by age — each write drops entries
older than ``AUDIT_KEPT`` (three years; ``XADD … MINID``, exact: a write finds nothing to drop at once), and
``trim(redis, keys, before_ts)`` drops those older than a given time (the retention settings' purge). Reading:
``page`` (newest first, filtered, a cursor for the next page) and ``collect`` (everything matching, for an export).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from gateway.privacy import mask_text
from gateway.rkeys import AUDIT_KEPT, Keys

KINDS = ("sign_in", "sign_in_failed", "sign_out", "reveal", "export", "deletion", "consent_change", "retention_purge",
         "agent_created", "agent_changed", "role_change", "config_change", "key_rotation",
         "audit_export")  # fmt: skip  # others may be recorded too
WHAT = re.compile(r"[a-z][a-z0-9_]{0,39}")
WHO_MAX, REASON_MAX, DETAIL_MAX = 64, 200, 2000
BATCH = 500  # entries read per round trip
SCAN_MAX = 20_000  # entries examined for one page of a filtered read (the cursor goes on from there)
EXPORT_MAX = 100_000  # entries in one export
CSV_FIELDS = ("id", "at", "time", "who", "what", "customer", "where", "reason", "details")
_NON_DIGIT = re.compile(r"\D")
_FULL = str.maketrans("０１２３４５６７８９", "0123456789")


def phone_digits(value: str) -> str:
    """A number as its digits alone, without a leading 86/0086 (``+86 138-0013-8000`` → ``13800138000``)."""
    digits = _NON_DIGIT.sub("", value.translate(_FULL))
    for cc in ("0086", "86"):
        if digits.startswith(cc) and len(digits) == len(cc) + 11:
            return digits[len(cc) :]
    return digits


def customer_ref(keys: Keys, phone: str) -> str:
    """How the trail names a customer: the keyed hash of the number's digits (of the value itself when it is not a
    number: a web visitor, an openid)."""
    digits = phone_digits(phone)
    return keys.cid(digits if len(digits) >= 5 else phone.strip())


def _clean(value: object, limit: int) -> str:
    return mask_text(str(value))[:limit]


# an identifier the gateway made (a chat, a case, a task: hex with a letter in it) is not a number to mask — a long run
# of digits inside one (8cd3c6400552429099f4…) looked like a bank card to the masker
_OUR_ID = re.compile(r"(?=[0-9a-f]*[a-f])[0-9a-f]{16,64}")


def _masked(value: Any) -> Any:
    """``details`` with every number masked in each value, the gateway's own hex identifiers kept whole."""
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return value if _OUR_ID.fullmatch(value) else mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        text = str(value)
        return value if mask_text(text) == text else mask_text(text)
    return mask_text(str(value))


async def record(redis: aioredis.Redis, keys: Keys, who: str, what: str, customer_phone: str | None = None,
                 where: str = "", reason: str = "", **details: Any) -> str:  # fmt: skip
    """Append an entry (and drop those older than ``AUDIT_KEPT``); its stream id. ``what`` is a lower-case word
    (``ValueError`` otherwise); ``details`` are JSON values (masked like the reason)."""
    if not WHAT.fullmatch(what):
        raise ValueError(f"audit 'what' must be a lower-case word of at most 40 letters, digits or '_', got {what!r}")
    now = time.time()
    fields: dict[str, str] = {"who": _clean(who, WHO_MAX) or "system", "what": what, "at": f"{now:.3f}",
                              "where": str(where)[:64]}  # fmt: skip
    if customer_phone:
        fields["customer"] = customer_ref(keys, customer_phone)
    if reason:
        fields["reason"] = _clean(reason, REASON_MAX)
    if details:
        fields["details"] = json.dumps(_masked(details), ensure_ascii=False)[:DETAIL_MAX]
    minid = int((now - AUDIT_KEPT) * 1000)
    entry_id = await redis.xadd(keys.audit(), fields, minid=minid, approximate=False)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def trim(redis: aioredis.Redis, keys: Keys, before_ts: float) -> int:
    """Drop the entries written before ``before_ts`` (epoch seconds): the retention purge. How many went."""
    return int(await redis.xtrim(keys.audit(), minid=int(before_ts * 1000), approximate=False))


@dataclass(frozen=True, slots=True)
class Query:
    """What a reader asks for; empty fields match everything. ``customer`` is a ``customer_ref`` (never a number)."""

    who: str = ""
    what: str = ""
    customer: str = ""
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, inclusive

    def matches(self, entry: dict[str, Any]) -> bool:
        return ((not self.who or entry["who"] == self.who) and (not self.what or entry["what"] == self.what)
                and (not self.customer or entry["customer"] == self.customer))  # fmt: skip


def entry_of(entry_id: bytes | str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    g = {k.decode(): v.decode() for k, v in raw.items()}
    try:
        details = json.loads(g["details"]) if g.get("details") else {}
    except ValueError:  # cut at DETAIL_MAX: shown as the text it is
        details = {"text": g["details"]}
    return {"id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id, "at": float(g.get("at") or 0),
            "who": g.get("who", ""), "what": g.get("what", ""), "customer": g.get("customer", ""),
            "where": g.get("where", ""), "reason": g.get("reason", ""), "details": details}  # fmt: skip


def _bounds(query: Query, cursor: str) -> tuple[str, str]:
    high = f"({cursor}" if cursor else (str(int(query.until * 1000)) if query.until else "+")
    low = str(int(query.since * 1000)) if query.since else "-"
    return high, low


async def page(redis: aioredis.Redis, keys: Keys, query: Query, cursor: str = "", limit: int = 50
               ) -> tuple[list[dict[str, Any]], str]:  # fmt: skip
    """Up to ``limit`` matching entries, newest first, older than ``cursor`` (a stream id; "" for the newest), and
    the cursor of the next page ("" when there is none). A filter matching few entries examines at most
    ``SCAN_MAX`` per call: the page may then be short while the cursor still goes on."""
    high, low = _bounds(query, cursor)
    out: list[dict[str, Any]] = []
    scanned = 0
    count = BATCH if (query.who or query.what or query.customer) else limit  # unfiltered: the page itself
    while True:
        rows = await redis.xrevrange(keys.audit(), high, low, count=count)
        for entry_id, raw in rows:
            scanned += 1
            entry = entry_of(entry_id, raw)
            if query.matches(entry):
                out.append(entry)
                if len(out) == limit:
                    return out, entry["id"]
            if scanned >= SCAN_MAX:
                return out, entry["id"]
        if len(rows) < count:
            return out, ""
        last = rows[-1][0]
        high = f"({last.decode() if isinstance(last, bytes) else last}"


async def collect(redis: aioredis.Redis, keys: Keys, query: Query, limit: int = EXPORT_MAX) -> list[dict[str, Any]]:
    """Every matching entry (at most ``limit``), newest first — an export."""
    out: list[dict[str, Any]] = []
    cursor = ""
    while len(out) < limit:
        found, cursor = await page(redis, keys, query, cursor, min(1000, limit - len(out)))
        out.extend(found)
        if not cursor:
            break
    return out


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(entries: Iterable[dict[str, Any]]) -> str:
    """Entries as CSV (UTF-8; a header row; ``time`` in UTC ISO 8601 beside ``at``)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for e in entries:
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))
        writer.writerow([_cell(v) for v in (e["id"], f"{e['at']:.3f}", iso, e["who"], e["what"], e["customer"],
                                             e["where"], e["reason"], e["details"] or "")])  # fmt: skip
    return buf.getvalue()


def cli_operator() -> str:
    """Who runs a command-line tool, as the trail names them: ``cli:<login name>`` (``cli:uid-<n>`` without one)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no name for this uid (a bare container)
        return f"cli:uid-{os.getuid()}"
