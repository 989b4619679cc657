"""The masker every view, log and export uses: patterns catch what no NLU parsed."""

from __future__ import annotations

import pytest

from gateway.privacy import mask_phone, mask_text


@pytest.mark.parametrize(
    ("text", "shown", "hidden"),
    [
        ("我的号码是138 0013 8001", "138****8001", "0013"),
        ("+86 13800138000 call me", "138****8000", "0013"),
        ("１３８００１３８０００", "138****8000", "００１"),
        ("身份证110101199003074518", "110***********4518", "19900307"),
        ("卡号6222 0212 3456 7890 123", "0123", "6222"),
        ("【示例通信】您的验证码是705818，5分钟内有效。", "验证码是******", "705818"),
        ("Your code: 123456", "code: ******", "123456"),
        ("telegram error: chat 13900139000 not found", "139****9000", "13900139000"),
    ],
)
def test_identifiers_are_masked_without_entities(text, shown, hidden):
    masked = mask_text(text)
    assert shown in masked and hidden not in masked


@pytest.mark.parametrize("text", ["余额为1288.00元", "订单 20261206 号", "流量剩余 12.5GB", "TD", ""])
def test_ordinary_numbers_stay(text):
    assert mask_text(text) == text


def test_mask_phone():
    assert mask_phone("+86 138-0013-8000") == "138****8000"
    assert mask_phone("12345") == "*****"
