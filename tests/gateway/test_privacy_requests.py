"""Data-subject requests end to end: a customer talks on every channel of a real ``gateway --workers 2`` (SMS
webhook, REST, Telegram against its fake Bot API, the web chat signed in with their number: a chat with an agent, a
survey, a complaint case; a callback left by an anonymous visitor who typed the number), then ``gateway privacy
export`` holds all of it and ``POST /api/privacy/delete`` erases it: a scan of every key and value (sealed ones
opened) and of the data directory finds the number in no spelling — clear, with separators, full width, base64 —
while another customer's data stays and the case stays, anonymised. Consent: TD withdraws marketing, a broadcast
skips the number. Retention: ``gateway privacy purge --dry-run`` counts what is older than its days, and the purge
removes it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from gateway import consent, redisconn, retention, subject
from gateway.redisconn import sync_client
from gateway.rkeys import Keys, deployment_keys
from gateway.settings import SettingsError, load_settings
from gateway.subject import SEALED
from gateway.vault import KeyringError
from tests.cases.conftest import TICKET
from tests.channels.conftest import SMS_SECRET, TG_SECRET
from tests.channels.fake_sms import FakeHttpSms
from tests.channels.fake_telegram import FakeTelegram
from tests.cluster import binaries, redis_cluster
from tests.conftest import NLU_CACHE
from tests.gateway.test_server_process import free_port
from tests.gateway.test_workers import read_until, stop_supervisor
from tests.handoff.conftest import SECRET, AgentClient, WebCustomer, handoff_config, make_gateway, people  # noqa: F401
from tests.handoff.test_handoff import is_

ROOT = Path(__file__).resolve().parents[2]
PHONE, OTHER = "13800138000", "13900139000"
SPELLINGS = [PHONE, "138 0013 8000", "138-0013-8000", "+8613800138000", "１３８００１３８０００",
             base64.b64encode(PHONE.encode()).decode().rstrip("="),
             base64.b64encode(b"+86" + PHONE.encode()).decode().rstrip("=")]  # fmt: skip
TG_CHAT = 515151
pytestmark = pytest.mark.slow


# ---- an independent scan: every key and value, sealed parts opened ------------------------------------------------
def _open(keys: Keys, text: str) -> str:
    def one(m: re.Match[str]) -> str:
        try:
            return keys.unseal(m.group(0))
        except KeyringError:
            return m.group(0)

    for _ in range(3):
        text = SEALED.sub(one, text)
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return unicodedata.normalize("NFKC", text)


def traces(text: str, number: str = PHONE) -> bool:
    """The number in ``text`` in any spelling: separators between digits dropped, +86 kept or not, base64."""
    if any(s in text for s in SPELLINGS if number == PHONE):
        return True
    joined = re.sub(r"(?<=\d)[\s\-－]+(?=\d)", "", text)
    return number in joined or base64.b64encode(number.encode()).decode().rstrip("=") in text


async def everything(redis: aioredis.Redis, keys: Keys) -> list[tuple[str, str]]:
    """(key name, readable value) for every key and entry of the deployment."""
    out: list[tuple[str, str]] = []
    async for key in redis.scan_iter(match=f"{keys.prefix}*", count=1000):
        name = key.decode()
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values = [await redis.get(key)]
        elif kind == "hash":
            values = [f + b"=" + v for f, v in (await redis.hgetall(key)).items()]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        elif kind == "stream":
            values = [b" ".join(k + b"=" + v for k, v in f.items()) for _, f in await redis.xrange(key)]
        else:
            values = []
        out.append((name, _open(keys, name)))
        out += [(name, _open(keys, (v or b"").decode("utf-8", "replace"))) for v in values]
    return out


def files_with_traces(folder: Path) -> list[str]:
    """Files of the data directory (the NLU model it links to aside) that hold the number in a spelling."""
    needles = [s.encode() for s in SPELLINGS]
    found = []
    for top in folder.iterdir():
        if top.is_symlink():
            continue
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            readable = path.is_file() and not path.is_symlink() and not path.name.endswith(".sock")
            if readable and any(n in path.read_bytes() for n in needles):
                found.append(str(path.relative_to(folder)))
    return found


# ---- the deployment ----------------------------------------------------------------------------------------------
def _cli(data: Path, command: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``gateway <command> --data-dir <data> <args>`` beside the running gateway (its embedded Redis)."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.run([sys.executable, "-m", "gateway", command, "--data-dir", str(data), *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)  # fmt: skip


async def sms_in(base: str, fake: FakeHttpSms, text: str, from_: str = "+86" + PHONE) -> None:
    assert await fake.post_inbound(f"{base}/channels/sms/webhook", from_, "10658000", text) == 200


async def telegram(base: str, api: FakeTelegram, update_id: int, text: str) -> str:
    before = len(api.sent(TG_CHAT))
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    update = api.text_update(update_id, TG_CHAT, text)
    url = f"{base}/channels/telegram/webhook"
    async with aiohttp.ClientSession() as session, session.post(url, headers=headers, json=update) as resp:
        assert resp.status == 200
    await api.wait_for("sendMessage", before + 1, chat_id=TG_CHAT, timeout=15)
    return str(api.sent(TG_CHAT)[before]["text"])


async def rest(base: str, sender: str, text: str) -> list[dict[str, Any]]:
    body = {"sender": sender, "message": text}
    async with aiohttp.ClientSession() as session, session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return list(await resp.json())


async def one_time_code(sms: FakeHttpSms, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sms.messages:
            found = re.search(r"验证码\D{0,8}(\d{6})", message["text"])
            if found:
                return found.group(1)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no one-time code texted: {sms.messages}")


def bot(frame: dict[str, Any]) -> bool:
    return frame.get("from") == "bot"


async def converse(base: str, sms: FakeHttpSms, api: FakeTelegram, agent: AgentClient, *others: AgentClient) -> str:
    """The customer on every channel; the complaint's ticket."""
    await sms_in(base, sms, "查余额")
    await rest(base, "rest-7f3a9c2e", "我的手机号是 138 0013 8000，帮我查一下话费")
    await sms_in(base, sms, "查流量", from_="+86" + OTHER)  # another customer: must survive the deletion
    assert "手机号" in await telegram(base, api, 1, "/bind")
    await telegram(base, api, 2, PHONE)
    code = await one_time_code(sms)
    assert "绑定" in await telegram(base, api, 3, code)
    assert "余额" in await telegram(base, api, 4, "我还有多少话费")

    customer = WebCustomer(base, PHONE)
    try:
        await customer.connect()
        await customer.send("帮我转人工客服")
        await customer.expect(is_("agent_joined"), timeout=15)
        chat_id = (await agent.expect(is_("assigned"), timeout=15))["chat"]["id"]
        await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，请问有什么可以帮您？"})
        await customer.send("我家宽带一直掉线，光猫红灯")
        await agent.call("POST", f"/api/chats/{chat_id}/notes", {"text": "客户留了号码13800138000"})
        await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
        survey = await customer.expect(lambda f: bot(f) and "打分" in f.get("text", ""), timeout=15)
        await customer.send(survey["buttons"][1]["payload"])
        await customer.expect(lambda f: bot(f) and "意见或建议" in f["text"], timeout=15)
        await customer.send("满意，有事打 138-0013-8000")
        await customer.expect(lambda f: bot(f) and "感谢您的反馈" in f["text"], timeout=15)
        await customer.send("我要投诉，家里宽带三天都连不上网，信号太差了")
        reply = await customer.expect(lambda f: bot(f) and TICKET.search(f.get("text", "")) is not None, timeout=15)
        ticket = TICKET.search(reply["text"]).group(0)  # type: ignore[union-attr]
    finally:
        await customer.close()

    for who in (agent, *others):  # nobody online: a callback task
        await who.call("POST", "/api/agent/status", {"status": "away"})
    visitor = WebCustomer(base, None)
    try:
        await visitor.connect()
        await visitor.send("转人工")
        assert "留言" in (await visitor.expect(bot, timeout=15))["text"]
        await visitor.send("宽带坏了，请回电 13800138000")
        assert "留言已记录" in (await visitor.expect(bot, timeout=15))["text"]
    finally:
        await visitor.close()
    return ticket


