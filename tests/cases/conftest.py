"""Fixtures for complaint cases: the human side's gateway and people (tests/handoff/conftest.py), a handoff
configuration in which a complaint stays with the bot (no chat queued: the customer keeps talking to the bot, as
in the follow-up visit), and helpers to register a complaint and drive a case."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.handoff.conftest import AgentClient, WebCustomer, handoff_config, make_gateway, people  # noqa: F401

TICKET = re.compile(r"TS\d{13}")


@pytest.fixture
def quiet_config(handoff_config: Any) -> Any:  # noqa: F811
    """Complaints are registered as cases but not queued for a live chat."""
    return handoff_config.replace(on_complaint={t: False for t in ("service", "business", "network", "other")})


def bot(frame: dict[str, Any]) -> bool:
    return frame.get("from") == "bot"


async def complain(customer: WebCustomer, text: str) -> str:
    """The customer complains on the web chat; the ticket number the bot gives."""
    await customer.send(text)
    reply = await customer.expect(lambda f: bot(f) and TICKET.search(f.get("text", "")) is not None, timeout=10)
    return TICKET.search(reply["text"]).group(0)


async def drive(agent: AgentClient, ticket: str, *stages: str) -> dict[str, Any]:
    """Move a case through ``stages`` (each must be allowed); the case after the last."""
    case: dict[str, Any] = {}
    for stage in stages:
        case = await agent.call("POST", f"/api/cases/{ticket}/transition", {"to": stage, "note": f"→ {stage}"})
    return case
