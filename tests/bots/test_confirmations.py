"""Confirmations: yes, no, expiry, duplicates and retries never change a plan twice."""

from __future__ import annotations

import asyncio

from gateway import redisconn
from gateway.app import create_app
from gateway.rkeys import deployment_keys
from tests.bots.conftest import DEMO, SECRET, Customer


async def orders(redis_url: str, prefix: str) -> int:
    client = redisconn.client(redis_url)
    try:
        return int(await client.get(deployment_keys(prefix).bss_orders()) or 0)
    finally:
        await client.aclose()


async def test_plan_change_confirm(customer, redis_url, key_prefix):
    c = customer("13800138004")
    reply = await c.text("我想换套餐")
    assert ("5G尊享199元套餐 199.00元/月", '/change_package{"plan":"premium_199"}') in c.buttons()
    assert not any("bigdata_39" in p for _, p in c.buttons())  # closed to sign-ups
    reply = await c.text('/change_package{"plan":"premium_199"}')
    assert "请确认" in reply and "199.00元" in reply and "1日起生效" in reply
    reply = await c.text("确认")
    assert "已为您办理套餐变更" in reply
    assert "已预约下月1日起变更为5G尊享199元套餐" in await c.text("我的套餐")
    assert await orders(redis_url, key_prefix) == 1


async def test_plan_change_deny(customer, redis_url, key_prefix):
    c = customer("13800138004")
    await c.text("换成199套餐")
    assert "没有做任何变更" in await c.text("不用了")
    assert "已预约" not in await c.text("我的套餐")
    assert await orders(redis_url, key_prefix) == 0


async def test_same_and_closed_plans(customer):
    c = customer("13800138004")
    assert "无需变更" in await c.text("换成129套餐")
    reply = await c.text("换成大王卡")
    assert "不支持新办理" in reply


async def test_duplicate_confirmation_changes_the_plan_once(customer, redis_url, key_prefix):
    c = customer("13800138004")
    await c.text("换成199套餐")
    first, second = await asyncio.gather(c.text("确认", message_id="yes-1"), c.text("确认", message_id="yes-1"))
    assert first == second and "已为您办理套餐变更" in first
    third = await c.text("确认")  # a second, different "yes": nothing is pending any more
    assert "已为您办理" not in third
    assert await orders(redis_url, key_prefix) == 1


async def test_expired_confirmation(aiohttp_client, make_settings, nlu_engine, redis_url, key_prefix):
    settings = make_settings(webchat={"token_secret": SECRET}, bots={"confirm_ttl": 1})
    c = Customer(await aiohttp_client(create_app(settings, nlu=nlu_engine)), "expiring", "13800138004")
    await c.text("换成199套餐")
    await asyncio.sleep(1.2)
    reply = await c.text("确认")
    assert "确认已超时" in reply and ("变更套餐", "/change_package") in c.buttons()
    assert await orders(redis_url, key_prefix) == 0


async def test_something_else_drops_the_confirmation(customer, redis_url, key_prefix):
    c = customer("13800138004")
    await c.text("换成199套餐")
    assert "余额" in await c.text("先帮我查下话费")
    await c.text("确认")
    assert await orders(redis_url, key_prefix) == 0


async def test_cancel_drops_a_question(customer):
    c = customer("13800138000")
    await c.text("查账单")
    assert "已取消" in await c.text("取消")
    assert "哪个月" not in await c.text("10")


async def test_suspended_line_cannot_change_plan(customer):
    assert "停机状态" in await customer("13800138005").text("换成199套餐")
    assert DEMO["subscribers"]["13800138005"]["status"] == "suspended"
