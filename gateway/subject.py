"""Data-subject requests (PIPL arts. 44–47): everything the deployment holds about one customer, found, exported
(decrypted) and erased — in every key family, on every master of a Redis Cluster.

How a customer's data is found (``Finder``, one SCAN of the deployment's prefix per pass):

* **Identity.** The phone number is the customer. Key names never hold it (``rkeys``: ``cid``), so the finder
  starts from tokens: ``cid(phone)`` (the SMS sender's ``{sender:sms:<cid>}`` tag, otp-rate, outbox recipients,
  bss subscriber), ``cid("phone:<n>")`` (cases/complaints by owner), the handoff history's keyed hash of the number
  and the consent record. A social or forum account linked to the number (a binding whose value unseals to it) adds
  its ``{sender:<channel>:<cid>}`` tag; a conversation found (its log key) adds its id; a conversation's meta adds
  its sender (clear: a web chat visitor id, a Socket.IO session) and that sender's keyed hashes.
* **Content.** Every value is read, sealed parts unsealed (``Keys.unseal``), JSON escapes undone, full-width digits
  folded (NFKC) and searched for the number in any spelling (``13800138000``, ``+86 138-0013-8000``, ``１３８…``,
  base64 of it) and for the tokens above. A match in a record found by content (a case, a chat, an episode) adds
  that record's ids, so the finder runs passes until no new token appears (usually two).

What a deletion does, per kind of key:

* a key whose *name* carries one of the customer's tokens is the customer's: deleted whole (conversation state,
  logs, meta, dedupe, late answers, bindings, one-time codes, handoff chats and clocks, episodes, history indexes,
  surveys, visitor and Socket.IO outboxes, outbox queues, WeChat/Weibo/forum state, per-chat report records);
* a string found by content is deleted; a record hash found by content (a handoff chat, an episode, a survey, a
  conversation's meta, an old complaint ticket) is deleted whole;
* a shared structure keeps everyone else's entries and loses the customer's: XDEL (conversation-independent
  streams: callbacks, surveys, handoff requests, case events mentioning the number), LREM (breaches, dead letters,
  incident broadcast numbers, incident samples), ZREM (queues, timers, indexes, report quality days, outbox due
  sets), HDEL (incident links, callbacks done, NLU review samples, SMS opt-outs), SREM (agents' chats, stages);
* **a complaint case is anonymised, not deleted**: it is the operator's record of a complaint (regulators ask for
  complaint statistics), so it keeps its ticket, type, severity, department, assignee, stage and clock times — and
  loses every customer field (owner, sender, phone, summary, facts, followup, conversation, linked chats and texts:
  ``ERASED``), its notes, and every text of its history entries (who moved it where and when stays);
* **reports keep only anonymous aggregates**: the hourly and daily counters (``{reports}:h:*``, ``{reports}:d:*``)
  are never touched (they hold counts, no customer); per-chat inspections and milestones go with the chat;
* agent accounts, sessions, presence, the server key and NLU models are never read for a request (they hold no
  customer's data), nor are they changed.

Limits: a request reads the whole deployment once per pass (a key's entries a thousand at a time, only the
customer's kept), so it takes seconds to minutes on a large Redis: an admin's occasional job, not a customer's
turn. Data written while it runs (the customer still talking) is new data: run it when the customer's conversations
have ended, or run it again. The audit trail is never searched nor changed (it names customers by keyed hash only).

On disk: Redis keeps what it stores in its persistence files. With the embedded Redis (``<data_dir>/redis``) a
deletion ends with ``BGSAVE`` and ``BGREWRITEAOF`` and waits for both: the RDB snapshot and the append-only files
are rewritten from the data as it is now, so the number is gone from disk too. With an external Redis (or a
Cluster) the gateway cannot reach its files: the operator must rewrite the persistence of every master (``redis-cli
BGREWRITEAOF``/``BGSAVE`` on each, and expire backups by their own schedule) — ``delete`` reports this.
"""

from __future__ import annotations

import base64
import json
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.privacy import PHONE
from gateway.rkeys import Keys
from gateway.vault import KeyringError

