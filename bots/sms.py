"""SMS text sizes: GSM-7 (160 per message, 153 per part of a long one) or UCS-2 (70 / 67).

A Chinese reply is UCS-2; characters outside the BMP (emoji) take two UCS-2 units; GSM-7
extension characters (``{}[]~^|€\\``) take two septets.
"""

from __future__ import annotations

import re

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")
_BREAK = re.compile(r"(?<=[。！？；.!?;\n])")


def encoding(text: str) -> str:
    return "gsm7" if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text) else "ucs2"


def units(text: str) -> int:
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding(text) == "gsm7":
        return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """How many SMS parts ``text`` needs (0 for empty)."""
    n = units(text)
    if n == 0:
        return 0
    single, part = (160, 153) if encoding(text) == "gsm7" else (70, 67)
    return 1 if n <= single else -(-n // part)


def fit(text: str, max_parts: int, ellipsis: str = "…") -> str:
    """``text`` cut at the last sentence (or, failing that, word) boundary so that it fits in
    ``max_parts`` parts, with an ellipsis; never mid-word."""
    if segments(text) <= max_parts:
        return text
    sentences = [s for s in _BREAK.split(text) if s]
    out = ""
    for sentence in sentences:
        if segments(out + sentence + ellipsis) > max_parts:
            break
        out += sentence
    if not out:  # one long sentence: cut at a space, or (Chinese has none) at a character
        words = re.split(r"(?<= )", sentences[0]) if " " in sentences[0] else list(sentences[0])
        for word in words:
            if segments(out + word + ellipsis) > max_parts:
                break
            out += word
    return out.rstrip() + ellipsis
