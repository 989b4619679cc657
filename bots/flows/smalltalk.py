"""Greetings, thanks, goodbye, a stray yes/no, and anything out of scope: short, polite, and
steering back to what the bot can do."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENTS = ("greet", "goodbye", "thanks", "affirm", "deny", "out_of_scope")
MENU = ("query_balance", "query_data_usage", "query_bill", "network_status", "request_human")


async def start(ctx: Ctx) -> None:
    menu = [ctx.button(i) for i in MENU]
    if ctx.intent == "greet":
        ctx.say("greet", "answer", *menu, phone=ctx.phone or "")
    elif ctx.intent == "out_of_scope":
        ctx.say("out_of_scope", "answer", *menu)
    else:
        ctx.say(ctx.intent, "answer")


FLOW = Flow(FlowId.SMALLTALK, start, INTENTS)
