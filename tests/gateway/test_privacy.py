"""The masker every view, log and export uses: patterns catch what no NLU parsed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from gateway import privacy
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
        ("card6222021234567890123", "card***************0123", "6222"),  # a letter before a card is not an id
        ("工单 TS2026120600001，卡号 6222021234567890123", "TS2026120600001", "62220212"),
    ],
)
def test_identifiers_are_masked_without_entities(text, shown, hidden):
    masked = mask_text(text)
    assert shown in masked and hidden not in masked


@pytest.mark.parametrize("text", ["余额为1288.00元", "订单 20261206 号", "流量剩余 12.5GB", "TD", ""])
def test_ordinary_numbers_stay(text):
    assert mask_text(text) == text


async def test_the_gateways_own_ticket_and_callback_numbers_stay_whole(redis_client, key_prefix):
    """A complaint's ticket (TS…) and a callback request's number (CB…) have 13 digits, like a bank card, but an agent
    reading the transcript needs them: the masker leaves the numbers ``ComplaintTickets`` makes alone."""
    from gateway.rkeys import Keys
    from handoff.tickets import ComplaintTickets

    tickets = ComplaintTickets(redis_client, Keys(key_prefix))
    for kind in privacy.OWN_NUMBER_KINDS:  # every kind ComplaintTickets makes (it refuses others)
        number = await tickets.number(kind)
        for text in (f"您的投诉已登记，工单号 {number}。", f"Request {number} recorded", number):
            assert mask_text(text) == text
    with pytest.raises(ValueError, match="OWN_NUMBER_KINDS"):  # a new kind must be one the masker knows
        await tickets.number("XX")


def test_mask_phone():
    assert mask_phone("+86 138-0013-8000") == "138****8000"
    assert mask_phone("12345") == "*****"


def _every_pattern(text: str) -> str:
    """mask_text as it was before its quick checks: every pattern searched, in order."""
    if not privacy._DIGITS4.search(text):
        return text
    text = privacy.ID_CARD.sub(lambda m: privacy.mask_id_card(m.group(0)), text)
    text = privacy.PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    text = privacy.BANK_CARD.sub(lambda m: privacy.mask_card(m.group(0)), text)
    return privacy.OTP.sub(lambda m: f"{m.group(1)}{m.group(2)}{privacy._STARS.sub('*', m.group(3))}", text)


_PIECES = st.sampled_from(["1", "3", "8", "0", "９", "１", "3８", " ", "-", "－", "\n", "X", "+86", "＋８６", "验证码",
                           "PIN码", "CODE", "PaSsWoRd", "paſſcode", "otp", "puk", "是", "：", "138****8000", "，",
                           "a"])  # fmt: skip


@hyp_settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_the_quick_checks_never_skip_a_number_the_patterns_mask(text: str) -> None:
    """Runs of digits, separators, full-width forms and code words: the same result as searching every pattern."""
    assert mask_text(text) == _every_pattern(text)


@pytest.mark.parametrize("text", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "11010519491231002X",
                                  "6222 0202 0000 1234 567", "验证码：1234", "your passcode is 8812 34", "PIN码 4321",
                                  "余额 45.20 元（截至 2026-12-06 13:45）", "订单 CB20261206000123"])  # fmt: skip
def test_the_quick_checks_agree_on_everyday_texts(text: str) -> None:
    assert mask_text(text) == _every_pattern(text)
