"""Masking: the one place that decides what of a customer's identifiers may be shown or logged.

A leaf: it imports nothing of ours, so channels, bots, handoff and the core all use it.

``mask_text`` masks what NLU found (entity spans) *and* everything a pattern recognises — mainland mobile
numbers (with or without +86, spaces or dashes, full-width digits too), 18-digit ID card numbers, bank-card
numbers (13–19 digits) and one-time codes, PINs and PUKs next to their word (验证码, 动态密码, PUK码, code, PIN…)
— so a text no one parsed (a bot's reply, an SMS in the outbox, a provider's error) is masked all the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_D = "[0-9０-９]"  # an ASCII or full-width digit
_SEP = r"[\s\-－]?"
PHONE = re.compile(
    rf"(?<![0-9０-９])(?:(?:\+|＋)?(?:86|８６){_SEP})?[1１][3-9３-９]{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}(?![0-9０-９])"
)
ID_CARD = re.compile(rf"(?<![0-9０-９]){_D}{{17}}[0-9０-９Xx](?![0-9０-９])")
# the gateway's own numbers: a kind, the date, a sequence (``TS2026120600001``: handoff/tickets.py makes only these
# kinds). 13 digits like a card's, but an agent reading a transcript needs them whole: not masked as cards
OWN_NUMBER_KINDS = ("TS", "CB")
_NOT_OWN = "".join(f"(?<!{kind})" for kind in OWN_NUMBER_KINDS)
BANK_CARD = re.compile(rf"(?<![0-9０-９]){_NOT_OWN}(?:{_D}{_SEP}?){{12,18}}{_D}(?![0-9０-９])")
# one-time codes, PINs and PUKs: a keyword, a short gap (which may hold a masked number: "PUK code for 138****8000
# is …"), then 4–8 digits, possibly spaced ("123 456")
_CODE_WORD = (r"验证码|校验码|动态码|动态密码|短信码|确认码|授权码|激活码|提取码|PUK\s?码|PIN\s?码|"
              r"(?<![A-Za-z])(?i:code|passcode|password|otp|pin|puk)(?![A-Za-z])")  # fmt: skip
_GAP = rf"(?:[^0-9０-９]{{0,8}}?|[^0-9０-９]{{0,8}}?{_D}{{3}}\*{{4}}{_D}{{4}}[^0-9０-９]{{0,8}}?)"
OTP = re.compile(rf"({_CODE_WORD})({_GAP})({_D}(?:[ \-]?{_D}){{3,7}})(?![0-9０-９])")
_DIGITS4 = re.compile(rf"{_D}(?:[ \-]?{_D}){{3}}")
# what a number to mask needs (each pattern above is slow to search: lookbehinds defeat re's quick scan): a run of
# digits (single separators between them) of 11+ (a phone), 13+ (a card), 17+ (an ID card); a code's keyword
_RUN = re.compile(rf"{_D}(?:{_SEP}{_D})*")
_SEPS = re.compile(r"[\s\-－]")
_CODE_HINTS = ("码", "code", "pass", "otp", "pin", "puk")
_STARS = re.compile("[0-9０-９]")
_FULL = str.maketrans("０１２３４５６７８９＋－", "0123456789+-")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text.translate(_FULL))


def mask_phone(number: str) -> str:
    """``138****8000``: the first three and last four digits of a mobile number (+86 dropped)."""
    digits = _digits(number)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_id_card(number: str) -> str:
    return f"{number[:3]}{'*' * (len(number) - 7)}{number[-4:]}" if len(number) > 7 else "*" * len(number)


def mask_card(number: str) -> str:
    digits = _digits(number)
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}"


def mask_text(text: str, entities: Iterable[Any] = ()) -> str:
    """``text`` with every phone, ID-card and bank-card number and one-time code masked. ``entities``
    (objects with ``entity``, ``start``, ``end``, ``value`` — NLU's) are masked first by their spans."""
    if entities:
        out, last = [], 0
        for e in sorted(entities, key=lambda e: e.start):
            if e.entity not in {"phone", "id_card"} or e.start < last:
                continue
            out.append(text[last : e.start])
            out.append(mask_phone(str(e.value)) if e.entity == "phone" else mask_id_card(str(e.value)))
            last = e.end
        out.append(text[last:])
        text = "".join(out)
    if not _DIGITS4.search(text):  # most texts: no run of four digits, nothing to mask
        return text
    longest = max(len(run) - len(_SEPS.findall(run)) for run in _RUN.findall(text))  # digits in the longest run
    if longest >= 17:
        text = ID_CARD.sub(lambda m: mask_id_card(m.group(0)), text)
    if longest >= 11:
        text = PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    if longest >= 13:
        text = BANK_CARD.sub(lambda m: mask_card(m.group(0)), text)  # before codes: a spaced card is not a code
    folded = text.casefold()  # as re's IGNORECASE matches (ſ is s, K is k)
    if not any(hint in folded for hint in _CODE_HINTS):
        return text
    return OTP.sub(lambda m: f"{m.group(1)}{m.group(2)}{_STARS.sub('*', m.group(3))}", text)
