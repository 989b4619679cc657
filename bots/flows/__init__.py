"""One module per conversation flow, and the router from intent to flow.

A flow module defines ``INTENT`` and ``async start(ctx)``; it may define ``fill(ctx, slot) ->
bool`` (an answer to a question it asked; False when the message is not one), ``reask(ctx,
slot)``, and ``execute(ctx, pending)`` (an action the customer confirmed).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

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
from bots.state import Pending, Slot


class Flow:
    """A flow module with the optional steps filled in."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.INTENT: str = module.INTENT
        self.start = module.start

    async def fill(self, ctx: Any, slot: Slot) -> bool:
        fill = getattr(self.module, "fill", None)
        return bool(await fill(ctx, slot)) if fill else False

    async def reask(self, ctx: Any, slot: Slot) -> None:
        reask = getattr(self.module, "reask", None)
        if reask:
            await reask(ctx, slot)
        else:
            ctx.say("common", "reask")

    async def execute(self, ctx: Any, pending: Pending) -> None:
        await self.module.execute(ctx, pending)

    async def bind(self, ctx: Any) -> None:
        await self.module.bind(ctx)

    async def unbind(self, ctx: Any) -> None:
        await self.module.unbind(ctx)


_MODULES = (balance, bill, binding, broadband, change_plan, complaint, complaint_status, data_usage, human, network,
            plan, porting, recharge, roaming, sim, smalltalk, stores, survey, unsubscribe)  # fmt: skip
FLOWS: dict[str, Flow] = {m.__name__.rsplit(".", 1)[1]: Flow(m) for m in _MODULES}
ROUTES: dict[str, Flow] = {}
for _flow in FLOWS.values():
    for _intent in getattr(_flow.module, "INTENTS", (_flow.INTENT,)):
        ROUTES[_intent] = _flow
