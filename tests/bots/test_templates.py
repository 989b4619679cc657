"""Templates: every intent in both languages with the same messages, channel fitting (SMS
segments, WeChat bytes), and every flow in English without a Chinese word slipping through."""

from __future__ import annotations

import datetime as dt
import re

import jinja2.nodes
import pytest

from bots.bss.base import Bill, BillItem, Store
from bots.templates import LANGS, MEMO_SIZE, ROOT, Renderer
from gateway import sms_units as sms
from nlu import INTENTS

CJK = re.compile(r"[\u4e00-\u9fff]")


def macros(path) -> set[str]:
    env = jinja2.Environment()
    return {node.name for node in env.parse(path.read_text(encoding="utf-8")).find_all(jinja2.nodes.Macro)}


@pytest.mark.parametrize("intent", INTENTS)
def test_every_intent_has_a_template_in_each_language(intent):
    for lang in LANGS:
        assert (ROOT / lang / f"{intent}.j2").exists(), f"no {lang} template for {intent}"
        assert Renderer().label(intent, lang)


def test_both_languages_have_the_same_messages():
    for path in (ROOT / "zh").glob("*.j2"):
        other = ROOT / "en" / path.name
        assert other.exists(), f"{other} is missing"
        assert macros(path) == macros(other), path.name


def test_sms_segment_counting():
    assert sms.segments("a" * 160) == 1 and sms.segments("a" * 161) == 2 and sms.segments("a" * 306) == 2
    assert sms.segments("a" * 307) == 3
    assert sms.segments("话" * 70) == 1 and sms.segments("话" * 71) == 2 and sms.segments("话" * 134) == 2
    assert sms.segments("话" * 135) == 3
    assert sms.units("{}") == 4 and sms.encoding("{}") == "gsm7"  # extension characters take two septets
    assert sms.units("😀") == 2 and sms.encoding("¥5 ok") == "gsm7"


def test_fit_cuts_at_a_sentence_never_mid_word():
    text = "这是第一句话。" * 40
    fitted = sms.fit(text, 2)
    assert sms.segments(fitted) <= 2 and fitted.endswith("。…")
    words = "Your balance is fine. " * 30
    fitted = sms.fit(words, 1)
    assert sms.segments(fitted) == 1 and fitted.endswith(".…")
    one_sentence = "word " * 100
    assert sms.fit(one_sentence, 1).removesuffix("…").split(" ")[-1] == "word"


def test_sms_variant_and_length_limit():
    r = Renderer(sms_max_parts=2)
    items = tuple(BillItem({"zh": f"项目{i}", "en": f"Item {i}"}, 1.0) for i in range(30))
    bill = Bill("2026-10", 30.0, "paid", items)
    web = r.text("query_bill", "answer", "zh", "webchat", phone="13800138000", bill=bill)
    text = r.text("query_bill", "answer", "zh", "sms", phone="13800138000", bill=bill)
    assert "项目29" in web and "项目" not in text and sms.segments(text) == 1
    stores = tuple(Store("海淀区", {"zh": "营业厅" * 10, "en": "Store " * 10}, {"zh": "地址" * 30, "en": "Road " * 30},
                         "09:00-18:00", "010-1") for _ in range(3))  # fmt: skip
    text = r.text("store_hours", "answer", "zh", "sms", district="海淀区", stores=stores, more=True)
    assert sms.segments(text) <= 2


def test_wechat_text_stays_under_2048_bytes():
    r = Renderer()
    name, address = {"zh": "营业厅" * 100, "en": "x"}, {"zh": "地址" * 200, "en": "x"}
    stores = tuple(Store("海淀区", name, address, "09:00-18:00", "1") for _ in range(3))
    text = r.text("store_hours", "answer", "zh", "wechat", district="海淀区", stores=stores, more=False)
    assert len(text.encode()) <= 2048


def test_formatting_filters_follow_the_language():
    r = Renderer()
    as_of = dt.datetime(2026, 11, 29, 9, 5)
    zh = r.text("query_balance", "answer", "zh", phone="13800138000", balance=-12.5, credit=50.0, as_of=as_of)
    en = r.text("query_balance", "answer", "en", phone="13800138000", balance=-12.5, credit=50.0, as_of=as_of)
    assert "-12.50元" in zh and "欠费12.50元" in zh and "09:05" in zh
    assert "-¥12.50" in en and "¥12.50 overdue" in en


ENGLISH = [
    "hello", "what's my balance", "how much data do I have left", "show me last month's bill", "what plan am I on",
    "I want to change my plan", "cancel", "top up 50 yuan", "is there a network outage in Nanshan",
    "where is your store in Haidian", "roaming rates in Japan", "I lost my phone", "no", "what is my PUK code",
    "can I port my number to another carrier", "my broadband is down, send a technician", "1",
    "I want to unsubscribe from a service", "1", "yes", "your service is terrible, I want to file a complaint",
    "what's the status of my complaint", "thanks", "let me talk to a real person", "bye",
]  # fmt: skip


async def test_every_flow_in_english_has_no_chinese(customer):
    c = customer("13900139004", lang="en")  # David Kim: English, broadband, one add-on
    for message in ENGLISH:
        reply = await c.text(message)
        assert reply and not CJK.search(reply), f"{message!r} → {reply!r}"
        assert not any(CJK.search(title) for title, _ in c.buttons()), message


def test_renders_naming_one_off_ids_do_not_grow_the_process():
    """Texts naming a request id or a ticket never repeat: the memo of rendered texts stays within ``MEMO_SIZE``
    however many there are, and every text (and a menu rendered after the memo was emptied) is still right."""
    r = Renderer()
    menu = r.text("common", "reask", "zh", "webchat")
    assert r.text("common", "reask", "zh", "webchat") == menu  # its second render: kept from now on
    for n in range(MEMO_SIZE + 50):
        text = r.text("request_human", "message_recorded", "zh", "webchat", request_id=f"CB20261206{n:05d}")
        assert f"CB20261206{n:05d}" in text
    assert len(r._memo) == 1 and len(r._seen) <= MEMO_SIZE  # the one-off texts were not kept
    assert r.text("common", "reask", "zh", "webchat") == menu
    for n in range(MEMO_SIZE + 50):  # texts that do repeat: kept, within the bound
        for _ in range(2):
            r.text("request_human", "message_recorded", "zh", "webchat", request_id=f"CB{n}")
        assert len(r._memo) <= MEMO_SIZE


def test_a_stores_answer_is_kept_by_its_content():
    """The stores of a district are the same for every customer who asks: the answer is rendered once and then
    kept (a store's names are dicts: it hashes by content), and a store whose details change gets a new text."""
    r = Renderer()
    names, address = {"zh": "朝阳营业厅", "en": "Chaoyang store"}, {"zh": "朝阳路1号", "en": "1 Chaoyang Rd"}
    stores = (Store("朝阳区", names, address, "09:00-18:00", "010-12345678"),)
    first = [r.text("store_hours", "answer", "zh", "webchat", district="朝阳区", stores=stores, more=False)
             for _ in range(3)]  # fmt: skip
    assert first[0] == first[1] == first[2] and "09:00-18:00" in first[0]
    assert len(r._memo) == 1  # kept from its second render on
    moved = (Store("朝阳区", dict(names), {"zh": "朝阳路2号", "en": "2 Chaoyang Rd"}, "09:00-18:00", "010-12345678"),)
    assert "朝阳路2号" in r.text("store_hours", "answer", "zh", "webchat", district="朝阳区", stores=moved, more=False)
