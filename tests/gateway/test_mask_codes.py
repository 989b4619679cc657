"""Codes and numbers in texts no one parsed — bot replies, outbox SMS — masked by ``mask_text(x, ())`` (issue 17:
supervisors' /api/outboxes showed one-time codes; bot replies with a PUK code were logged as they were)."""

from __future__ import annotations

import pytest

from gateway.privacy import mask_text


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("您的号码138****8000的PUK码是12345678。请注意：PUK码连续输错10次SIM卡将永久锁定", "12345678"),
        ("The PUK code for 138****8000 is 12345678. Careful: ten wrong PUK entries lock the SIM", "12345678"),
        ("动态密码：654321，请勿泄露", "654321"),
        ("短信验证码 123 456，5分钟内有效", "123 456"),
        ("授权码：887766", "887766"),
        ("您的确认码为 5566", "5566"),
        ("one-time password 246810", "246810"),
        ("PIN: 4321", "4321"),
        ("【示例通信】您的验证码是705818，5分钟内有效。", "705818"),
        ("我的手机13800138000，身份证110101199003074518", "13800138000"),
        ("The PUK code for 13800138000 is 12345678.", "12345678"),
        ("code 6222 0212 3456 7890 123", "3456 7890"),
    ],
)
def test_codes_masked_without_entities(text: str, hidden: str) -> None:
    masked = mask_text(text, ())
    assert hidden not in masked, masked
    assert masked != text


@pytest.mark.parametrize(
    "text",
    [
        "验证码已发送到138****8000，请在5分钟内回复6位验证码。",
        "修改密码请拨打10086",
        "余额为1288.00元，套餐 58 元/月",
        "订单 20261206 号已受理",
        "Please reply with the 6-digit code from the text message.",
    ],
)
def test_ordinary_texts_keep_their_numbers(text: str) -> None:
    assert mask_text(text, ()) == text


async def test_a_bot_reply_with_a_puk_is_logged_masked(aiohttp_client, make_settings, nlu_engine, redis_client,
                                                      key_prefix):  # fmt: skip
    """The customer sees their PUK; the conversation log (decrypted) holds it masked."""
    from gateway.app import create_app
    from gateway.rkeys import deployment_keys
    from tests.bots.conftest import SECRET, Customer, demo

    client = await aiohttp_client(create_app(make_settings(webchat={"token_secret": SECRET}), nlu=nlu_engine))
    puk = str(demo("13800138004")["puk"])
    assert puk in await Customer(client, "puk-asker", "13800138004").text("PUK码是多少")
    keys = deployment_keys(key_prefix)
    logged = []
    async for key in redis_client.scan_iter(match=f"{key_prefix}*:log:*"):
        logged += [keys.unseal(fields[b"e"]) for _, fields in await redis_client.xrange(key)]
    bot = [e for e in logged if '"bot"' in e and "PUK" in e]
    assert bot and all(puk not in e for e in logged), logged