@pytest.fixture
async def fakes() -> Any:
    sms = FakeHttpSms(auth_header="Authorization: Bearer sms-key", webhook_secret=SMS_SECRET)
    api = FakeTelegram()
    await sms.start()
    await api.start()
    yield sms, api
    await sms.stop()
    await api.stop()


async def test_export_and_delete_across_every_key_family_on_two_processes(fakes, nlu_engine, tmp_path):
    sms, api = fakes
    data = tmp_path / "var"
    data.mkdir()
    (data / "nlu").symlink_to(NLU_CACHE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "WEBCHAT_JWT_SECRET": SECRET, "GATEWAY_SMS_PROVIDER": "http", "GATEWAY_SMS_HTTP_URL": f"{sms.base_url}/send",
        "SMS_WEBHOOK_SECRET": SMS_SECRET, "SMS_HTTP_AUTH_HEADER": "Authorization: Bearer sms-key",
        "GATEWAY_SMS_PER_NUMBER_INTERVAL": "0.05", "GATEWAY_SMS_BACKOFF_BASE": "0.2",
        "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
        "GATEWAY_TELEGRAM_API_BASE_URL": api.base_url, "GATEWAY_TELEGRAM_PER_CHAT_INTERVAL": "0.05",
    }  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--workers", "2", "--port", str(port), "--data-dir",
                             str(data)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    agent = AgentClient(base, "agent1", "demo-agent1")
    boss = AgentClient(base, "super1", "demo-super1")
    admin = AgentClient(base, "dpo", "a-long-password-1")
    keys = deployment_keys("gw:")
    redis = aioredis.Redis(unix_socket_path=str(data / "redis" / "redis.sock"))
    try:
        await read_until(proc, "2 workers serving", 90)
        added = _cli(data, "agents", "add", "dpo", "--role", "admin", "--password-stdin", stdin="a-long-password-1\n")
        assert added.returncode == 0, added.stderr
        for who in (agent, boss, admin):
            await who.login()
        await agent.connect()
        ticket = await converse(base, sms, api, agent, boss, admin)

        # consent: TD withdraws marketing texts; the broadcast skips the number, not the other one
        await sms_in(base, sms, "TD")
        sent = await boss.call("POST", "/api/sms/broadcast", {"text": "流量月包半价", "numbers": [PHONE, OTHER]})
        assert sent == {"queued": 1, "opted_out": 1, "duplicates": 0, "invalid": 0}
        before = [name for name, text in await everything(redis, keys) if traces(text)]
        assert len(set(before)) >= 5, before  # the scan sees the number (the check can fail)

        # export (the command line, beside the running gateway): every family, decrypted
        out = tmp_path / "subject.json"
        done = _cli(data, "privacy", "export", "+86 138-0013-8000", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert PHONE not in done.stdout and "138****8000" in done.stdout
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        document = json.loads(out.read_text(encoding="utf-8"))
        for family in ("conversations", "bindings", "handoff_chats", "history", "surveys", "callbacks", "cases",
                       "consent"):  # fmt: skip
            assert family in document["data"], (family, sorted(document["data"]))
        text = json.dumps(document, ensure_ascii=False)
        for said in ("查余额", "我家宽带一直掉线", "满意，有事打 138-0013-8000", "请回电 13800138000",
                     "我还有多少话费", "客户留了号码13800138000", ticket):  # fmt: skip
            assert said in text, said
        assert OTHER not in text  # nobody else's data

        # delete (the admin API): nothing left anywhere, the other customer and the anonymised case stay
        assert (await boss.raw("POST", "/api/privacy/delete", {"phone": PHONE, "confirm": True}))[0] == 403
        assert (await admin.raw("POST", "/api/privacy/delete", {"phone": PHONE}))[0] == 400
        counts = await admin.call("POST", "/api/privacy/delete", {"phone": "+86 138 0013 8000", "confirm": True,
                                                                   "reason": "PIPL art. 47 request"})  # fmt: skip
        assert counts["keys_deleted"] >= 10 and counts["cases_anonymised"] == 1, counts
        assert counts["persistence"] == "rewritten"
        after = [(name, text) for name, text in await everything(redis, keys) if traces(text)]
        assert after == [], after
        assert any(traces(text, OTHER) for _, text in await everything(redis, keys))
        assert files_with_traces(data) == []
        case = await boss.call("GET", f"/api/cases/{ticket}")
        assert case["ticket"] == ticket and case["type"] == "network" and case["status"]
        assert case["summary"] == "erased" and case["facts"] == {}
        again = _cli(data, "privacy", "export", PHONE, "--out", str(out))
        assert again.returncode == 0, again.stderr
        left = json.loads(out.read_text(encoding="utf-8"))["data"]
        assert set(left) <= {"consent", "cases"}, left  # a withdrawal (no number in it) and the anonymised case
        assert (await admin.call("GET", "/api/audit?what=deletion"))["entries"][0]["reason"] == "PIPL art. 47 request"
        # after the erasure the number gets no marketing (the consent record keeps the withdrawal)
        sent = await boss.call("POST", "/api/sms/broadcast", {"text": "流量月包半价", "numbers": [PHONE]})
        assert sent["opted_out"] == 1
    finally:
        await redis.aclose()
        for who in (agent, boss, admin):
            await who.close()
        stop_supervisor(proc, data)


# ---- consent and retention on one app ----------------------------------------------------------------------------
async def test_consent_api_and_roles(make_gateway, people):  # noqa: F811
    gw = await make_gateway()
    boss, plain = people("agent", gw.base, "super1", "demo-super1"), people("agent", gw.base, "agent1", "demo-agent1")
    await boss.login()
    await plain.login()
    headers = {"X-Customer-Phone": "+86 138 0013 8000"}
    async with boss.session.get(f"{gw.base}/api/privacy/consent", headers=headers) as resp:
        view = await resp.json()
    assert view["allowed"]["sms"] is True and view["records"] == {} and view["default"] == "opt_out"
    status, error = await boss.raw("GET", "/api/privacy/consent")
    assert status == 400 and "X-Customer-Phone" in error["error"]
    body = {"phone": PHONE, "channel": "sms", "granted": False, "source": "api"}
    assert (await plain.raw("PUT", "/api/privacy/consent", body))[0] == 403
    async with boss.session.put(f"{gw.base}/api/privacy/consent", json=body,
                                headers={"X-CSRF-Token": boss.csrf}) as resp:  # fmt: skip
        view = await resp.json()
        assert resp.status == 200, view
    assert view["allowed"]["sms"] is False and view["allowed"]["wechat"] is True
    assert view["records"]["sms"]["source"] == "api" and view["records"]["sms"]["by"] == "super1"
    for bad, field in (({**body, "channel": "fax"}, "channel"), ({**body, "phone": "abc"}, "phone"),
                       ({**body, "source": "DROP TABLE"}, "source")):  # fmt: skip
        async with boss.session.put(f"{gw.base}/api/privacy/consent", json=bad,
                                    headers={"X-CSRF-Token": boss.csrf}) as resp:  # fmt: skip
            assert resp.status == 400 and field in (await resp.json())["error"]
    assert (await boss.raw("POST", "/api/privacy/export", {"phone": PHONE}))[0] == 403  # admins only


async def test_purge_dry_run_counts_and_purge_removes_what_is_older(redis_client, key_prefix, redis_url):
    keys = deployment_keys(key_prefix)
    old, recent = int((time.time() - 100 * 86400) * 1000), int(time.time() * 1000)
    for stream in (keys.handoff_callbacks(), keys.handoff_surveys()):
        await redis_client.xadd(stream, {"e": keys.seal("{}")}, id=f"{old}-0")
        await redis_client.xadd(stream, {"e": keys.seal("{}")}, id=f"{recent}-0")
    log = keys.conversation_log("sms", PHONE, "conv-old")
    await redis_client.xadd(log, {"e": keys.seal("{}")}, id=f"{old - 90 * 86400 * 1000}-0")
    await redis_client.hset(keys.conversation("conv-old"), mapping={"channel": "sms"})
    env = {**os.environ, "REDIS_URL": redis_url, "GATEWAY_REDIS_KEY_PREFIX": key_prefix}
    command = [sys.executable, "-m", "gateway", "privacy", "purge"]
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert dry.returncode == 0, dry.stderr
    counts = dict(re.findall(r"^\s+(\w+)\s+(\d+)", dry.stdout, re.M))
    assert counts == {
        "conversations": "1",
        "history": "0",
        "surveys": "0",
        "callbacks": "1",
        "cases": "0",
        "broadcasts": "0",
        "audit": "0",
    }, dry.stdout  # surveys are kept 400 days, callbacks 90
    assert await redis_client.xlen(keys.handoff_callbacks()) == 2  # a dry run deletes nothing
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (
        await redis_client.xlen(keys.handoff_callbacks()) == 1 and await redis_client.xlen(keys.handoff_surveys()) == 2
    )
    assert not await redis_client.exists(log, keys.conversation("conv-old"))


async def test_a_deletion_reaches_every_master_of_a_cluster(tmp_path):
    if binaries() is None:
        pytest.skip("no redis-server and redis-cli binaries here")
    keys = deployment_keys("gw:")
    with redis_cluster(tmp_path) as url:
        client = redisconn.client(url)
        try:
            sealed = keys.seal(json.dumps({"text": f"我的号码 +86 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}"}))
            await client.hset(keys.sender("sms", PHONE), mapping={"conv": "c0ffee0001", "bot": keys.seal("{}")})
            await client.xadd(keys.conversation_log("sms", PHONE, "c0ffee0001"), {"e": sealed})
            await client.hset(keys.conversation("c0ffee0001"), mapping={"channel": "sms", "sender": keys.seal(PHONE)})
            await client.xadd(keys.handoff_callbacks(), {"e": sealed})
            await client.xadd(keys.handoff_callbacks(), {"e": keys.seal(json.dumps({"text": f"call {OTHER}"}))})
            await client.hset(keys.incident_links("I1"), mapping={f"phone:{PHONE}": "{}", f"phone:{OTHER}": "{}"})
            await client.rpush(keys.incident_broadcast_numbers("B1"), PHONE, OTHER)
            await client.set(keys.binding("telegram", "42"), keys.seal(PHONE))
            for channel, sender, conv in (("socketio", "sid-4f1c2a9b77e0", "c0ffee0004"),
                                          ("wechat", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "c0ffee0005")):  # fmt: skip
                await client.xadd(keys.conversation_log(channel, sender, conv), {"e": sealed})  # names the number
                await client.hset(keys.conversation(conv), mapping={"channel": channel, "sender": keys.seal(sender)})
            await client.xadd(keys.visitor_outbox("sio:sid-4f1c2a9b77e0"), {"f": keys.seal('{"m": ["hi"]}')})
            await client.hset(keys.wechat_window("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), mapping={"last_in": 1})
            job = keys.seal(json.dumps({"to": PHONE, "text": "您的验证码是123456", "kind": "otp"}))
            await client.rpush(keys.outbox_dead("sms"), job, keys.seal(json.dumps({"to": OTHER})))
            await client.rpush(keys.outbox_queue("sms", keys.cid(PHONE)), job)
            await client.zadd(keys.outbox_due("sms"), {keys.cid(PHONE): 1, keys.cid(OTHER): 2})
            await client.hset(keys.nlu_review_items(), mapping={"s1": json.dumps({"text": f"号码{PHONE}"}),
                                                                "s2": json.dumps({"text": "查话费"})})  # fmt: skip
            await client.hset(keys.complaint("T1"), mapping={"owner": keys.seal(f"phone:{PHONE}"), "type": "network"})
            await client.hset(keys.sender("telegram", "42"), mapping={"conv": "c0ffee0002"})
            before = {k for k in sync_client(url).scan_iter(match="gw:*")}
            assert len({client.keyslot(k) for k in before}) > 3  # spread over the masters' slots
            finder, hits = await subject.gather(client, keys, PHONE)
            counts = await subject.delete(client, keys, finder, hits, embedded=False)
            assert "BGREWRITEAOF" in counts["persistence"]
            left = await everything_on(url, keys)
            assert [t for _, t in left if traces(t)] == [] and any(traces(t, OTHER) for _, t in left)
            assert not await client.exists(keys.sender("telegram", "42"))  # the bound account's keys went too
            assert await client.llen(keys.outbox_dead("sms")) == 1 and await client.zcard(keys.outbox_due("sms")) == 1
            assert await client.hkeys(keys.nlu_review_items()) == [b"s2"]
            assert not await client.exists(keys.visitor_outbox("sio:sid-4f1c2a9b77e0"))  # Socket.IO pending frames
            assert not await client.exists(keys.wechat_window("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
            assert not await client.exists(keys.complaint("T1"), keys.outbox_queue("sms", keys.cid(PHONE)))
        finally:
            await client.aclose()


async def everything_on(url: str, keys: Keys) -> list[tuple[str, str]]:
    out = []
    for host, port in redisconn.cluster_nodes(url):
        node = aioredis.Redis(host=host, port=port)
        try:
            if (await node.info("replication"))["role"] == "master":
                out += await everything(node, keys)
        finally:
            await node.aclose()
    return out


@pytest.mark.parametrize("raw", ["13800138000", "+86 138-0013-8000", "0086 138 0013 8000", "１３８００１３８０００",
                                 "(+86) 138.0013.8000"])  # fmt: skip
def test_every_spelling_of_a_number_is_the_same_customer(raw):
    assert subject.national(raw) == PHONE
    finder = subject.Finder(Keys("gw:"), PHONE)
    assert finder.mentions(f"请打{raw}找我") and not finder.mentions("138****8000 1380013800012 23800138000")


async def test_old_opt_outs_become_consent_records_and_the_clear_numbers_go(redis_client, key_prefix):
    keys = deployment_keys(key_prefix)
    await redis_client.hset(keys.sms_optout(), mapping={PHONE: "1700000000.5", "+447700900123": "1700000001"})
    assert await consent.migrate_sms_optout(redis_client, keys) == 2
    assert not await redis_client.exists(keys.sms_optout())
    record = (await consent.read(redis_client, keys, PHONE))["sms"]
    assert record["granted"] is False and record["source"] == "sms:TD" and record["at"] == 1700000000.5
    assert not await consent.may_market(redis_client, keys, PHONE, "sms")
    assert await consent.may_market(redis_client, keys, PHONE, "wechat")  # another channel: the default
    assert not await consent.may_market(redis_client, keys, OTHER, "sms", "opt_in")  # nothing granted
    await consent.record(redis_client, keys, PHONE, "sms", True, "console", "super1")
    again = (await consent.read(redis_client, keys, PHONE))["sms"]
    assert again["granted"] is True and again["history"] == [[False, 1700000000.5, "sms:TD"]]
    names = [k.decode() async for k in redis_client.scan_iter(match=f"{key_prefix}*")]
    assert not any(PHONE in n or "7700900123" in n for n in names)


async def test_the_command_line_asks_before_erasing_and_audits(redis_client, key_prefix, redis_url):
    keys = deployment_keys(key_prefix)
    await redis_client.hset(keys.sender("sms", PHONE), mapping={"conv": "c0ffee0003"})
    await redis_client.xadd(keys.conversation_log("sms", PHONE, "c0ffee0003"), {"e": keys.seal('{"text": "hi"}')})
    await redis_client.set(keys.sender("sms", OTHER), "someone else")
    env = {**os.environ, "REDIS_URL": redis_url, "GATEWAY_REDIS_KEY_PREFIX": key_prefix}
    command = [sys.executable, "-m", "gateway", "privacy", "delete", "+86 138 0013 8000"]
    refused = subprocess.run(command, input="no\n", capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert refused.returncode == 1 and "nothing erased" in refused.stdout
    assert await redis_client.exists(keys.sender("sms", PHONE))
    done = subprocess.run([*command, "--yes"], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "2 key(s) deleted" in done.stdout and "BGREWRITEAOF" in done.stdout and PHONE not in done.stdout
    assert not await redis_client.exists(keys.sender("sms", PHONE)) and await redis_client.exists(
        keys.sender("sms", OTHER)
    )
    (entry,) = [f for _, f in await redis_client.xrange(keys.audit()) if f[b"what"] == b"deletion"]
    assert entry[b"who"].startswith(b"cli") and entry[b"customer"].decode() == keys.cid(PHONE)
    bad = subprocess.run([*command[:-1], "not-a-number", "--yes"], capture_output=True, text=True, env=env,
                         timeout=60, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "not a phone number" in bad.stderr


async def test_the_daily_purge_runs_in_one_process_of_the_deployment(redis_client, key_prefix, caplog):
    keys = deployment_keys(key_prefix)
    old = int((time.time() - 100 * 86400) * 1000)
    await redis_client.xadd(keys.handoff_callbacks(), {"e": keys.seal("{}")}, id=f"{old}-0")
    privacy = load_settings().privacy
    caplog.set_level("INFO", logger="gateway.retention")
    tasks = [asyncio.create_task(retention.run_daily(redis_client, keys, privacy, interval=0.2)) for _ in range(2)]
    try:
        deadline = time.monotonic() + 10
        while await redis_client.xlen(keys.handoff_callbacks()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # both workers had their turns
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert await redis_client.xlen(keys.handoff_callbacks()) == 0
    assert 0 < await redis_client.ttl(keys.privacy_purge_lock()) <= 23 * 3600
    assert len([r for r in caplog.records if "retention purge:" in r.getMessage()]) == 1  # one process, once


WRONG = [("MARKETING_DEFAULT", "maybe", "privacy.marketing_default"), ("CALLBACKS_DAYS", "0", "privacy.callbacks_days"),
         ("AUDIT_DAYS", "three", "GATEWAY_PRIVACY_AUDIT_DAYS")]  # fmt: skip


@pytest.mark.parametrize(("name", "value", "problem"), WRONG)
def test_a_wrong_privacy_setting_is_named(name, value, problem):
    with pytest.raises(SettingsError, match=problem.replace(".", r"\.")):
        load_settings(env={f"GATEWAY_PRIVACY_{name}": value})
