"""One module per conversation flow, and the router from intent to flow.

A flow module defines its steps and ends with ``FLOW = Flow(FlowId.<ID>, start, intents, fill=…, reask=…,
execute=…, account=…)`` (``bots.context.Flow``). ``FlowId`` is what Redis keeps with a question or a
confirmation: a module may be renamed, its id stays. Adding a flow: a module here, a ``FlowId`` member, a
line in ``_ALL`` below, and its templates (``templates/bots/<lang>/<intent>.j2``).
"""

from __future__ import annotations

from bots.context import Flow
from bots.flows import (
    balance,
    bill,
    binding,
    broadband,
    change_plan,
    complaint,
    complaint_status,
    data_usage,
    human,
    network,
    plan,
    porting,
    recharge,
    roaming,
    sim,
    smalltalk,
    stores,
    survey,
    unsubscribe,
)  # fmt: skip
from bots.state import FlowId

_ALL: tuple[Flow, ...] = (
    balance.FLOW, bill.FLOW, binding.FLOW, broadband.FLOW, change_plan.FLOW, complaint.FLOW, complaint_status.FLOW,
    data_usage.FLOW, human.FLOW, network.FLOW, plan.FLOW, porting.FLOW, recharge.FLOW, roaming.FLOW, sim.FLOW,
    smalltalk.FLOW, stores.FLOW, survey.FLOW, unsubscribe.FLOW,
)  # fmt: skip


def _index() -> tuple[dict[FlowId, Flow], dict[str, Flow]]:
    flows: dict[FlowId, Flow] = {}
    routes: dict[str, Flow] = {}
    for flow in _ALL:
        if flow.id in flows:
            raise ValueError(f"two flows with the id {flow.id!r}")
        flows[flow.id] = flow
        for intent in flow.intents:
            if intent in routes:
                raise ValueError(f"intent {intent!r} routed to both {routes[intent].id!r} and {flow.id!r}")
            routes[intent] = flow
    return flows, routes


FLOWS, ROUTES = _index()
