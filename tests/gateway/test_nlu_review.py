"""The NLU learning loop in one gateway: collection (masked, deduplicated, capped), the review API, an agent's
re-label, the review file in Rasa YAML, and a retrain refused when it is worse. Real Redis, a real child process
for the retrain (on a small sample of the bundled data, so it takes seconds)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
import time
from asyncio.subprocess import PIPE
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app import create_app
from gateway.keys import PIPELINE
from gateway.nlu_review import Collector
from gateway.nlu_review_api import LOOP
from gateway.rkeys import deployment_keys
from handoff.config import load_handoff_config
from nlu.data import load, load_rasa_yaml
from nlu.review import add_examples, label_of
from tests.handoff.conftest import SECRET, AgentClient, WebCustomer

PHONE = "13812345678"
ROOT = Path(__file__).resolve().parents[2]


def write_base(path: Path, per: int = 3, seed: int = 7) -> Path:
    """A small sample of the bundled data (``per`` examples of each label and language), as Rasa YAML."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in load():
        groups[(label_of(e), e.lang)].append(e.text)
    rng = random.Random(seed)
    out: dict[str, list[str]] = defaultdict(list)
    for (label, _), texts in sorted(groups.items()):
        out[label] += rng.sample(texts, min(per, len(texts)))
    lines = ['version: "3.1"', "nlu:"]
    for label, texts in out.items():
        lines += [f"- intent: {label}", "  examples: |", *(f"    - {t}" for t in texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(every)


@pytest.fixture
async def gateway(aiohttp_server: Any, make_settings: Any, nlu_engine: Any, tmp_path: Path) -> Any:
    async def make(**nlu: Any) -> Any:
        nlu = {"review_threshold": 0.95, "review_dir": str(tmp_path / "review"), **nlu}
        settings = make_settings(webchat={"token_secret": SECRET}, nlu=nlu)
        config = load_handoff_config().replace(push=False)  # chats wait in the queue to be accepted
        server = await aiohttp_server(create_app(settings, nlu=nlu_engine, handoff_config=config))
        server.base = str(server.make_url("")).rstrip("/")
        return server

    return make


@pytest.fixture
async def clients() -> Any:
    made: list[Any] = []

    def make(kind: str, *args: Any) -> Any:
        made.append(AgentClient(*args) if kind == "agent" else WebCustomer(*args))
        return made[-1]

    yield make
    for c in made:
        await c.close()


async def rest(base: str, sender: str, text: str) -> list[dict[str, Any]]:
    body = {"sender": sender, "message": text}
    async with aiohttp.ClientSession() as http, http.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_unsure_messages_are_collected_masked_once_each(gateway, clients, nlu_engine, redis_client,
                                                              key_prefix):  # fmt: skip
    server = await gateway()
    candidates = [f"我的号码{PHONE}，那个 app 咋弄啊", f"我的号码{PHONE}，app 那个东西呢", f"{PHONE} 嗯 zzq 那啥 qx"]
    unsure = next(t for t in candidates if nlu_engine.parse(t).confidence < 0.95)
    sure = "查一下话费余额"
    assert nlu_engine.parse(sure).confidence >= 0.95  # the premise
    await rest(server.base, "u1", unsure)
    await rest(server.base, "u2", unsure.replace(" app ", "  APP "))  # the same, but for case and spacing
    await rest(server.base, "u3", unsure)
    await rest(server.base, "u1", sure)
    boss = clients("agent", server.base, "super1", "demo-super1")
    await boss.login()

    async def listed() -> Any:
        body = await boss.call("GET", "/api/nlu/review")
        return body if sum(s["count"] for s in body["samples"]) >= 3 else None

    body = await until(listed)
    by_text = {s["text"]: s for s in body["samples"]}
    masked = unsure.replace(PHONE, "138****5678")
    assert by_text[masked]["count"] == 3 and by_text[masked]["lang"] == "zh"
    assert by_text[masked]["guess"] in body["labels"] and by_text[masked]["source"] in ("fallback", "low_confidence")
    assert not any(s["text"].startswith("查一下") for s in body["samples"])  # a confident turn is not collected
    assert body["names"]["complaint/network"] == {"zh": "投诉 · 网络类", "en": "Complaint · network"}
    # nothing of the number at rest
    keys = deployment_keys(key_prefix)
    raw = await redis_client.hgetall(keys.nlu_review_items())
    assert raw and not any(PHONE.encode() in v for v in raw.values())
    assert 0 < await redis_client.ttl(keys.nlu_review_items()) <= 30 * 86400
    # a plain agent may not see the review
    agent = clients("agent", server.base, "agent1", "demo-agent1")
    await agent.login()
    status, error = await agent.raw("GET", "/api/nlu/review")
    assert status == 403 and error["error_zh"]


async def test_collection_is_capped_and_decided_samples_are_not_collected_again(redis_client, key_prefix, nlu_engine,
                                                                               make_settings):  # fmt: skip
    settings = make_settings(nlu={"review_max": 3, "review_threshold": 1.01})  # everything counts as unsure
    collector = Collector(redis_client, deployment_keys(key_prefix), settings.nlu)
    from gateway.nlu_review import ReviewStore

    store = ReviewStore(redis_client, deployment_keys(key_prefix), settings.nlu)
    for n in range(5):
        collector.offer(nlu_engine, nlu_engine.parse(f"第{n}个奇怪的问题 example {n}"))
        await collector.flush()
        await asyncio.sleep(0.01)
    texts = [s["text"] for s in await store.pending()]
    assert sorted(texts) == sorted(f"第{n}个奇怪的问题 example {n}" for n in (2, 3, 4))  # the newest three
    first = next(s for s in await store.pending() if s["text"].startswith("第4"))
    assert (await store.claim(first["id"]))["text"] == first["text"]
    assert await store.claim(first["id"]) is None  # decided once
    collector.offer(nlu_engine, nlu_engine.parse("第4个奇怪的问题 example 4"))
    await collector.flush()
    assert first["id"] not in {s["id"] for s in await store.pending()}  # not collected again


async def test_decisions_go_to_the_review_file_in_rasa_yaml(gateway, clients, redis_client, key_prefix, nlu_engine,
                                                           tmp_path):  # fmt: skip
    server = await gateway()
    loop = server.app[LOOP]
    texts = ["余额宝宝还剩几个钱", "sing me a lullaby about clouds", "那啥那啥", "我要告你们 信号太烂了"]
    for text in texts:
        await loop.collector.label(text, "zh", None, None, "query_balance", "agent1")  # agent labels, then decide
    boss = clients("agent", server.base, "super1", "demo-super1")
    await boss.login()
    samples = {s["text"]: s for s in (await boss.call("GET", "/api/nlu/review"))["samples"]}
    assert {s["agent_label"] for s in samples.values()} == {"query_balance"}
    decide = [("accept", None), ("out_of_scope", None), ("discard", None), ("label", "complaint/network")]
    for text, (action, intent) in zip(texts, decide, strict=True):
        body = {"action": action, **({"intent": intent} if intent else {})}
        await boss.call("POST", f"/api/nlu/review/{samples[text]['id']}", body)
    got = {(e.text, label_of(e)) for e in load_rasa_yaml(loop.review_file)}
    assert got == {("余额宝宝还剩几个钱", "query_balance"), ("sing me a lullaby about clouds", "out_of_scope"),
                   ("我要告你们 信号太烂了", "complaint/network")}  # fmt: skip
    assert (await boss.call("GET", "/api/nlu/review"))["samples"] == []
    status, error = await boss.raw("POST", f"/api/nlu/review/{samples[texts[0]]['id']}", {"action": "accept"})
    assert status == 409 and error["error_zh"]
    await loop.collector.label("还有一个", "zh", None, None, "greet", "agent1")
    other = (await boss.call("GET", "/api/nlu/review"))["samples"][0]["id"]
    for body, field in (({"action": "label", "intent": "complaint"}, "intent"), ({"action": "maybe"}, "action"),
                        ({"action": "label"}, "intent")):  # fmt: skip
        status, error = await boss.raw("POST", f"/api/nlu/review/{other}", body)
        assert status == 400 and error["field"] == field and error["error_zh"], error
    status, error = await boss.raw("POST", "/api/nlu/review/not-an-id", {"action": "accept"})
    assert status == 400 and error["field"] == "id"


async def test_agent_relabels_a_message_of_the_chat_they_hold(gateway, clients, nlu_engine):
    server = await gateway()
    agent = clients("agent", server.base, "agent1", "demo-agent1")
    await agent.login()
    customer = clients("customer", server.base)
    await customer.connect()
    await customer.send("宽带好像又有点那个")
    await customer.expect(lambda f: f.get("from") == "bot")
    await customer.send("转人工")
    chat_id = (await until(lambda: _first_chat(agent)))["id"]
    await agent.call("POST", f"/api/chats/{chat_id}/accept")
    messages = (await agent.call("GET", f"/api/chats/{chat_id}/nlu"))["messages"]
    said = next(m for m in messages if m["text"] == "宽带好像又有点那个")
    assert said["intent"] == nlu_engine.parse("宽带好像又有点那个").intent
    other = clients("agent", server.base, "agent2", "demo-agent2")
    await other.login()
    status, _ = await other.raw("POST", f"/api/chats/{chat_id}/relabel", {"ref": said["ref"], "intent": "greet"})
    assert status == 403  # not their chat
    for body, code, field in (({"ref": "x", "intent": "broadband_repair"}, 400, "ref"),
                              ({"ref": said["ref"], "intent": "nonsense"}, 400, "intent"),
                              ({"ref": "1-0", "intent": "broadband_repair"}, 404, "ref")):  # fmt: skip
        status, error = await agent.raw("POST", f"/api/chats/{chat_id}/relabel", body)
        assert (status, error.get("field")) == (code, field) and error["error_zh"], error
    sample = (await agent.call("POST", f"/api/chats/{chat_id}/relabel",
                               {"ref": said["ref"], "intent": "broadband_repair"}))["sample"]  # fmt: skip
    assert sample["agent_label"] == "broadband_repair" and sample["text"] == "宽带好像又有点那个"
    boss = clients("agent", server.base, "super1", "demo-super1")
    await boss.login()
    listed = (await boss.call("GET", "/api/nlu/review"))["samples"]
    assert listed[0]["text"] == "宽带好像又有点那个" and listed[0]["agent_label"] == "broadband_repair"


async def _first_chat(agent: AgentClient) -> Any:
    chats = (await agent.call("GET", "/api/queue"))["chats"]
    return chats[0] if chats else None


async def test_retrain_worse_is_refused(gateway, clients, tmp_path):
    base = write_base(tmp_path / "base.yml")
    server = await gateway(retrain_data=[str(base)], retrain_folds=2)
    loop = server.app[LOOP]
    # greetings and thanks of the base data relabelled as complaints: the base data's own examples suffer
    wrong = [e.text for e in load_rasa_yaml(base) if e.intent in ("greet", "thanks", "goodbye")]
    add_examples(
        loop.review_file, [("complaint/other", f"{t}!") for t in wrong] + [("complaint/other", t) for t in wrong]
    )
    boss = clients("agent", server.base, "super1", "demo-super1")
    await boss.login()
    assert (await boss.call("POST", "/api/nlu/retrain", status=202))["job"]["state"] == "running"
    status, error = await boss.raw("POST", "/api/nlu/retrain")
    assert status == 409 and error["error_zh"]  # one at a time

    async def finished() -> Any:
        job = (await boss.call("GET", "/api/nlu/retrain"))["job"]
        return job if job.get("state") in ("done", "failed") else None

    job = await until(finished, timeout=50, every=0.5)
    assert job["state"] == "done", job
    result = job["result"]
    assert result["refused"] and result["accuracy"] < result["current_accuracy"], result
    status, error = await boss.raw("POST", "/api/nlu/switch", {"model": result["id"]})
    assert status == 409 and "worse" in error["error"] and "更差" in error["error_zh"]
    assert (await boss.call("GET", "/api/nlu/model"))["active"] is None
    status, error = await boss.raw("POST", "/api/nlu/switch", {"model": "nope"})
    assert status == 400 and error["field"] == "model"


async def test_cli_retrain_switches_a_running_gateway(gateway, tmp_path, redis_url, key_prefix):
    base = write_base(tmp_path / "base.yml")
    server = await gateway(retrain_data=[str(base)], retrain_folds=2, retrain_tolerance=0.02)
    loop = server.app[LOOP]
    text = "could the thingamajig on my line be checked"
    before = loop.follower.serving
    add_examples(loop.review_file, [("network_status", text), ("out_of_scope", "sing me a song about the sea")])
    env = {**os.environ, "GATEWAY_REDIS_KEY_PREFIX": key_prefix, "GATEWAY_NLU_RETRAIN_DATA": str(base),
           "GATEWAY_NLU_REVIEW_DIR": str(loop.review_file.parent), "GATEWAY_NLU_RETRAIN_TOLERANCE": "0.02"}  # fmt: skip
    command = [sys.executable, "-m", "gateway", "nlu", "--redis-url", redis_url, "--data-dir", str(tmp_path / "cli")]
    proc = await asyncio.create_subprocess_exec(*command, "retrain", "--folds", "2", env=env, cwd=ROOT,
                                                stdout=PIPE, stderr=PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 50)
    assert proc.returncode == 0, err.decode()
    printed = out.decode()
    assert "cross-validated accuracy on the base data (2 folds" in printed and "(2 new of 2)" in printed
    active = await loop.models.active()
    assert active and active["by"] == "cli"
    assert f"switched: every running gateway process loads model {active['id']}" in printed
    await until(lambda: _serving(loop, active["id"]))  # the running gateway followed the notice
    assert before == "" and server.app[PIPELINE].nlu.parse(text).intent == "network_status"
    proc = await asyncio.create_subprocess_exec(*command, "status", env=env, cwd=ROOT, stdout=PIPE, stderr=PIPE)
    out, _ = await proc.communicate()
    assert f"active model {active['id']}" in out.decode() and "(2 examples)" in out.decode()


async def _serving(loop: Any, ident: str) -> bool:
    return loop.follower.serving == ident


async def test_a_switch_measured_against_another_model_is_refused(gateway, clients, tmp_path, nlu_engine):
    """Models (not trained here: copies of the session's model, told apart by their metadata) switched by hand;
    the running gateway follows; a candidate measured against the model before is refused after a switch."""
    from nlu import NLUConfig
    from nlu.data import data_files
    from nlu.engine import artifact_key
    from tests.conftest import NLU_CACHE

    server = await gateway()
    loop = server.app[LOOP]
    source = NLU_CACHE / artifact_key(data_files(None), NLUConfig.load())
    made = []
    for n in range(2):
        folder = tmp_path / f"m{n}"
        shutil.copytree(source, folder)
        raw = json.loads((folder / "intent.json").read_text(encoding="utf-8"))
        (folder / "intent.json").write_text(json.dumps({**raw, "meta": {"copy": n}}), encoding="utf-8")
        meta = {"accuracy": 0.9, "current_accuracy": 0.8, "against": "", "base_key": loop.follower.base_key}
        made.append(await loop.models.put(folder, meta))
    first, second = made
    assert first != second
    boss = clients("agent", server.base, "super1", "demo-super1")
    await boss.login()
    before = server.app[PIPELINE].nlu
    body = await boss.call("POST", "/api/nlu/switch", {"model": first})
    assert body["active"]["id"] == first and body["serving"] == first and body["active"]["by"] == "super1"
    assert server.app[PIPELINE].nlu is not before  # swapped in, same process
    status, error = await boss.raw("POST", "/api/nlu/switch", {"model": second})  # measured against the start one
    assert status == 409 and error["field"] == "model" and "重新训练" in error["error_zh"]
    status, error = await boss.raw("POST", "/api/nlu/switch", {"model": "0123456789ab"})
    assert status == 404 and error["field"] == "model"


@pytest.mark.parametrize("server", ["redis_url", "embedded_redis_url"])
async def test_a_model_stored_again_keeps_its_lifetime(request, server, key_prefix, tmp_path):
    """A new model is a candidate (expires in a day unless switched to); storing one already there changes nothing of
    its lifetime: the active model never gains a TTL, the one before it keeps its week. On the suite's Redis and on
    the embedded one (6.2, which has no ``EXPIRE … NX``: every retrain failed there)."""
    from gateway import redisconn
    from gateway.nlu_review_models import FILES, Models
    from gateway.rkeys import NLU_CANDIDATE_TTL, NLU_PREVIOUS_TTL, Keys

    url = request.getfixturevalue(server)
    redis_client = redisconn.client(url)
    try:
        models, keys = Models(redis_client, Keys(key_prefix)), Keys(key_prefix)
        folders = []
        for n in range(2):
            folder = tmp_path / f"m{n}"
            folder.mkdir()
            for name in FILES:
                (folder / name).write_bytes(f"{name} {n}".encode())
            folders.append(folder)
        first = await models.put(folders[0], {"accuracy": 0.9})
        assert 0 < await redis_client.ttl(keys.nlu_model(first)) <= NLU_CANDIDATE_TTL
        await models.switch(first, "super1")
        await models.put(folders[0], {"accuracy": 0.9})  # the same model again (a retrain that changed nothing)
        assert await redis_client.ttl(keys.nlu_model(first)) == -1
        second = await models.put(folders[1], {"accuracy": 0.95})
        await models.switch(second, "super1")
        assert NLU_CANDIDATE_TTL < await redis_client.ttl(keys.nlu_model(first)) <= NLU_PREVIOUS_TTL
        await models.put(folders[0], {"accuracy": 0.9})
        assert NLU_CANDIDATE_TTL < await redis_client.ttl(keys.nlu_model(first)) <= NLU_PREVIOUS_TTL
        assert (await models.meta(first))["id"] == first
    finally:
        await redis_client.aclose()
