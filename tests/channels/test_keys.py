"""The channels' and outboxes' Redis key names come from ``gateway/rkeys.py`` and are the very strings written
before they moved there: data kept in Redis (opt-outs, receipts, held WeChat messages, queued texts…) survives an
upgrade. The outbox's names are also read back from a real Redis after it wrote them."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import redisconn
from gateway.channels.authn import MAX_SKEW
from gateway.metrics import Metrics
from gateway.outbox import Job, Outbox, OutboxPolicy
from gateway.rkeys import WEBHOOK_REPLAY_TTL, Keys, deployment_keys

ROOT = Path(__file__).resolve().parents[2]
K = Keys("gw:")

# each name as the modules wrote it before (f"{prefix}…"), byte for byte
PINNED = {
    K.sms_optout(): "gw:sms:optout",
    K.sms_receipt("SM0a1b"): "gw:sms:receipt:SM0a1b",
    K.telegram_callback("0123abcd"): "gw:tg:cb:0123abcd",
    K.passive_claim("wechat", "6001"): "gw:{wechat}:claim:6001",
    K.passive_claim("weibo", "42:1700000000:text:ab12cd34"): "gw:{weibo}:claim:42:1700000000:text:ab12cd34",
    K.wechat_token(): "gw:{wechat}:token",
    K.wechat_token_lock(): "gw:{wechat}:token:lock",
    K.wechat_window("oFan1"): "gw:{wechat}:win:oFan1",
    K.wechat_held("oFan1"): "gw:{wechat}:held:oFan1",
    K.wechat_unsubscribed("oFan1"): "gw:{wechat}:unsub:oFan1",
    K.weibo_unsubscribed("42"): "gw:{weibo}:unsub:42",
    K.forum_topic("alice"): "gw:{forum}:topic:alice",
    K.forum_event("77"): "gw:{forum}:event:77",
    K.forum_feed_lock(): "gw:{forum}:feed:lock",
    K.forum_feed_http(): "gw:{forum}:feed:http",
    K.forum_feed_seen(): "gw:{forum}:feed:seen",
    K.smpp_inbox(): "gw:{smpp}:inbox",
    K.smpp_parts("13800138000", 17, 2): "gw:{smpp}:parts:13800138000:17:2",
    K.smpp_seen("a" * 20): "gw:{smpp}:seen:" + "a" * 20,
    K.outbox_due("sms"): "gw:{out:sms}:due",
    K.outbox_dead("telegram"): "gw:{out:telegram}:dead",
    K.outbox_queue("sms", "13800138000"): "gw:{out:sms}:q:13800138000",
    K.outbox_queue("sms", ""): "gw:{out:sms}:q:",  # the prefix the claim script appends recipients to
    K.outbox_next("sms", "13800138000"): "gw:{out:sms}:next:13800138000",
    K.outbox_id("sms", "f00d"): "gw:{out:sms}:id:f00d",
    K.outbox_id("sms", "-"): "gw:{out:sms}:id:-",
    K.outbox_second("telegram", 1700000000): "gw:{out:telegram}:sec:1700000000",
    K.webhook_seen("sms", "d1"): "gw:webhook:sms:d1",
}


def test_key_names_are_the_strings_written_before():
    for got, expected in PINNED.items():
        assert got == expected


def test_a_replay_is_remembered_until_its_timestamp_expires():
    assert WEBHOOK_REPLAY_TTL >= 2 * MAX_SKEW


def test_no_channel_builds_its_own_key_names():
    """Key names are built in rkeys.py only: no adapter, nor the outbox, joins a prefix or a hash tag itself."""
    sources = [*(ROOT / "gateway" / "channels").glob("*.py"), ROOT / "gateway" / "outbox.py"]
    assert len(sources) > 8
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "key_prefix" not in text, path.name
        assert not re.search(r"prefix\}|\{\{(out|smpp|wechat|weibo|forum)", text), path.name


async def test_the_outbox_writes_its_keys_under_the_same_names(redis_url, key_prefix):
    client = redisconn.client(redis_url)
    outbox = Outbox(client, deployment_keys(key_prefix), "sms", Metrics(), OutboxPolicy())
    try:
        assert await outbox.put(Job(to="13800138000", text="hi", id="f00d"))
        assert await outbox.put(Job(to="13800138001", text="hi"))  # no id: no marker
        found = {k.decode() async for k in client.scan_iter(match=f"{key_prefix}*")}
        k = deployment_keys(key_prefix)  # a recipient is named by its keyed hash, never the number
        out = f"{key_prefix}{{out:sms}}"
        assert found == {f"{out}:due", f"{out}:q:{k.cid('13800138000')}", f"{out}:q:{k.cid('13800138001')}",
                         f"{out}:id:f00d"}  # fmt: skip
        assert not any("1380013800" in name for name in found)
        assert 0 < await client.ttl(f"{key_prefix}{{out:sms}}:id:f00d") <= 86400
    finally:
        await client.aclose()