AnyRedis = Any  # redis.asyncio.Redis or RedisCluster
ERASED = "erased"
SEALED = re.compile(r"v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{16,}")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SEPARATORS = re.compile(r"(?<=[0-9])[\s\-().]+(?=[0-9])")
_DIGIT_RUN = re.compile(r"(?<![0-9])\+?[0-9]{5,16}(?![0-9])")
_TAG = re.compile(r"\{sender:[a-z_]+:[0-9a-f]{16,}\}")
_LOG = re.compile(r":log:(?P<t>[^:]+)$")
_CONV = re.compile(r"^\{conv:(?P<t>[^}]+)\}:meta$")
_EPISODE = re.compile(r"^\{handoff\}:episode:(?P<t>.+)$")
_CHAT = re.compile(r"^\{handoff\}:chat:(?P<t>[^:]+)$")
_CASE = re.compile(r"^\{cases\}:case:(?P<t>[^:]+)$")
_CASE_PART = re.compile(r"^\{cases\}:(?P<kind>history|notes):(?P<t>[^:]+)$")
_TASK_ID = re.compile(r'\\?"(?:id|task|task_id)\\?"\s*:\s*\\?"([^"\\]{8,64})')
_RECORD = re.compile(
    r"^(\{complaint:[^}]+\}|\{handoff\}:(chat|episode|survey|clocks):[^:]+|\{conv:[^}]+\}:meta|\{sender:[^}]+\}[^:]*:log:.+)$"
)
# never read, never changed: accounts, sessions, secrets, models, aggregates, process liveness
_SKIP = re.compile(
    r"^(server-key|audit$|instance:|live:|\{handoff\}:(agent:[^:]+|agents|presence:.*|session:.*|alive|started)$|"
    r"\{reports\}:[hd]:|\{nlu\}:(model|retrain):|\{login\}:|seq:|\{incidents\}:(counts|claim|seq|mute):)"
)
MIN_TOKEN = 8  # shorter ids (a Telegram chat id of six digits) are matched through their keyed hashes only
CASE_CUSTOMER_FIELDS = ("owner", "sender", "phone", "summary", "facts", "followup", "conversation", "linked",
                        "chats")  # fmt: skip
CASE_ENTRY_TEXTS = ("text", "note", "summary", "comment", "answer", "phone", "sender", "owner", "reason")
FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(rx)) for name, rx in (
    ("bindings", r"^\{sender:[^}]+\}:(bind|otp)$|^otp-rate:"),
    ("conversations", r"^\{sender:|^\{conv:"),
    ("handoff_chats", r"^\{handoff\}:(chat|clocks|queue|timers|agent|breaches)|^handoff:requests"),
    ("history", r"^\{handoff\}:(episode|history|index)"),
    ("surveys", r"^\{handoff\}:survey"),
    ("callbacks", r"^\{handoff\}:callback"),
    ("cases", r"^\{cases\}:"),
    ("complaints", r"^\{complaint:|^complaints-of:"),
    ("outbox", r"^\{out:"),
    ("incidents", r"^\{incidents\}:"),
    ("nlu_review", r"^\{nlu\}:"),
    ("webchat", r"^\{visitor:"),
    ("sms", r"^sms:|^\{smpp\}:"),
    ("social", r"^\{(wechat|weibo|forum)\}:|^tg:|^\{(wechat|weibo)\}:claim"),
    ("reports", r"^\{reports\}:"),
    ("consent", r"^consent:"),
    ("bss", r"^bss:"),
))  # fmt: skip


def family_of(name: str) -> str:
    """The kind of data a key (its name without the prefix) holds, as reported in exports and counts."""
    return next((fam for fam, rx in FAMILIES if rx.search(name)), "other")


