"""Text normalisation: full-width → half-width, traditional → simplified, case folding.

Two forms are produced from one input:

* ``aligned`` keeps one character per input character (NFKC applied per character where the
  result stays one character, OpenCC applied only when it keeps the length), so entity offsets
  found in it are offsets into the customer's original text;
* ``model`` is what the classifier sees: ``aligned`` lower-cased, emoji and runs of repeated
  punctuation squeezed, white space folded.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

_CONVERTER = opencc.OpenCC("t2s")

# Characters that are not letters, digits or CJK, repeated: "？？？" "!!!!" "。。。" → one.
_REPEATED_PUNCT = re.compile(r"([^\w\s])\1+")
_SPACES = re.compile(r"\s+")
# Emoji and pictographs: dropped for the classifier (the urgency layer reads the raw text).
_EMOJI = re.compile("[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\U0000fe0f\U0000200d]+")


class NLUInputError(ValueError):
    """The text cannot be parsed: empty, too long or not a string."""


@dataclass(frozen=True, slots=True)
class Normalised:
    original: str
    aligned: str
    model: str


@lru_cache(maxsize=4096)
def _nfkc_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 else ch


def _width_fold(text: str) -> str:
    if text.isascii():
        return text
    return "".join(_nfkc_char(ch) for ch in text)


def validate(text: object, max_length: int) -> str:
    if not isinstance(text, str):
        raise NLUInputError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise NLUInputError("text is empty")
    if len(text) > max_length:
        raise NLUInputError(f"text is too long: {len(text)} characters (limit {max_length})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NLUInputError("text is not valid Unicode (it holds a lone surrogate)") from None
    return text


def normalise(text: str) -> Normalised:
    """Normalise ``text`` (already validated)."""
    aligned = _width_fold(text)
    if not aligned.isascii():
        simplified = _CONVERTER.convert(aligned)
        if len(simplified) == len(aligned):
            aligned = simplified
    model = _EMOJI.sub(" ", aligned.casefold())
    model = _REPEATED_PUNCT.sub(r"\1", model)
    model = _SPACES.sub(" ", model).strip()
    return Normalised(original=text, aligned=aligned, model=model)


CJK = "[\u3400-\u4dbf\u4e00-\u9fff]"  # a Chinese character (CJK Unified Ideographs and Extension A)
_CJK = re.compile(CJK)


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None
