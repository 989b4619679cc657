"""A fake Rasa 3.6 server for the fast tests: the REST channel (``POST /webhooks/rest/webhook``) and the tracker API
(``GET /conversations/{id}/tracker``), answering in Rasa's wire format with canned answers per message.

The shapes are Rasa's ``CollectingOutputChannel``'s (one JSON object per message part: ``text`` with ``buttons``,
``image``, ``custom``, each with ``recipient_id``) and a tracker's ``events`` (``user`` with ``parse_data``,
``action``, ``bot``, ``restart``) — the real server's are checked in tests/bots/test_rasa_real.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

GREET = "您好，我是 Rasa 小助手。"
BALANCE = "您的余额是 42.00 元。"
HANDOFF = "正在为您转接人工客服。"
IMAGE = "https://example.com/balance-chart.png"

# message → (intent, the actions Rasa runs, the REST answer's parts without recipient_id)
ANSWERS: dict[str, tuple[str, list[str], list[dict[str, Any]]]] = {
    "你好": ("greet", ["utter_greet"], [{"text": GREET, "buttons": [
        {"title": "查话费", "payload": "/query_balance"}, {"title": "转人工", "payload": "/human_handoff"},
        {"title": "官网", "url": "https://example.com", "type": "web_url"}]}]),
    "hello": ("greet", ["utter_greet"], [{"text": "Hello, I am the Rasa assistant.", "buttons": [
        {"title": "Balance", "payload": "/query_balance"}, {"title": "Agent", "payload": "/human_handoff"}]}]),
    "/query_balance": ("query_balance", ["utter_balance"], [{"text": BALANCE}, {"image": IMAGE}]),
    "/human_handoff": ("human_handoff", ["utter_handoff"],
                       [{"text": HANDOFF}, {"custom": {"handoff": True, "skill": "network"}}]),
    "转人工": ("human_handoff", ["utter_handoff"],
              [{"text": HANDOFF}, {"custom": {"handoff": True, "skill": "network"}}]),
    "找人工": ("human_handoff", ["utter_handoff_plain"], [{"text": HANDOFF}]),  # no payload: intent/action only
    "图表": ("chart", ["utter_chart"], [
        {"custom": {"chart": {"kind": "bar", "values": [1, 2]}}},
        {"custom": {"text": "自定义文字", "buttons": [{"title": "好", "payload": "/affirm"}]}},
        {"attachment": {"type": "video", "payload": {"src": "https://example.com/v.mp4"}}}]),
    "/restart": ("restart", ["action_restart"], []),
}  # fmt: skip


class FakeRasa:
    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict[str, Any]]] = []  # (sender, message, metadata)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.down = False  # answer 500
        self.delay = 0.0  # seconds before answering
        self.tracker_calls = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/", self.hello), web.post("/webhooks/rest/webhook", self.webhook),
                        web.get("/conversations/{sender}/tracker", self.tracker)])  # fmt: skip
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def messages(self, sender: str | None = None) -> list[str]:
        return [m for s, m, _ in self.received if sender is None or s == sender]

    async def hello(self, request: web.Request) -> web.Response:
        return web.Response(text="Hello from Rasa: 3.6.21")

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        sender, message = body["sender"], body["message"]
        self.received.append((sender, message, body.get("metadata") or {}))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return web.json_response({"version": "3.6.21", "status": "failure", "message": "boom", "code": 500},
                                     status=500)  # fmt: skip
        fallback = ("nlu_fallback", ["utter_default"], [{"text": "抱歉，我没听懂。"}])
        intent, actions, parts = ANSWERS.get(message, fallback)
        events = self.events.setdefault(sender, [])
        now = time.time()
        if intent == "restart":
            events.clear()
            events.append({"event": "restart", "timestamp": now})
        parse = {"intent": {"name": intent, "confidence": 1.0}, "entities": [], "text": message}
        events.append({"event": "user", "text": message, "timestamp": now, "parse_data": parse})
        for action in actions:
            events.append({"event": "action", "name": action, "timestamp": now})
        events.append({"event": "action", "name": "action_listen", "timestamp": now})
        return web.json_response([{"recipient_id": sender, **p} for p in parts])

    async def tracker(self, request: web.Request) -> web.Response:
        self.tracker_calls += 1
        sender = request.match_info["sender"]
        return web.json_response({"sender_id": sender, "events": self.events.get(sender, []), "slots": {},
                                  "latest_message": {}, "paused": False})  # fmt: skip
