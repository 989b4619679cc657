"""The flows' contract: ids kept in Redis never change (whatever a module is called), every intent has a
route, one write helper turns a refusal into an answer, and a public channel never gets account data."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import orjson

import bots.flows
from bots.context import Ctx, Flow
from bots.flows import FLOWS, ROUTES
from bots.state import BotState, FlowId
from gateway.keys import PIPELINE
from gateway.rkeys import deployment_keys
from nlu import INTENTS
from tests.bots.conftest import DEMO, demo

# What conversations in progress hold in Redis (``Slot.flow``, ``Pending.flow``). Changing one of these
# breaks every conversation that waits in that flow when the new version starts: add, never rename.
STORED = {
    "balance", "bill", "binding", "broadband", "change_plan", "complaint", "complaint_status", "data_usage", "human",
    "network", "plan", "porting", "recharge", "roaming", "sim", "smalltalk", "stores", "survey", "unsubscribe",
}  # fmt: skip
FLOW_DIR = Path(bots.flows.__file__).parent


def test_every_stored_flow_id_resolves_to_its_flow():
    assert {f.value for f in FlowId} == STORED
    for stored in STORED:
        flow = FLOWS[FlowId(stored)]
        assert isinstance(flow, Flow) and flow.id == stored
        assert FLOWS[stored].id == stored  # a plain string read back from Redis finds it too


def test_renaming_a_flow_module_keeps_its_id(tmp_path):
    for path in sorted(FLOW_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        renamed = tmp_path / f"renamed_{uuid.uuid4().hex[:6]}.py"
        renamed.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"bots.flows.{renamed.stem}", renamed)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        original = importlib.import_module(f"bots.flows.{path.stem}")
        assert module.FLOW.id == original.FLOW.id, path.name
        assert module.FLOW.id in STORED


def test_state_written_by_an_earlier_version_resumes():
    raw = orjson.dumps({
        "conv": "c1", "options": [], "misses": 0, "human_offered": False, "rev": 7,
        "slot": {"flow": "bill", "name": "month", "data": {}, "tries": 1},
        "pending": {"id": "p1", "flow": "change_plan", "action": "change_plan", "args": {"plan": "premium_199"},
                    "expires": 1e12},
    })  # fmt: skip
    state = BotState.load(raw, "c1")
    assert state.slot is not None and state.pending is not None
    assert FLOWS[state.slot.flow].fill is not None
    assert FLOWS[state.pending.flow].execute is not None
    assert orjson.loads(state.to_json())["slot"]["flow"] == "bill"  # written back as the same string
    gone = orjson.dumps({"conv": "c1", "slot": {"flow": "no_such_flow", "name": "x", "data": {}, "tries": 0}})
    assert BotState.load(gone, "c1").slot is None  # a flow removed since: the conversation just goes on


def test_every_nlu_intent_has_a_route():
    assert set(INTENTS) <= set(ROUTES), set(INTENTS) - set(ROUTES)
    assert set(ROUTES) <= set(INTENTS), set(ROUTES) - set(INTENTS)  # no route for an intent the NLU never gives


def test_flows_that_confirm_can_execute():
    for flow in FLOWS.values():
        source = (FLOW_DIR / f"{_module_of(flow)}.py").read_text(encoding="utf-8")
        if "ctx.confirm(" in source:
            assert flow.execute is not None and flow.account, flow.id


def _module_of(flow: Flow) -> str:
    return flow.start.__module__.rsplit(".", 1)[1]


async def test_questions_are_stored_under_the_same_strings(customer, redis_client, key_prefix):
    c = customer("13800138004")
    await c.text("查账单")
    keys = deployment_keys(key_prefix)
    stored = await redis_client.hget(keys.sender("rest", c.sender), "bot")
    assert b'"flow":"bill"' not in stored  # encrypted at rest
    assert '"flow":"bill"' in keys.unseal(stored)
    await c.text('/change_package{"plan":"premium_199"}')
    stored = await redis_client.hget(keys.sender("rest", c.sender), "bot")
    assert '"flow":"change_plan"' in keys.unseal(stored)


async def test_a_write_refused_by_the_back_end_is_told(customer):
    """Two conversations of one customer confirm the same cancellation; the second "yes" is refused."""
    phone = "13800138000"
    name = DEMO["vas"][demo(phone)["vas"][0]]["name"]["zh"]
    first, second = customer(phone), customer(phone)
    for c in (first, second):
        assert "请确认" in await c.text(f"退订{name}")
    assert "已为您退订" in await first.text("确认")
    reply = await second.text("确认")
    assert "没能为您办理" in reply and "没有订购这项业务" in reply


async def test_a_public_channel_gets_no_account_data(bot_client, nlu_engine):
    bot = bot_client.server.app[PIPELINE].bot

    async def turn(text: str, public: bool, phone: str | None = None) -> Ctx:
        ctx = Ctx(bot.svc, channel="forum", sender="li@42", conversation_id="c42", turn_id=uuid.uuid4().hex[:16],
                  text=text, result=nlu_engine.parse(text), state=BotState(conv="c42"), lang="zh", proven_phone=phone,
                  public=public)  # fmt: skip
        await bot.respond(ctx)
        return ctx

    balance = f"{demo('13800138000')['balance']:.2f}"
    ctx = await turn("查话费", public=True, phone="13800138000")
    shown = [r for r in ctx.replies if not r.private]
    assert shown and "隐私" in shown[0].text and not any(balance in r.text for r in ctx.replies)
    assert [r.private for r in ctx.replies] == [False, True] and "YE" in ctx.replies[1].text
    assert ctx.events[0]["event"] == "forum_private" and ctx.state.slot is None
    assert balance in (await turn("查话费", public=False, phone="13800138000")).replies[0].text  # elsewhere: answered
    bind = await turn("绑定", public=True)  # a number and a code in public: never
    assert "登录" in bind.replies[0].text and bind.state.slot is None
    stores = await turn("浦东有营业厅吗", public=True)  # nothing personal: answered in public
    assert stores.replies and not any(r.private for r in stores.replies) and stores.intent == "store_hours"
