"""Every self-service flow end to end over the REST channel, with and without identity."""

from __future__ import annotations

import asyncio

from tests.bots.conftest import DEMO, demo, month_back


def money(value: float) -> str:
    return f"{value:.2f}元" if value >= 0 else f"-{abs(value):.2f}元"


async def test_balance_needs_identity_and_never_leaks(customer):
    anonymous = customer(phone=None)
    reply = await anonymous.text("查一下话费余额")
    assert "手机号码" in reply and "验证码" in reply
    assert money(demo("13800138000")["balance"]) not in reply


async def test_balance_for_a_proven_customer(customer):
    for phone in ("13800138000", "13800138002"):
        c = customer(phone)
        reply = await c.text("我还有多少话费")
        assert f"{phone[:3]}****{phone[-4:]}" in reply and phone not in reply
        assert money(demo(phone)["balance"]) in reply
    assert "欠费" in reply  # 13800138002 is in arrears
    assert ("充值缴费", "/recharge") in c.buttons()


async def test_data_usage_per_bucket(customer):
    reply = await customer("13800138003").text("我的流量还剩多少")  # James roams: general and roaming buckets
    assert "通用流量" in reply and "漫游流量" in reply


async def test_bill_asks_for_the_month_then_answers(customer):
    c = customer("13800138000")
    reply = await c.text("查账单")
    assert "哪个月" in reply
    payloads = [p for _, p in c.buttons()]
    assert payloads[0] == f'/query_bill{{"month":"{month_back(1)}"}}'
    reply = await c.text("上个月")
    bill = demo("13800138000")["bills"][1]
    assert money(bill["total"]) in reply and "138****8000" in reply
    assert money(bill["items"][0]["amount"]) in reply  # the items are listed on web channels


async def test_bill_in_one_message_and_by_button(customer):
    c = customer("13800138001")
    reply = await c.text("上上个月的账单")
    assert money(demo("13800138001")["bills"][2]["total"]) in reply
    await c.text("查账单")
    reply = await c.text(c.buttons()[2][1])  # three months back
    assert money(demo("13800138001")["bills"][3]["total"]) in reply


async def test_bill_for_this_month_is_not_issued(customer):
    reply = await customer("13800138000").text("本月账单多少")
    assert "还没有出账" in reply


async def test_current_plan(customer):
    reply = await customer("13800138004").text("我现在是什么套餐")
    plan = DEMO["plans"]["enjoy_129"]
    assert plan["name"]["zh"] in reply and money(plan["fee"]) in reply


async def test_recharge_own_number_and_another(customer):
    c = customer("13800138000")
    reply = await c.text("充值100元")
    assert "https://pay.example.com/order/PAY" in reply and "138****8000" in reply
    anonymous = customer(phone=None)
    await anonymous.text("我要充话费")
    await anonymous.text("13800138006")
    assert len(anonymous.buttons()) == 4  # amounts
    reply = await anonymous.text(anonymous.buttons()[1][1])
    assert "138****8006" in reply and "50.00元" in reply and "pay.example.com" in reply
    reply = await c.text("充值")
    reply = await c.text("99999")
    assert "1元到5000元" in reply


async def test_network_status_by_district_by_account_and_asked(customer):
    outage = next(o for o in DEMO["outages"] if o["active"])
    reply = await customer(phone=None).text(f"{outage['district']}的网络是不是出故障了")
    assert outage["description"]["zh"] in reply
    reply = await customer("13800138000").text("手机没信号，是不是网络故障")  # lives in the outage district
    assert outage["description"]["zh"] in reply
    asked = customer(phone=None)
    assert "区域" in await asked.text("网络是不是有故障")
    reply = await asked.text("福田")
    assert "没有已知的网络故障" in reply


async def test_stores_by_district(customer):
    c = customer(phone=None)
    assert "区域" in await c.text("营业厅几点关门")
    reply = await c.text("海淀区")
    store = next(s for s in DEMO["stores"] if s["district"] == "海淀区")
    assert store["name"]["zh"] in reply and store["hours"] in reply


async def test_roaming_rates_by_name_and_alias(customer):
    japan = next(r for r in DEMO["roaming"] if r["country"]["en"] == "Japan")
    reply = await customer(phone=None).text("下周去日本，漫游怎么收费")
    assert money(japan["day_pass"]) in reply
    c = customer("13800138001")  # roaming on
    assert "去哪个国家" in await c.text("开通国际漫游")
    reply = await c.text("tokyo")
    assert money(japan["day_pass"]) in reply and "已开通" in reply


