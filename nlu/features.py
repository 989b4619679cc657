"""Features: character n-grams plus token uni/bigrams over the normalised text.

Digits are folded to ``0`` (a phone number or amount is not a reason to pick an intent).
Chinese characters are single tokens, Latin words whole tokens, so token bigrams capture
Chinese words and English phrases alike; character n-grams capture typos and pinyin.
"""

from __future__ import annotations

import re
from itertools import pairwise

_DIGITS = str.maketrans("123456789", "000000000")
_TOKENS = re.compile(r"[a-z]+|0+|[^\sa-z0\W]|[?？!！]")
CHAR_NGRAMS = (2, 3, 4)


def features(model_text: str) -> list[str]:
    text = model_text.translate(_DIGITS)
    grams: list[str] = []
    padded = f" {text} "
    size = len(padded)
    for n in CHAR_NGRAMS:
        grams.extend(padded[i : i + n] for i in range(size - n + 1))
    tokens = _TOKENS.findall(text)
    grams.extend("w " + t for t in tokens)
    grams.extend(f"b {a} {b}" for a, b in pairwise(tokens))
    if len(tokens) <= 2:
        grams.append("short")
    return grams
