"""International roaming (国际漫游): how to turn it on, and the rates for a destination."""

from __future__ import annotations

import re

from bots.bss import RoamingRate
from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

INTENT = "roaming"


async def _find(ctx: Ctx, whole: bool) -> RoamingRate | None:
    """The destination named in the message (name or alias; Latin aliases as whole words)."""
    text = ctx.norm
    words = set(re.findall(r"[a-z]+", text))
    best: tuple[int, RoamingRate] | None = None
    for rate in await ctx.svc.bss.destinations():
        for name in (rate.country["zh"], rate.country["en"].lower(), *rate.aliases):
            hit = name in words or (" " in name and name in text) if name.isascii() else name in text
            if hit and (best is None or len(name) > best[0]):
                best = (len(name), rate)
    if best:
        return best[1]
    return await ctx.svc.bss.roaming_rate(text) if whole else None


async def start(ctx: Ctx, rate: RoamingRate | None = None) -> None:
    rate = rate or await _find(ctx, whole=False)
    enabled = None
    if ctx.phone:
        enabled = (await ctx.svc.bss.subscriber(ctx.phone)).roaming_enabled
    if rate is None:
        ctx.say(INTENT, "ask_country", enabled=enabled)
        ctx.ask(FlowId.ROAMING, "country")
        return
    ctx.say(INTENT, "rates", rate=rate, enabled=enabled)


async def fill(ctx: Ctx, slot: Slot) -> bool:
    rate = await _find(ctx, whole=True)
    if rate is None:
        if ctx.intent in {"nlu_fallback", "out_of_scope", "roaming", "goodbye"} and len(ctx.norm) <= 20:
            ctx.say(INTENT, "unknown_country")
            return True
        return False
    await start(ctx, rate)
    return True


async def reask(ctx: Ctx, slot: Slot) -> None:
    ctx.say(INTENT, "ask_country", enabled=None)
    ctx.state.slot = slot


FLOW = Flow(FlowId.ROAMING, start, (INTENT,), fill=fill, reask=reask)
