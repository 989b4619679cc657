"""Issue 17, as an auditor checks it: after conversations carrying a phone number, an ID-card number and a
bank-card number on the channels (SMS, Telegram with a binding, REST, web chat), a handoff with an agent's reply,
a complaint case, a survey and a callback, nothing in Redis — key names, members, fields, values, stream entries —
nor in the data directory (the embedded Redis's AOF) holds any of them in clear text or base64, except inside
encrypted values."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from gateway.keys import REDIS, RKEYS, SETTINGS
from gateway.vault import Keyring
from tests.channels.conftest import eventually, http_sms_sections, telegram_sections
from tests.channels.test_sms import text_in
from tests.channels.test_telegram import Chat

SMS_PHONE = "13800138000"  # texts in by SMS (the SMS channel's sender *is* the number)
TG_PHONE = "13900139000"  # a Telegram user binds this number with a one-time code
REST_PHONE = "13700137000"  # typed into a REST conversation
WEB_PHONE = "13600136000"  # typed into the web chat
ID_CARD = "110101199003071234"
BANK_CARD = "6222020200112233445"
SECRETS = (SMS_PHONE, TG_PHONE, REST_PHONE, WEB_PHONE, ID_CARD, BANK_CARD)


def needles(secret: str) -> list[bytes]:
    """The secret as bytes, spaced like a person writes a number, and as it looks inside base64 at each of the three
    alignments (the stable middle of its encoding)."""
    out = [secret.encode(), f"{secret[:3]} {secret[3:7]} {secret[7:]}".encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode())
        start = (shift * 4 + 2) // 3 + 1
        out.append(encoded[start : start + 8])
        out.append(base64.urlsafe_b64encode(b"\0" * shift + secret.encode())[start : start + 8])
    return out


NEEDLES = {s: needles(s) for s in SECRETS}


def sealed_values(data: bytes | str) -> list[str]:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return re.findall(r"v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_=-]+", text)


def clear_hits(where: str, data: bytes | str) -> list[str]:
    """The secrets ``data`` shows outside encrypted values (a sealed value, ``v1.<kid>.<base64>``, may hold them)."""
    raw = data.encode() if isinstance(data, str) else data
    if Keyring.is_sealed(raw.decode(errors="replace")):
        return []
    raw = re.sub(rb"v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_=-]+", b"", raw)  # sealed values inside (JSON, AOF lines)
    return [f"{secret} in {where}" for secret, forms in NEEDLES.items() if any(n in raw for n in forms)]


async def scan_redis(redis: aioredis.Redis, opened: list[str]) -> list[str]:
    """Every place a secret shows in clear; ``opened`` gets the clear text of every encrypted value met."""
    hits: list[str] = []
    async for key in redis.scan_iter(count=1000):
        name = key.decode(errors="replace")
        hits += clear_hits(f"key name {name}", key)
        kind = (await redis.type(key)).decode()
        parts: list[bytes] = []
        if kind == "string":
            parts = [await redis.get(key) or b""]
        elif kind == "hash":
            parts = [x for kv in (await redis.hgetall(key)).items() for x in kv]
        elif kind == "list":
            parts = await redis.lrange(key, 0, -1)
        elif kind == "set":
            parts = list(await redis.smembers(key))
        elif kind == "zset":
            parts = [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts = [x for _, fields in await redis.xrange(key) for kv in fields.items() for x in kv]
        for part in parts:
            hits += clear_hits(f"{kind} {name}", part)
            opened += sealed_values(part)
    return hits


def scan_dir(folder: Path, seen: list[Path]) -> list[str]:
    hits: list[str] = []
    for path in folder.rglob("*"):
        seen.append(path)
        if path.is_file() and not path.name.endswith(".sock"):
            for line in path.read_bytes().splitlines():
                hits += clear_hits(f"file {path.relative_to(folder)}", line)
    return hits


async def test_no_customer_number_is_stored_in_clear_on_any_channel(gateways, http_sms, telegram_api, agents):
    from handoff.config import load_handoff_config

    # the embedded Redis (its AOF in the data dir): nothing else shares it, so every key is this test's
    gw = await gateways(handoff=load_handoff_config().replace(push=False), redis={"url": ""},
                        **http_sms_sections(http_sms), **telegram_sections(telegram_api))  # fmt: skip
    redis = gw.app[REDIS]
    agent = agents(gw.base)
    await agent.login()
    await agent.connect()

    # SMS: a complaint with an ID card and a bank card in it → a case and a chat; the agent answers with the number
    await text_in(
        gw, http_sms, f"我要投诉，网络天天掉线，身份证{ID_CARD}，扣款的卡是{BANK_CARD}", from_="+86" + SMS_PHONE
    )
    await http_sms.wait_messages(1)
    queue = await agent.call("GET", "/api/queue")
    chat = next(c for c in queue["chats"] if c["channel"] == "sms")
    await agent.call("POST", f"/api/chats/{chat['id']}/accept")
    await agent.call("POST", f"/api/chats/{chat['id']}/messages", {"text": f"已登记您的号码{SMS_PHONE}，稍后回电。"})
    await eventually(lambda: any("回电" in t for t in http_sms.sent_to("+86" + SMS_PHONE)), timeout=5)
    await agent.call("POST", f"/api/chats/{chat['id']}/notes", {"text": f"客户身份证{ID_CARD}"})
    await text_in(gw, http_sms, f"好的，我的卡号{BANK_CARD}", from_="+86" + SMS_PHONE)
    await agent.call("POST", f"/api/chats/{chat['id']}/close", {"disposition": "resolved"})
    await eventually(lambda: len(http_sms.sent_to("+86" + SMS_PHONE)) >= 3, timeout=5)  # the survey question
    await text_in(gw, http_sms, "5", from_="+86" + SMS_PHONE)

    # Telegram: the user binds a number with a one-time code (sent by SMS), then asks for the balance
    me = Chat(gw, telegram_api)
    await me.say("/bind")
    await me.say(TG_PHONE)
    code_text = await eventually(lambda: http_sms.sent_to("+86" + TG_PHONE) or http_sms.sent_to(TG_PHONE), timeout=5)
    code = re.search(r"(\d{6})", code_text[-1]).group(1)
    assert "绑定" in (await me.say(code))[0]["text"]
    await me.say("我还有多少话费")

    # REST and the web chat: numbers typed into a question
    async with aiohttp.ClientSession() as session:
        url = f"{gw.base}/webhooks/rest/webhook"
        for n, text in enumerate((f"帮我查一下{REST_PHONE}的话费", f"身份证号{ID_CARD}能办宽带吗", "我要人工")):
            async with session.post(url, json={"sender": "rest-pii", "message": text, "message_id": f"m{n}"}) as r:
                assert r.status == 200, await r.text()
        async with session.ws_connect(f"{gw.base.replace('http', 'ws')}/ws/chat?lang=zh") as ws:
            await ws.receive()
            await ws.send_json({"type": "message", "text": f"我的号码是{WEB_PHONE}，查流量", "client_id": "c1"})
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads((await ws.receive()).data)
                    if frame.get("type") == "message" and frame.get("from") == "bot":
                        break

    await asyncio.sleep(1.5)  # the AOF is written every second
    sealed: list[str] = []
    hits = await scan_redis(redis, sealed)
    files: list[Path] = []
    hits += scan_dir(gw.app[SETTINGS].data_dir, files)
    assert not hits, "\n".join(sorted(set(hits)))
    # the scan is not blind: the AOF was read, and the numbers are there — encrypted
    assert any(p.parent.name == "appendonlydir" or p.suffix == ".aof" for p in files), files
    keys = gw.app[RKEYS]
    opened = "\n".join(keys.unseal(v) for v in sealed)
    for secret in (SMS_PHONE, TG_PHONE, REST_PHONE, WEB_PHONE):
        assert secret in opened or f"{secret[:3]}****{secret[-4:]}" in opened, secret
