"""Features, by script: Chinese runs give character uni- and bigrams (with run boundaries);
Latin words give the word, word bigrams and character 2–5-grams inside the word (typos,
pinyin, inflections). Digits are folded to ``0``: a number is not a reason to pick an intent.
Also: ``?`` and ``!``, an ``@`` mention or ``#`` tag (posts on social media), and a long text's
length (9–20 or over 20 Chinese characters + Latin words): a "thanks" or a "no" is short, a
grievance seldom is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

from nlu.normalize import CJK

_DIGITS = str.maketrans("123456789", "000000000")
_CJK = re.compile(CJK + "+")
_LATIN = re.compile(r"[a-z]+|0+")
LATIN_NGRAMS = (2, 3, 4, 5)


@lru_cache(maxsize=65536)
def _word_grams(word: str) -> tuple[str, ...]:
    """A Latin word's character n-grams (with word boundaries) and the word itself; words
    repeat across messages, so this is cached."""
    padded = f" {word} "
    size = len(padded)
    grams = [padded[i : i + n] for n in LATIN_NGRAMS for i in range(size - n + 1)]
    grams.append("w " + word)
    return tuple(grams)


def features(model_text: str) -> list[str]:
    text = model_text.translate(_DIGITS)
    grams: list[str] = []
    for run in _CJK.findall(text):
        padded = f"^{run}$"
        grams.extend(padded[1:-1])
        grams.extend(padded[i : i + 2] for i in range(len(padded) - 1))
    words = _LATIN.findall(text)
    for word in words:
        grams.extend(_word_grams(word))
    grams.extend(f"b {a} {b}" for a, b in pairwise(words))
    for mark in "?!@#":
        if mark in text:
            grams.append(mark)
    size = sum(map(len, _CJK.findall(text))) + len(words)
    if size > 8:  # nothing for short texts: a short text must be known by what it says
        grams.append("#len9" if size <= 20 else "#len21")
    return grams
