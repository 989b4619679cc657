"""The fake WeChat platform (tests/channels/fake_wechat.py) with the template message API as well:
``POST /cgi-bin/message/template/send?access_token=T`` with ``{"touser", "template_id", "url"?, "data": {name:
{"value", "color"?}}}`` → ``{"errcode": 0, "errmsg": "ok", "msgid": n}``. As WeChat does: not bound by the 48-hour
window; 40037 for a template the account does not have, 43004 for a user who does not follow the account, 47001
for a malformed ``data``; the access token is checked first (40001 / 42001)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.channels.fake_wechat import _JSON_HEADERS, FakeWeChat


class FakeWeChatTemplates(FakeWeChat):
    def __init__(self, *args: Any, templates: tuple[str, ...] = ("TPL-fault-notice",), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.templates = set(templates)
        self.not_following: set[str] = set()  # openids that unfollowed (→ 43004)
        self.template_sent: list[dict] = []
        self._template_ids = itertools.count(2_002_283_320)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.down or request.match_info["path"].strip("/") != "message/template/send":
            return await super()._handle(request)
        raw = await request.read()
        try:
            body: Any = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            body = None
        answer = self._template(request, body)
        self.calls.append({"path": "message/template/send", "query": dict(request.query), "body": body,
                           "response": answer})  # fmt: skip
        self._changed.set()
        return web.Response(body=json.dumps(answer, ensure_ascii=False).encode("utf-8"), headers=_JSON_HEADERS)

    def _template(self, request: web.Request, body: Any) -> dict:
        token = request.query.get("access_token")
        if not token:
            return self._error(41001)
        state = self._tokens.get(token)
        if state != "valid":
            return self._error(42001 if state == "expired" else 40001)
        if (failure := self._injected("message/template/send")) is not None:
            return failure
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return self._error(47001)
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return self._error(40003)
        if body.get("template_id") not in self.templates:
            return {"errcode": 40037, "errmsg": "invalid template_id"}
        if not all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in body["data"].values()):
            return self._error(47001)
        if body["touser"] in self.not_following:
            return {"errcode": 43004, "errmsg": "require subscribe"}
        self.template_sent.append(body)
        return {"errcode": 0, "errmsg": "ok", "msgid": next(self._template_ids)}
