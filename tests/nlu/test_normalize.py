"""Normalisation: width folding, traditional → simplified, case, punctuation, emoji; input validation."""

from __future__ import annotations

import pytest

from nlu import NLUInputError
from nlu.normalize import normalise, validate


@pytest.mark.parametrize(
    ("text", "aligned"),
    [
        ("１３８", "138"),
        ("ＡＢＣ", "ABC"),
        ("！", "!"),
        ("？", "?"),
        ("ｌａｓｔ　ｍｏｎｔｈ", "last month"),  # ideographic space too
    ],
)
def test_full_width_is_folded_to_half_width(text, aligned):
    assert normalise(text).aligned == aligned


@pytest.mark.parametrize(
    ("text", "simplified"), [("餘額", "余额"), ("寬帶", "宽带"), ("投訴", "投诉"), ("上個月", "上个月")]
)
def test_traditional_is_converted_to_simplified(text, simplified):
    n = normalise(text)
    assert n.aligned == simplified
    assert n.model == simplified


def test_original_is_kept_verbatim():
    text = "餘額ＡＢＣ！！"
    assert normalise(text).original == text


@pytest.mark.parametrize(
    "text",
    [
        "餘額ＡＢＣ１２３！！！寬帶",
        "我的號碼是１３８ ００１３ ８０００，上個月扣了￥５０",
        "流量？？？😡😡 还剩多少 Hello WORLD",
        "①②③ ㎏ ﬁ … ß İ",  # NFKC would expand ㎏ → kg, ﬁ → fi, … → ...: aligned must not
        "plain ascii text",
    ],
)
def test_aligned_form_keeps_one_character_per_input_character(text):
    n = normalise(text)
    assert len(n.aligned) == len(n.original)


def test_aligned_form_folds_what_it_can_without_changing_length():
    n = normalise("①㎏餘額")
    assert n.aligned == "1㎏余额"


def test_aligned_form_keeps_case_and_punctuation_runs():
    n = normalise("Hello！！！")
    assert n.aligned == "Hello!!!"


def test_model_form_is_case_folded():
    assert normalise("My BALANCE Please").model == "my balance please"
    assert normalise("ＡＢＣ").model == "abc"
    assert normalise("Straße").model == "strasse"  # casefold, not just lower


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("？？？", "?"),
        ("为什么？？？", "为什么?"),
        ("!!!!", "!"),
        ("信号太差了！！！", "信号太差了!"),
        ("好。。。", "好。"),
        ("what?!", "what?!"),  # different marks are not a run
    ],
)
def test_repeated_punctuation_is_squeezed_in_the_model_form(text, model):
    assert normalise(text).model == model


def test_letters_and_digits_are_not_squeezed():
    assert normalise("hellooo 1000").model == "hellooo 1000"


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("流量？？？😡😡 还剩多少", "流量? 还剩多少"),
        ("好的👍🏻", "好的"),
        ("谢谢❤️", "谢谢"),
        ("😡😡😡", ""),
    ],
)
def test_emoji_are_dropped_from_the_model_form(text, model):
    n = normalise(text)
    assert n.model == model
    emoji = [ch for ch in text if ord(ch) >= 0x2600 and not ("\u4e00" <= ch <= "\u9fff") and ch not in "？"]
    assert emoji and all(ch in n.aligned for ch in emoji)  # ... but kept in the aligned form, offsets intact
    assert len(n.aligned) == len(text)


def test_white_space_is_folded_in_the_model_form():
    assert normalise("  查\t\t一下   流量 \n").model == "查 一下 流量"


# ---- validate ----
@pytest.mark.parametrize("text", ["", " ", "   \n\t", "\u3000"])
def test_empty_or_blank_text_is_refused(text):
    with pytest.raises(NLUInputError, match="text is empty"):
        validate(text, 1000)


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), (5, "int"), (b"hi", "bytes"), (["hi"], "list")])
def test_non_string_is_refused_naming_the_type(value, type_name):
    with pytest.raises(NLUInputError, match=f"must be a string, got {type_name}"):
        validate(value, 1000)


def test_too_long_text_is_refused_with_length_and_limit():
    with pytest.raises(NLUInputError) as info:
        validate("字" * 1001, 1000)
    message = str(info.value)
    assert "too long" in message and "1001" in message and "1000" in message


def test_text_at_the_limit_is_accepted():
    text = "字" * 1000
    assert validate(text, 1000) is text


def test_nlu_input_error_is_a_value_error():
    assert issubclass(NLUInputError, ValueError)