async def test_sim_lost_suspends_after_confirmation(customer):
    c = customer("13800138006")
    reply = await c.text("手机丢了，帮我挂失")
    assert "确认" in reply and "138****8006" in reply
    reply = await c.text("确认")
    assert "已为138****8006办理挂失停机" in reply
    reply = await c.text("手机丢了，帮我挂失")
    assert "已经是停机状态" in reply


async def test_sim_puk_needs_identity_and_replacement_does_not(customer):
    assert "验证码" in await customer(phone=None).text("PUK码是多少")
    reply = await customer("13800138004").text("PUK码是多少")
    assert demo("13800138004")["puk"] in reply
    reply = await customer(phone=None).text("怎么补卡")
    assert "身份证" in reply


async def test_sim_service_asks_which(customer):
    c = customer("13800138004")
    await c.text("SIM卡业务")
    assert [p for _, p in c.buttons()] == [f'/sim_service{{"action":"{a}"}}' for a in ("lost", "replace", "puk")]
    reply = await c.text("3")
    assert demo("13800138004")["puk"] in reply


async def test_porting_general_eligible_and_not(customer):
    reply = await customer(phone=None).text("怎么携号转网")
    assert "120天" in reply
    assert "符合携号转网条件" in await customer("13800138000").text("我能携号转网吗")
    reply = await customer("13800138004").text("我能携号转网吗")  # contract until 2027
    assert "合约期未满" in reply
    reply = await customer("13800138005").text("我能携号转网吗")  # suspended, in arrears
    assert "存在欠费" in reply and "停机" in reply


async def test_broadband_repair_creates_one_order(customer):
    c = customer("13800138000")
    reply = await c.text("宽带断网了，帮我报修")
    assert demo("13800138000")["broadband"]["account"] in reply
    window = c.buttons()[0][1]
    first = await c.text(window, message_id="choose-1")
    again = await c.text(window, message_id="choose-1")  # the provider's retry
    assert first == again and "报修单已创建" in first
    assert "没有查到宽带账户" in await customer("13800138004").text("宽带报修")


async def test_unsubscribe_lists_confirms_and_cancels(customer):
    c = customer("13800138000")
    names = [DEMO["vas"][v]["name"]["zh"] for v in demo("13800138000")["vas"]]
    reply = await c.text("退订增值业务")
    assert all(n in reply for n in names)
    reply = await c.text("1")
    assert "请确认" in reply and names[0] in reply
    assert "已为您退订" in await c.text("是的")
    reply = await c.text("退订增值业务")
    assert names[0] not in reply and names[1] in reply
    assert "没有订购任何增值业务" in await customer("13900139009").text("我要退订业务")


async def test_unsubscribe_named_service_goes_straight_to_confirmation(customer):
    c = customer("13800138000")
    name = DEMO["vas"]["video_ringback"]["name"]["zh"]
    reply = await c.text(f"退订{name}")
    assert "请确认" in reply and name in reply


async def test_small_talk_and_out_of_scope(customer):
    c = customer(phone=None)
    reply = await c.text("你好")
    assert "您好" in reply and ("转人工客服", "/request_human") in c.buttons()
    assert "不客气" in await c.text("谢谢你")
    reply = await c.text("今天天气怎么样")
    assert "回答不了" in reply and ("查话费余额", "/query_balance") in c.buttons()
    assert "祝您" in await c.text("再见")


async def test_english_conversation(customer):
    c = customer("13800138003", lang="en")
    reply = await c.text("what's my balance")
    assert "The balance of 138****8003 is ¥412.30" in reply
    reply = await c.text("I want to change my plan")
    assert "You're on" in reply and "Which one" in reply
    reply = await c.text("2")
    assert "Please confirm" in reply
    assert "cancelled" in (await c.text("no")).lower()


async def test_two_gateway_processes_continue_one_conversation(aiohttp_client, bot_settings, nlu_engine):
    from gateway.app import create_app
    from tests.bots.conftest import Customer

    one = await aiohttp_client(create_app(bot_settings, nlu=nlu_engine))
    two = await aiohttp_client(create_app(bot_settings, nlu=nlu_engine))
    a = Customer(one, "shared-1", "13800138004")
    b = Customer(two, "shared-1", "13800138004")
    await a.text("换成59套餐")
    reply = await b.text("确认")
    assert "已为您办理套餐变更" in reply
    await asyncio.sleep(0)
