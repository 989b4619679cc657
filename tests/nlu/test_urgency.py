"""Urgency 0–3 from anger and escalation cues."""

from __future__ import annotations

import pytest

from nlu.normalize import normalise
from nlu.urgency import urgency


def score(text: str) -> int:
    return urgency(normalise(text).aligned)


@pytest.mark.parametrize(
    "text",
    [
        "我想查一下流量",
        "你好，请问话费还剩多少？",
        "what's my balance",
        "How do I check my data usage?",
        "what time do you open",
        "谢谢",
        "上个月的账单是多少",
    ],
)
def test_calm_messages_score_zero(text):
    assert score(text) == 0


@pytest.mark.parametrize(
    ("calm", "upset"),
    [
        ("信号太差了", "信号太差了!!!"),
        ("信号差", "信号差！！"),
        ("why is my internet down", "why is my internet down?!"),
    ],
)
def test_exclamation_marks_raise_it(calm, upset):
    assert score(upset) > score(calm)


@pytest.mark.parametrize(
    "text", ["你们这帮骗子", "垃圾运营商", "you are useless", "this is a scam", "what a bunch of idiots"]
)
def test_insults_score_at_least_two(text):
    assert score(text) >= 2


@pytest.mark.parametrize(
    "text", ["又断网了", "这是第三次了", "this keeps happening", "third time I'm asking", "断网好几次了"]
)
def test_repeats_raise_it(text):
    assert score(text) >= 1


@pytest.mark.parametrize(
    "text",
    [
        "再不解决我就投诉到工信部",
        "我要打315",
        "我要找媒体曝光",
        "我会找律师起诉你们",
        "I will take this to the media",
        "I'll call my lawyer",
        "I'm going to the regulator",
    ],
)
def test_threats_score_at_least_two(text):
    assert score(text) >= 2


@pytest.mark.parametrize(
    "text",
    [
        "垃圾运营商，第三次断网了，我要去315曝光",
        "你们这帮骗子，又乱扣费，我要投诉到工信部",
        "you idiots, this is the third time, I'm calling my lawyer",
    ],
)
def test_threat_insult_and_repeat_score_three(text):
    assert score(text) == 3


def test_score_is_capped_at_three():
    assert score("垃圾骗子！！！又是第三次了，气死了，我要去工信部、315、找媒体曝光，找律师起诉") == 3


def test_shouting_in_english_raises_it():
    assert score("THIS IS THE WORST SERVICE EVER") > score("this is the worst service ever") >= 1
    assert score("WHY IS MY INTERNET DOWN") == 1
    assert score("why is my internet down") == 0


@pytest.mark.parametrize("text", ["投訴到工信部", "我要投訴到工業和信息化部", "騙子"])
def test_traditional_characters_are_read_after_normalisation(text):
    assert score(text) >= 2


def test_full_width_exclamation_marks_count():
    assert score("信号差！！！") == score("信号差!!!") == 1


@pytest.mark.parametrize(
    "text",
    [
        "I have an issue with my bill",  # "is-sue"
        "my usb modem is not working",  # "u-sb"
        "how do I send a multimedia message",  # "multi-media"
        "thank you for the courteous service",  # "court-eous"
        "帮我查下13153151234的话费",  # a phone number containing 315
    ],
)
def test_words_inside_other_words_are_not_cues(text):
    assert score(text) == 0
