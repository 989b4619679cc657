"""Fixtures for conversations over the REST channel: a gateway with customer tokens enabled and
the demo back end (its data read from ``config/demo_bss.yml``, never copied into tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import create_app
from gateway.security import mint_customer_token

SECRET = "test-secret-of-at-least-thirty-two-bytes!"
DEMO = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "demo_bss.yml").read_text(encoding="utf-8"))


def demo(phone: str) -> dict[str, Any]:
    return DEMO["subscribers"][phone]


def month_back(n: int) -> str:
    today = dt.date.today()
    index = today.year * 12 + today.month - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


class Customer:
    """One customer on the REST channel: ``await c.say("查话费")`` → the replies."""

    def __init__(self, client: Any, sender: str, phone: str | None, lang: str | None = None) -> None:
        self.client = client
        self.sender = sender
        self.token = mint_customer_token(phone, SECRET) if phone else None
        self.lang = lang
        self.session: str | None = None  # what a one-time-code binding issued; sent back like a real client
        self.last: list[dict[str, Any]] = []

    async def say(self, text: str, message_id: str | None = None, status: int = 200) -> list[dict[str, Any]]:
        metadata: dict[str, Any] = {"message_id": message_id or uuid.uuid4().hex}
        if self.token:
            metadata["token"] = self.token
        if self.session:
            metadata["session"] = self.session
        if self.lang:
            metadata["lang"] = self.lang
        resp = await self.client.post("/webhooks/rest/webhook",
                                      json={"sender": self.sender, "message": text, "metadata": metadata})  # fmt: skip
        body = await resp.json()
        assert resp.status == status, body
        issued = [r["custom"]["session"] for r in body if "session" in r.get("custom", {})] if status == 200 else []
        if issued:
            assert resp.headers["X-Chat-Session"] == issued[0]
            self.session = issued[0]
            body = [r for r in body if "custom" not in r]
        self.last = body
        return body

    async def text(self, text: str, message_id: str | None = None) -> str:
        return "\n".join(r["text"] for r in await self.say(text, message_id))

    def buttons(self) -> list[tuple[str, str]]:
        return [(b["title"], b["payload"]) for r in self.last for b in r.get("buttons", [])]


@pytest.fixture
def bot_settings(make_settings: Callable[..., Any]) -> Any:
    return make_settings(webchat={"token_secret": SECRET})


@pytest.fixture
async def bot_client(aiohttp_client: Any, bot_settings: Any, nlu_engine: Any) -> Any:
    return await aiohttp_client(create_app(bot_settings, nlu=nlu_engine))


@pytest.fixture
def customer(bot_client: Any) -> Callable[..., Customer]:
    def make(phone: str | None = "13800138000", lang: str | None = None) -> Customer:
        return Customer(bot_client, f"c-{uuid.uuid4().hex[:10]}", phone, lang)

    return make
