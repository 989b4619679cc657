"""Fixtures for major incidents: the human side's gateway, agents and web-chat customers (tests/handoff), the
channels' fakes (tests/channels), and a supervisor signed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.channels.conftest import gateways, http_sms, telegram_api  # noqa: F401 - fixtures
from tests.handoff.conftest import AgentClient, handoff_config, make_gateway, people  # noqa: F401 - fixtures

TOKEN = "monitoring-token-of-the-tests"
CHAOYANG = "朝阳区"  # 13800138000 (张伟) lives here in the demo data


async def supervisor(make: Any, base: str) -> AgentClient:
    """The demo supervisor signed in (``make``: the ``people`` fixture)."""
    boss = make("agent", base, "super1", "demo-super1")
    await boss.login()
    return boss


async def open_incident(boss: AgentClient, stage: str = "assessed", **fields: Any) -> dict[str, Any]:
    """An incident in Chaoyang, moved on to ``stage`` (customers are told from ``assessed``)."""
    body = {"title": "台风致基站退服", "category": "natural_disaster", "severity": 2, "districts": [CHAOYANG],
            "services": ["mobile", "broadband"], **fields}  # fmt: skip
    incident = await boss.call("POST", "/api/incidents", body, status=201)
    path = ("assessed", "plan", "acting", "monitoring")
    for to in path[: path.index(stage) + 1]:
        incident = await boss.call("POST", f"/api/incidents/{incident['id']}/transition", {"to": to})
    return incident


async def rest(base: str, sender: str, text: str, phone_token: str | None = None) -> list[dict[str, Any]]:
    metadata = {"token": phone_token} if phone_token else {}
    body = {"sender": sender, "message": text, "metadata": metadata}
    async with aiohttp.ClientSession() as session, session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


@pytest.fixture
def incidents_config(tmp_path: Path, monkeypatch: Any) -> Any:
    """``write(**broadcast)``: config/incidents.yml with these broadcast settings, for the gateways made next."""

    def write(**broadcast: Any) -> None:
        settings = {"second_approval_over": 1000, "per_second": 20, "quiet_hours": ["00:00", "00:00"], **broadcast}
        lines = ["broadcast:"] + [f"  {k}: {v!r}".replace("'", '"') for k, v in settings.items()]
        path = tmp_path / "incidents.yml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        monkeypatch.setenv("INCIDENTS_CONFIG", str(path))

    return write