def national(raw: str, country_code: str = "86") -> str:
    """A phone number as the gateway stores it: NFKC (full-width digits), separators dropped, the home country code
    dropped (``+86 138-0013-8000`` → ``13800138000``); another country's keeps ``+``. ``ValueError`` if none."""
    text = re.sub(r"[\s\-().]", "", unicodedata.normalize("NFKC", raw or ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.fullmatch(r"\+?[0-9]{5,16}", text):
        raise ValueError("not a phone number")
    if text.startswith("+" + country_code):
        return text[1 + len(country_code) :]
    if country_code == "86" and len(text) == 13 and text.startswith("86"):
        return text[2:]
    return text


def readable(keys: Keys, raw: bytes | str) -> str:
    """A stored value as text a person (and the finder) can read: sealed parts opened, JSON ``\\uXXXX`` escapes
    undone. A sealed part that does not open stays as it is."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw

    def opened(m: re.Match[str]) -> str:
        try:
            return keys.unseal(m.group(0))
        except KeyringError:
            return m.group(0)

    for _ in range(3):  # a sealed value may hold JSON with sealed parts of its own
        if "v1." not in text:
            break
        text = SEALED.sub(opened, text)
    if "\\u" in text:
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text


@dataclass
class Item:
    """One entry of a key: ``ident`` removes it (hash field, list value, set/zset member, stream id; None for a
    string), ``text`` is its readable content."""

    ident: bytes | None
    raw: bytes
    text: str


@dataclass
class Hit:
    key: str  # the full key name
    name: str  # without the prefix
    kind: str  # string | hash | list | set | zset | stream
    family: str
    whole: bool  # the customer's whole key (else only ``items``)
    items: list[Item] = field(default_factory=list)


class Finder:
    """Who the customer is (tokens) and whether a text mentions them."""

    def __init__(self, keys: Keys, phone: str, country_code: str = "86", server_key: bytes = b"") -> None:
        self.keys = keys
        self.phone = phone
        self.cc = country_code
        digits = phone.lstrip("+")
        self.digits = {digits, f"{country_code}{digits}"} if not phone.startswith("+") else {digits}
        self.b64 = {base64.b64encode(v.encode()).decode().rstrip("=") for v in (phone, f"+{country_code}{phone}")}
        self.tokens: set[str] = {keys.cid(phone), keys.cid(f"phone:{phone}")}
        if server_key:
            from handoff.history import keyed  # the history's keyed hash of the number (handoff/history.py)

            self.tokens.add(keyed(server_key, "phone", digits))
        self.cases: set[str] = set()  # tickets of the customer's cases (anonymised, not deleted)
        self._pattern: re.Pattern[str] | None = None

    def add(self, token: str) -> bool:
        if len(token) < MIN_TOKEN or token in self.tokens:
            return False
        self.tokens.add(token)
        self._pattern = None
        return True

    @property
    def pattern(self) -> re.Pattern[str]:
        """Any token, whole: not inside a longer id (``telegram:515151`` is not ``telegram:5151512``)."""
        if self._pattern is None:
            alternatives = "|".join(re.escape(t) for t in sorted(self.tokens, key=len, reverse=True))
            self._pattern = re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])")
        return self._pattern

    def add_sender(self, channel: str, sender: str) -> bool:
        """A conversation's sender: its tag, its keyed hashes (cases by owner, history), and itself when long."""
        new = self.add(self.keys._tag(channel, sender).split("}")[0] + "}")
        new |= self.add(self.keys.cid(sender)) | self.add(self.keys.cid(f"{channel}:{sender}"))
        return self.add(sender) | self.add(f"{channel}:{sender}") | new

    def number_in(self, text: str) -> bool:
        text = unicodedata.normalize("NFKC", text)  # full-width digits and plus signs folded
        for m in PHONE.finditer(text):
            if re.sub(r"\D", "", m.group(0)) in self.digits:
                return True
        joined = _SEPARATORS.sub("", text)  # 138.0013.8000, (+86) 138 0013 8000
        for candidate in (text, joined):
            if any(re.sub(r"\D", "", m.group(0)) in self.digits for m in _DIGIT_RUN.finditer(candidate)):
                return True
        return any(b in text for b in self.b64)

    def mentions(self, text: str) -> bool:
        return self.number_in(text) or self.pattern.search(text) is not None

    def owns(self, name: str) -> bool:
        return self.pattern.search(name) is not None


# ---- reading the deployment ------------------------------------------------------------------------------------
async def scan(redis: AnyRedis, prefix: str, batch: int = 500) -> AsyncIterator[list[bytes]]:
    """Every key of the deployment, ``batch`` at a time; a Cluster client scans every master."""
    names: list[bytes] = []
    async for key in redis.scan_iter(match=f"{glob_escape(prefix)}*", count=1000):
        names.append(key)
        if len(names) >= batch:
            yield names
            names = []
    if names:
        yield names


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


CHUNK = 1000  # entries read per round trip: a big shared key is read in pieces, only its matches kept


async def entries(redis: AnyRedis, keys: Keys, key: bytes, kind: str) -> AsyncIterator[Item]:
    """A key's entries, readable, read ``CHUNK`` at a time (HSCAN/SSCAN/ZSCAN, LRANGE and XRANGE pages)."""
    if kind == "string":
        raw = await redis.get(key) or b""
        yield Item(None, raw, readable(keys, raw))
    elif kind == "hash":
        async for f, v in redis.hscan_iter(key, count=CHUNK):
            yield Item(f, v, readable(keys, f) + "\n" + readable(keys, v))
    elif kind in ("set", "zset"):
        members = redis.sscan_iter(key, count=CHUNK) if kind == "set" else redis.zscan_iter(key, count=CHUNK)
        async for m in members:
            member = m[0] if isinstance(m, tuple) else m
            yield Item(member, member, readable(keys, member))
    elif kind == "list":
        start = 0
        while page := await redis.lrange(key, start, start + CHUNK - 1):
            for v in page:
                yield Item(v, v, readable(keys, v))
            start += CHUNK
    elif kind == "stream":
        after = "-"
        while page := await redis.xrange(key, after, "+", count=CHUNK):
            for sid, fields in page:
                yield _stream_item(keys, sid, fields)
            after = "(" + page[-1][0].decode()


_SIZE = {"hash": "HLEN", "set": "SCARD", "zset": "ZCARD", "list": "LLEN", "stream": "XLEN"}
_READ = {"string": ("GET",), "hash": ("HGETALL",), "set": ("SMEMBERS",), "zset": ("ZRANGE",), "list": ("LRANGE",),
         "stream": ("XRANGE",)}  # fmt: skip
_READ_ARGS = {"zset": (0, -1), "list": (0, -1), "stream": ("-", "+")}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_many(redis: AnyRedis, keys: Keys, names: list[bytes]) -> list[tuple[str, list[Item]]]:
    """Each key's kind and entries: three pipelined round trips for a batch (types, sizes, the small keys' values);
    a key over ``CHUNK`` entries is read in pages (``entries``)."""
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.type(name)
    kinds = [_text(t) for t in await pipe.execute()]
    pipe = redis.pipeline(transaction=False)
    for name, kind in zip(names, kinds, strict=True):
        pipe.execute_command(_SIZE.get(kind, "STRLEN"), name)
    sizes = [int(n) for n in await pipe.execute()]
    small = [i for i, kind in enumerate(kinds) if kind == "string" or (kind in _SIZE and sizes[i] <= CHUNK)]
    pipe = redis.pipeline(transaction=False)
    for i in small:
        pipe.execute_command(*_READ[kinds[i]], *([names[i], *_READ_ARGS.get(kinds[i], ())]))
    values = dict(zip(small, await pipe.execute(), strict=True)) if small else {}
    out: list[tuple[str, list[Item]]] = []
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if i in values:
            out.append((kind, _items(keys, kind, values[i])))
        elif kind in _SIZE:
            out.append((kind, [item async for item in entries(redis, keys, name, kind)]))
        else:
            out.append((kind, []))  # gone meanwhile, or a type the gateway does not write
    return out


def _items(keys: Keys, kind: str, value: Any) -> list[Item]:
    if kind == "string":
        raw = value or b""
        return [Item(None, raw, readable(keys, raw))]
    if kind == "hash":
        return [Item(f, v, readable(keys, f) + "\n" + readable(keys, v)) for f, v in value.items()]
    if kind == "stream":
        return [_stream_item(keys, sid, fields) for sid, fields in value]
    return [Item(v, v, readable(keys, v)) for v in value]


def _stream_item(keys: Keys, sid: bytes, fields: dict[bytes, bytes]) -> Item:
    raw = json.dumps({k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}).encode()
    text = json.dumps({k.decode(): readable(keys, v) for k, v in fields.items()}, ensure_ascii=False)
    return Item(sid, raw, text)


def _learn(finder: Finder, name: str, kind: str, items: list[Item]) -> bool:
    """A key found to be the customer's: the ids it names (conversation, episode, sender tag) and, for a
    conversation's meta or a binding, who it is."""
    new = False
    for rx in (_LOG, _CONV, _EPISODE, _CHAT):
        m = rx.search(name)
        if m:
            new |= finder.add(m.group("t"))
    for tag in _TAG.findall(name):
        new |= finder.add(tag)
    if _CONV.search(name) and kind == "hash":
        fields = {i.ident.decode(): i.text.split("\n", 1)[1] for i in items if i.ident is not None}
        if fields.get("channel") and fields.get("sender"):
            new |= finder.add_sender(fields["channel"], fields["sender"])
    if _EPISODE.search(name) and kind == "hash":
        for i in items:
            if i.ident == b"customer_key":
                new |= finder.add(i.text.split("\n", 1)[1])
    m = _CASE.search(name)
    if m and m.group("t") not in finder.cases:
        finder.cases.add(m.group("t"))
        new = True
    return new


async def find(redis: AnyRedis, keys: Keys, finder: Finder, max_passes: int = 8) -> list[Hit]:
    """Every key holding the customer's data, with the entries that are theirs (passes until no new token)."""
    hits: dict[str, Hit] = {}
    plen = len(keys.prefix)
    for _ in range(max_passes):
        learned = False
        async for batch in scan(redis, keys.prefix):
            wanted = [k for k in batch if not _SKIP.search(k.decode("utf-8", "replace")[plen:])]
            for key, (kind, items) in zip(wanted, await read_many(redis, keys, wanted), strict=True):
                learned |= _consider(finder, hits, key.decode("utf-8", "replace"), plen, kind, items)
        if not learned:
            break
    return sorted(hits.values(), key=lambda h: (h.family, h.name))


def _consider(finder: Finder, hits: dict[str, Hit], full: str, plen: int, kind: str, items: list[Item]) -> bool:
    """Whether the key is the customer's (whole), or which of its entries are; what it teaches about them."""
    name = full[plen:]
    case = _CASE_PART.search(name)
    whole = finder.owns(name) or bool(case and case.group("t") in finder.cases)
    record = bool(_RECORD.search(name) or _CASE.search(name))  # one record: all of it when it matches
    mine = items if whole else [i for i in items if finder.mentions(i.text)]
    if not mine and not whole:
        return False
    if not whole and (kind == "string" or record):
        whole, mine = True, items  # a record found by its content is the customer's record
    if name not in hits or len(mine) > len(hits[name].items) or whole != hits[name].whole:
        hits[name] = Hit(full, name, kind, family_of(name), whole, mine)
    if whole or kind != "stream":
        return _learn(finder, name, kind, items)
    if family_of(name) == "callbacks":  # a callback task's id names it in the done hash
        return any([finder.add(t) for i in mine for t in _TASK_ID.findall(i.text)])
    return False


# ---- export ------------------------------------------------------------------------------------------------------
def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _entry(hit: Hit, item: Item) -> Any:
    if hit.kind == "hash":
        name, _, value = item.text.partition("\n")
        return {"field": name, "value": _value(value)}
    if hit.kind == "stream":
        fields = {k: _value(v) for k, v in json.loads(item.text).items()} if item.text.startswith("{") else item.text
        return {"id": item.ident.decode() if item.ident else "", "fields": fields}
    return _value(item.text)


def export_document(phone: str, hits: Iterable[Hit], now: float | None = None) -> dict[str, Any]:
    """The JSON document of a data-subject export: every key by family, decrypted."""
    families: dict[str, list[dict[str, Any]]] = {}
    for hit in hits:
        families.setdefault(hit.family, []).append({
            "key": hit.name, "type": hit.kind, "whole": hit.whole,
            "entries": [_entry(hit, i) for i in hit.items],
        })  # fmt: skip
    return {
        "subject": phone,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time())),
        "counts": {fam: len(entries) for fam, entries in sorted(families.items())},
        "data": families,
    }


