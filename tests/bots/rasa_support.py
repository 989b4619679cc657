"""What the Rasa tests share (test_rasa_bot.py with a fake Rasa, test_rasa_real.py with a real one): a gateway on a
loopback port whose bot is a ``RasaBot``, agents over the console API, a customer on the REST channel."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bots.rasa_bot import RasaBot, RasaClient, RasaConfig
from gateway.app import create_app
from gateway.keys import PIPELINE, REDIS, RKEYS
from handoff.config import load_handoff_config
from tests.channels.conftest import free_port
from tests.handoff.conftest import SECRET, AgentClient


@contextlib.asynccontextmanager
async def rasa_gateways(make_settings: Any, nlu_engine: Any) -> AsyncIterator[Callable[..., Any]]:
    """``await make(rasa_config, **sections)``: a gateway on a loopback port whose bot is a ``RasaBot``."""
    made: list[tuple[TestServer, RasaBot]] = []

    async def make(config: RasaConfig, **sections: Any) -> TestServer:
        port = free_port()
        settings = make_settings(server={"public_url": f"http://127.0.0.1:{port}"},
                                 webchat={"token_secret": SECRET}, **sections)  # fmt: skip
        server = TestServer(create_app(settings, nlu=nlu_engine, handoff_config=load_handoff_config()),
                            host="127.0.0.1", port=port)  # fmt: skip
        await server.start_server()
        server.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        app = server.app
        assert app is not None
        pipeline = app[PIPELINE]
        bot = RasaBot(pipeline.bot.svc, RasaClient(config), app[REDIS], app[RKEYS])
        pipeline.bot = bot  # what make_bot builds for bots.engine: rasa (test_settings_choose_the_engine)
        made.append((server, bot))
        return server

    yield make
    for server, bot in made:
        await server.close()
        await bot.close()


@contextlib.asynccontextmanager
async def agent_clients() -> AsyncIterator[Callable[..., AgentClient]]:
    made: list[AgentClient] = []

    def make(base: str, name: str = "agent1", password: str = "demo-agent1") -> AgentClient:
        made.append(AgentClient(base, name, password))
        return made[-1]

    yield make
    for agent in made:
        await agent.close()


async def post(gw: Any, path: str, **kwargs: Any) -> Any:
    async with aiohttp.ClientSession() as http, http.post(gw.base + path, **kwargs) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 200, body
        return body


async def rest(gw: Any, sender: str, text: str) -> list[dict[str, Any]]:
    metadata = {"message_id": uuid.uuid4().hex}
    return await post(gw, "/webhooks/rest/webhook", json={"sender": sender, "message": text, "metadata": metadata})


async def telegram_ready(gw: Any) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"{gw.base}/healthz") as resp:
        return (await resp.json()).get("channels", {}).get("telegram") == "ready"


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [r["text"] for r in replies]
