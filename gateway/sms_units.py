"""SMS units, one definition for everyone (a leaf: imports nothing of ours): the GSM 03.38 alphabet and its
extension table, which texts are GSM-7 (160 per message, 153 per part of a long one) or UCS-2 (70 / 67), how
many parts a text needs, how to cut one to fit, and the GSM-7 codec SMPP uses.

A Chinese reply is UCS-2; characters outside the BMP (emoji) take two UCS-2 units; GSM-7
extension characters (``{}[]~^|€\\``) take two septets.
"""

from __future__ import annotations

import re

# GSM 03.38 default alphabet (index = septet) and its extension table (after 0x1B)
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|",
           0x65: "€"}  # fmt: skip
_GSM_ENC = {ch: bytes([i]) for i, ch in enumerate(GSM_BASIC) if ch != "\x1b"}
_GSM_ENC.update({ch: bytes([0x1B, code]) for code, ch in GSM_EXT.items()})
GSM7_BASIC = set(GSM_BASIC) - {"\x1b"}
GSM7_EXTENDED = set(GSM_EXT.values())


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


def gsm_encode(text: str) -> bytes:
    return b"".join(_GSM_ENC[ch] for ch in text)


def gsm_decode(data: bytes) -> str:
    out, escape = [], False
    for b in data:
        if escape:
            out.append(GSM_EXT.get(b, " "))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(GSM_BASIC[b & 0x7F])
    return "".join(out)