# ---- delete ------------------------------------------------------------------------------------------------------
def _scrub(finder: Finder, text: str) -> str:
    """``text`` with every spelling of the number replaced."""
    text = unicodedata.normalize("NFKC", text)
    for m in list(PHONE.finditer(text)) + list(_DIGIT_RUN.finditer(text)):
        if re.sub(r"\D", "", m.group(0)) in finder.digits:
            text = text.replace(m.group(0), "***")
    return text if not finder.number_in(text) else _DIGIT_RUN.sub("***", _SEPARATORS.sub("", text))


async def _anonymise_case(redis: AnyRedis, keys: Keys, hit: Hit) -> None:
    """The case keeps its ticket, type, severity, department, assignee, stage and clocks; its customer goes."""
    empty = {"facts": "{}", "followup": "", "linked": "[]", "chats": "[]"}  # JSON fields: empty, still decodable
    mapping = {f: empty.get(f, ERASED) for f in CASE_CUSTOMER_FIELDS}
    await redis.hset(hit.key, mapping={**mapping, "erased_at": str(time.time())})


async def _scrub_history(redis: AnyRedis, keys: Keys, finder: Finder, hit: Hit) -> None:
    """A case's history keeps who moved it where and when; every text in it is erased."""
    for index, raw in enumerate(await redis.lrange(hit.key, 0, -1)):
        try:
            entry = json.loads(keys.unseal(raw))
        except (ValueError, KeyringError):
            continue
        if not isinstance(entry, dict):
            continue
        for name in CASE_ENTRY_TEXTS:
            if name in entry:
                entry[name] = ERASED
        text = _scrub(finder, json.dumps(entry, ensure_ascii=False))
        await redis.lset(hit.key, index, keys.seal(text))


