"""Features, by script: Chinese runs give character uni- and bigrams (with run boundaries);
Latin words give the word, word bigrams and character 2–5-grams inside the word (typos,
pinyin, inflections). Digits are folded to ``0``: a number is not a reason to pick an intent.
"""

from __future__ import annotations

import re
from itertools import pairwise

_DIGITS = str.maketrans("123456789", "000000000")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_LATIN = re.compile(r"[a-z]+|0+")
LATIN_NGRAMS = (2, 3, 4, 5)


def features(model_text: str) -> list[str]:
    text = model_text.translate(_DIGITS)
    grams: list[str] = []
    for run in _CJK.findall(text):
        padded = f"^{run}$"
        grams.extend(padded[1:-1])
        grams.extend(padded[i : i + 2] for i in range(len(padded) - 1))
    words = _LATIN.findall(text)
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in LATIN_NGRAMS:
            grams.extend(padded[i : i + n] for i in range(size - n + 1))
    grams.extend("w " + w for w in words)
    grams.extend(f"b {a} {b}" for a, b in pairwise(words))
    if "?" in text:
        grams.append("?")
    if "!" in text:
        grams.append("!")
    return grams
