"""A human, please (转人工): hand over through the handoff interface and say plainly what happens."""

from __future__ import annotations

from typing import Any

INTENT = "request_human"


async def start(ctx: Any) -> None:
    await ctx.hand_over("request_human")