async def _remove(redis: AnyRedis, hit: Hit) -> int:
    idents = [i.ident for i in hit.items if i.ident is not None]
    if not idents:
        return 0
    if hit.kind == "hash":
        return int(await redis.hdel(hit.key, *idents))
    if hit.kind == "set":
        return int(await redis.srem(hit.key, *idents))
    if hit.kind == "zset":
        return int(await redis.zrem(hit.key, *idents))
    if hit.kind == "stream":
        return int(await redis.xdel(hit.key, *idents))
    if hit.kind == "list":
        return sum([int(await redis.lrem(hit.key, 0, v)) for v in idents])
    return 0


async def erase(redis: AnyRedis, keys: Keys, finder: Finder, hits: Iterable[Hit]) -> dict[str, int]:
    """Delete what ``find`` found (see the module's doc): counts of keys deleted, entries removed, cases
    anonymised."""
    counts = {"keys_deleted": 0, "entries_removed": 0, "cases_anonymised": 0}
    for hit in hits:
        if _CASE.search(hit.name):
            await _anonymise_case(redis, keys, hit)
            counts["cases_anonymised"] += 1
        elif (m := _CASE_PART.search(hit.name)) and m.group("kind") == "history":
            await _scrub_history(redis, keys, finder, hit)
        elif hit.whole:
            counts["keys_deleted"] += int(await redis.delete(hit.key))
        else:
            counts["entries_removed"] += await _remove(redis, hit)
    return counts


