"""Rule-based entities on the aligned text; offsets index the customer's original message."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from nlu import Entity, NLUConfig, mask_id_card, mask_phone, mask_text
from nlu.entities import EntityExtractor
from nlu.normalize import normalise

NOW = date(2026, 11, 28)


def extract(extractor: EntityExtractor, text: str, now: date = NOW) -> list[Entity]:
    return extractor.extract(normalise(text).aligned, now)


def found(extractor: EntityExtractor, text: str, now: date = NOW) -> list[tuple[str, object, str]]:
    """(entity, value, the ORIGINAL text at start:end) for every entity."""
    return [(e.entity, e.value, text[e.start : e.end]) for e in extract(extractor, text, now)]


def kinds(extractor: EntityExtractor, text: str) -> set[str]:
    return {e.entity for e in extract(extractor, text)}


# ---- phone and ID-card numbers ----
@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("我的号码138 0013 8000", "138 0013 8000"),
        ("+86 13800138000", "+86 13800138000"),
        ("号码是+8613800138000呢", "+8613800138000"),
        ("138-0013-8000", "138-0013-8000"),
        ("+86-138-0013-8000", "+86-138-0013-8000"),
        ("号码13800138000的话费", "13800138000"),
        ("１３８００１３８０００", "１３８００１３８０００"),
        ("手机号 １３８ ００１３ ８０００ 谢谢", "１３８ ００１３ ８０００"),
    ],
)
def test_phone_numbers(extractor, text, span):
    assert found(extractor, text) == [("phone", "13800138000", span)]


def test_two_phone_numbers_in_one_message(extractor):
    text = "13800138000和13912345678"
    assert [(k, v) for k, v, _ in found(extractor, text)] == [("phone", "13800138000"), ("phone", "13912345678")]


@pytest.mark.parametrize(
    "text",
    [
        "138001380001",  # 12 digits
        "订单号1380013800012",  # 13 digits
        "1380013800",  # 10 digits
        "12345678901",  # 11 digits, but no mobile prefix
        "10086",
    ],
)
def test_not_a_phone(extractor, text):
    assert "phone" not in kinds(extractor, text)


def test_id_card_is_an_id_card_not_a_phone(extractor):
    text = "身份证11010119900307851X"
    assert found(extractor, text) == [("id_card", "11010119900307851X", "11010119900307851X")]


def test_id_card_with_lower_case_x_is_upper_cased(extractor):
    text = "身份证号11010119900307851x"
    assert found(extractor, text) == [("id_card", "11010119900307851X", "11010119900307851x")]


def test_phone_and_id_card_together(extractor):
    text = "电话13800138000，身份证11010119900307851X"
    assert found(extractor, text) == [
        ("phone", "13800138000", "13800138000"),
        ("id_card", "11010119900307851X", "11010119900307851X"),
    ]


# ---- money ----
@pytest.mark.parametrize(
    ("text", "amount", "currency", "span"),
    [
        ("充50元", 50, "CNY", "50元"),
        ("扣了我五十块", 50, "CNY", "五十块"),
        ("¥30", 30, "CNY", "¥30"),
        ("￥３０", 30, "CNY", "￥３０"),
        ("$20", 20, "USD", "$20"),
        ("charged 20 dollars", 20, "USD", "20 dollars"),
        ("20美元", 20, "USD", "20美元"),
        ("topped up 100 yuan", 100, "CNY", "100 yuan"),
        ("两百块钱", 200, "CNY", "两百块钱"),
        ("一百五十元", 150, "CNY", "一百五十元"),
        ("多扣了1.5元", 1.5, "CNY", "1.5元"),
        ("兩百塊錢", 200, "CNY", "兩百塊錢"),  # traditional: offsets still index the original
    ],
)
def test_money(extractor, text, amount, currency, span):
    money = [e for e in extract(extractor, text) if e.entity == "money"]
    assert len(money) == 1
    assert (money[0].value, money[0].unit, text[money[0].start : money[0].end]) == (amount, currency, span)


def test_money_amounts_are_ints_when_whole(extractor):
    (e,) = extract(extractor, "充50元")
    assert isinstance(e.value, int)


@pytest.mark.parametrize("text", ["我们一块去营业厅", "一块儿办", "充值100"])
def test_not_money(extractor, text):
    assert "money" not in kinds(extractor, text)


@pytest.mark.parametrize(("text", "amount"), [("充了1,000元", 1000), ("¥1,000", 1000)])
def test_money_with_thousands_separator(extractor, text, amount):
    money = [e.value for e in extract(extractor, text) if e.entity == "money"]
    assert money == [amount]


# ---- months and dates ----
@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        ("上个月的账单", "2026-10", "上个月"),
        ("上上个月的账单", "2026-09", "上上个月"),
        ("这个月的流量", "2026-11", "这个月"),
        ("本月", "2026-11", "本月"),
        ("上月", "2026-10", "上月"),
        ("10月账单", "2026-10", "10月"),
        ("12月账单", "2025-12", "12月"),  # the most recent December is last year
        ("11月", "2026-11", "11月"),  # the current month is this year
        ("2024年3月", "2024-03", "2024年3月"),
        ("２０２４年３月的话费", "2024-03", "２０２４年３月"),
        ("十月份的话费", "2026-10", "十月份"),
        ("bill for last month", "2026-10", "last month"),
        ("Bill for Last Month", "2026-10", "Last Month"),
        ("the month before last", "2026-09", "the month before last"),
        ("October bill", "2026-10", "October"),
        ("Nov 2025", "2025-11", "Nov 2025"),
        ("in december", "2025-12", "december"),
        ("2025-06", "2025-06", "2025-06"),
        ("上個月", "2026-10", "上個月"),
    ],
)
def test_months(extractor, text, value, span):
    assert found(extractor, text) == [("month", value, span)]


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        ("10月5号停机了", "2026-10-05", "10月5号"),
        ("六月五日", "2026-06-05", "六月五日"),
        ("2025-06-15", "2025-06-15", "2025-06-15"),
    ],
)
def test_dates(extractor, text, value, span):
    assert found(extractor, text) == [("date", value, span)]


@pytest.mark.parametrize(
    ("now", "text", "value"),
    [
        (date(2026, 1, 15), "上个月", "2025-12"),
        (date(2026, 1, 15), "上上个月", "2025-11"),
        (date(2026, 1, 15), "last month", "2025-12"),
        (date(2026, 12, 1), "12月", "2026-12"),
        (date(2026, 1, 15), "12月", "2025-12"),
    ],
)
def test_relative_months_cross_the_year(extractor, now, text, value):
    assert [e.value for e in extract(extractor, text, now)] == [value]


@pytest.mark.parametrize("text", ["13月", "2026年13月", "2月30号", "每月月租", "三个月前", "May I ask something"])
def test_not_a_month(extractor, text):
    assert not kinds(extractor, text) & {"month", "date"}


def test_year_in_chinese_numerals(extractor):
    assert [e.value for e in extract(extractor, "二〇二四年三月")] == ["2024-03"]


# ---- data volume ----
@pytest.mark.parametrize(
    ("text", "megabytes", "span"),
    [
        ("流量用了2G", 2048, "2G"),
        ("还剩500兆", 500, "500兆"),
        ("1.5GB", 1536, "1.5GB"),
        ("剩1.5gb", 1536, "1.5gb"),
        ("两个G", 2048, "两个G"),
        ("用了三个G", 3072, "三个G"),
        ("200MB", 200, "200MB"),
        ("2 GB", 2048, "2 GB"),
        ("我有5G流量吗", 5120, "5G"),  # 5G + data context: a volume
    ],
)
def test_data_volume(extractor, text, megabytes, span):
    vols = [e for e in extract(extractor, text) if e.entity == "data_volume"]
    assert [(e.value, e.unit, text[e.start : e.end]) for e in vols] == [(megabytes, "MB", span)]


@pytest.mark.parametrize("text", ["5G网络好慢", "4G信号差", "买了个5G手机", "5G", "5G套餐多少钱", "5G network is slow"])
def test_network_generation_is_not_data_volume(extractor, text):
    assert "data_volume" not in kinds(extractor, text)


@pytest.mark.parametrize("text", ["我家100M宽带", "办个1000M宽带"])
def test_broadband_speed_is_not_data_volume(extractor, text):
    assert "data_volume" not in kinds(extractor, text)


# ---- districts and plans ----
@pytest.mark.parametrize(
    ("text", "canonical", "span"),
    [
        ("朝阳区断网了吗", "朝阳区", "朝阳区"),
        ("朝阳那边", "朝阳区", "朝阳"),
        ("浦东信号差", "浦东新区", "浦东"),
        ("outage in Pudong", "浦东新区", "Pudong"),
        ("PUDONG", "浦东新区", "PUDONG"),
        ("haidian", "海淀区", "haidian"),
    ],
)
def test_districts(extractor, text, canonical, span):
    assert found(extractor, text) == [("district", canonical, span)]


def test_longest_district_name_wins(extractor):
    assert found(extractor, "上海浦东新区") == [("district", "上海市", "上海"), ("district", "浦东新区", "浦东新区")]


@pytest.mark.parametrize(
    ("text", "plan", "span"),
    [
        ("换成畅享59", "enjoy_59", "畅享59"),
        ("5G畅享59元套餐", "enjoy_59", "5G畅享59元套餐"),
        ("switch me to Enjoy 59", "enjoy_59", "Enjoy 59"),
        ("换个129套餐", "enjoy_129", "129套餐"),
        ("大王卡", "bigdata_39", "大王卡"),
        # a plan's price written with 的, 块 or 块钱 (issue 15)
        ("我想换59元的套餐", "enjoy_59", "59元的套餐"),
        ("129块钱的套餐有多少流量", "enjoy_129", "129块钱的套餐"),
        ("199块的套餐太贵了", "premium_199", "199块的套餐"),
        ("办个59的套餐", "enjoy_59", "59的套餐"),
        ("what's in the 129 yuan plan", "enjoy_129", "129 yuan plan"),
    ],
)
def test_plans(extractor, text, plan, span):
    assert found(extractor, text) == [("plan", plan, span)]


def test_plan_price_is_not_also_money(extractor):
    assert kinds(extractor, "5G畅享59元套餐") == {"plan"}
    assert kinds(extractor, "59元的套餐") == {"plan"}


def test_a_price_that_is_no_plan_stays_money(extractor):
    assert found(extractor, "我想换88元的套餐") == [("money", 88, "88元")]


def test_empty_gazetteer_finds_no_places_or_plans():
    from nlu.entities import Gazetteer

    bare = EntityExtractor(Gazetteer({}, {}))
    assert bare.extract("朝阳区 畅享59", NOW) == []


# ---- offsets ----
def test_offsets_index_the_original_text_in_a_mixed_message(extractor):
    text = "我的號碼是１３８ ００１３ ８０００，上個月扣了我￥５０，在浦东，用了兩個G流量"
    got = found(extractor, text)
    assert got == [
        ("phone", "13800138000", "１３８ ００１３ ８０００"),
        ("month", "2026-10", "上個月"),
        ("money", 50, "￥５０"),
        ("district", "浦东新区", "浦东"),
        ("data_volume", 2048, "兩個G"),
    ]
    for e in extract(extractor, text):
        assert e.text == normalise(text).aligned[e.start : e.end]


def test_entities_are_sorted_by_position_and_do_not_overlap(extractor):
    text = "上个月5G畅享59元套餐扣了50元，号码13800138000"
    ents = extract(extractor, text)
    starts = [e.start for e in ents]
    assert starts == sorted(starts)
    for a, b in itertools.pairwise(ents):
        assert a.end <= b.start


def test_to_dict_includes_unit_only_when_set(extractor):
    money, month = extract(extractor, "50元"), extract(extractor, "上个月")
    assert money[0].to_dict() == {"entity": "money", "value": 50, "start": 0, "end": 3, "text": "50元", "unit": "CNY"}
    assert "unit" not in month[0].to_dict()


# ---- masking ----
def test_mask_phone():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("138 0013 8000") == "138****8000"
    assert mask_phone("12345") == "*****"


def test_mask_id_card():
    assert mask_id_card("11010119900307851X") == "110***********851X"
    assert mask_id_card("123") == "***"


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        ("我的号码13800138000，身份证11010119900307851X", ["13800138000", "11010119900307851X", "0013"]),
        ("号码是138 0013 8000", ["138 0013 8000", "13800138000", "0013"]),
        ("call +86 13800138000 please", ["13800138000", "0013"]),
        ("我的號碼１３８ ００１３ ８０００", ["１３８ ００１３ ８０００", "００１３"]),
    ],
)
def test_mask_text_hides_the_numbers(extractor, text, secrets):
    masked = mask_text(text, extract(extractor, text))
    for secret in secrets:
        assert secret not in masked
    assert "****" in masked


def test_mask_text_keeps_the_rest_of_the_message(extractor):
    text = "我的号码13800138000，身份证11010119900307851X，上个月扣了50元"
    assert mask_text(text, extract(extractor, text)) == "我的号码138****8000，身份证110***********851X，上个月扣了50元"


def test_mask_text_without_numbers_is_unchanged(extractor):
    text = "上个月扣了50元"
    assert mask_text(text, extract(extractor, text)) == text


def test_config_gazetteer_is_what_the_extractor_uses():
    gazetteer = NLUConfig.load().gazetteer
    assert "浦东新区" in gazetteer.districts and "pudong" in gazetteer.districts["浦东新区"]
    assert "enjoy_59" in gazetteer.plans