async def rewrite_persistence(redis: aioredis.Redis, timeout: float = 120.0) -> None:
    """The embedded Redis's files rewritten from the data as it is now (after a deletion): a new RDB snapshot and a
    new append-only file, waited for."""
    import asyncio

    from redis.exceptions import ResponseError

    async def idle() -> bool:
        info = await redis.info("persistence")
        busy = ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "aof_rewrite_scheduled")
        return not any(int(info.get(k, 0)) for k in busy)

    deadline = time.monotonic() + timeout
    for command in ("BGSAVE", "BGREWRITEAOF"):
        while not await idle():
            if time.monotonic() > deadline:
                raise TimeoutError("Redis did not finish rewriting its files")
            await asyncio.sleep(0.1)
        try:
            await redis.execute_command(command)
        except ResponseError:  # one already running: wait for it, then ours
            await asyncio.sleep(0.2)
            await redis.execute_command(command)
    while not await idle():
        if time.monotonic() > deadline:
            raise TimeoutError("Redis did not finish rewriting its files")
        await asyncio.sleep(0.1)


# ---- a request, end to end ------------------------------------------------------------------------------------------
async def server_secret(redis: AnyRedis, keys: Keys, configured: str = "") -> bytes:
    """The deployment's server key (``GATEWAY_SECRET_KEY``, else the one kept in Redis): the history's keyed hashes."""
    if configured:
        return configured.encode()
    return bytes(await redis.get(keys.server_key()) or b"")


async def gather(redis: AnyRedis, keys: Keys, phone: str, country_code: str = "86", secret: bytes = b""
                 ) -> tuple[Finder, list[Hit]]:  # fmt: skip
    """Everything held about the customer with this number (``ValueError`` when it is not a number)."""
    number = national(phone, country_code)
    finder = Finder(keys, number, country_code, secret)
    return finder, await find(redis, keys, finder)


async def delete(redis: AnyRedis, keys: Keys, finder: Finder, hits: list[Hit], embedded: bool) -> dict[str, Any]:
    """Erase what ``gather`` found, keep a consent record that withdraws every channel, and — on the embedded Redis
    — rewrite its files (see the module's doc). The counts, and what the operator still has to do."""
    from gateway import consent  # consent records survive an erasure as a withdrawal

    counts: dict[str, Any] = dict(await erase(redis, keys, finder, hits))
    await consent.withdraw_all(redis, keys, finder.phone)
    counts["families"] = sorted({h.family for h in hits})
    if embedded:
        await rewrite_persistence(redis)
        counts["persistence"] = "rewritten"
    else:
        counts["persistence"] = ("external Redis: run BGREWRITEAOF and BGSAVE on every master (and expire backups) "
                                 "so the deleted data leaves its files")  # fmt: skip
    return counts
