"""A fake Telegram Bot API server for end-to-end tests.

It speaks the real wire format, so the gateway's real client (python-telegram-bot) can be pointed at it:
``ApplicationBuilder().token(fake.token).base_url(fake.base_url)``. Requests are
``POST /bot<token>/<method>`` with parameters as JSON, ``application/x-www-form-urlencoded`` or
``multipart/form-data`` (PTB 22 sends form-urlencoded: strings as they are, everything else JSON-encoded, so
``chat_id=42``, ``reply_markup={"inline_keyboard": ...}``); answers are ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": n, "description": "...", "parameters": {...}}``.

The fake also builds Update JSON the way Telegram posts it to a webhook (``text_update`` …) and can deliver it
(``deliver``), with the ``X-Telegram-Bot-Api-Secret-Token`` header when the webhook was set with a secret token.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from typing import Any

import aiohttp
from aiohttp import web

_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)

# How form-encoded values are decoded (JSON bodies arrive typed already; these also normalise them).
_CHAT_ID_FIELDS = {"chat_id", "from_chat_id"}
_INT_FIELDS = {
    "message_id",
    "reply_to_message_id",
    "message_thread_id",
    "cache_time",
    "max_connections",
    "offset",
    "limit",
    "timeout",
    "user_id",
}
_BOOL_FIELDS = {
    "disable_notification",
    "protect_content",
    "show_alert",
    "drop_pending_updates",
    "disable_web_page_preview",
    "allow_sending_without_reply",
    "allow_paid_broadcast",
}
_JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "link_preview_options",
    "reply_parameters",
    "scope",
    "media",
    "message_ids",
}

_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)?([^<>]*)>")
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}$")
_WELL_FORMED_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramApiError(Exception):
    """An error answer of the fake Bot API (HTTP status = error_code)."""

    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> TelegramApiError:
    return TelegramApiError(400, f"Bad Request: {description}")


def _default_description(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after if retry_after is not None else 1}"
    return {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict: terminated by other getUpdates request",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }.get(status, "Internal Server Error")


def _decode_value(name: str, value: Any) -> Any:
    """A parameter as Telegram understands it: form values are strings, JSON values may be typed."""
    if isinstance(value, dict) and "filename" in value:  # an uploaded file
        return value
    if name in _CHAT_ID_FIELDS:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        return value
    if name in _INT_FIELDS:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        return value
    if name in _BOOL_FIELDS:
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)
    if name in _JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {name} JSON object") from None
    return value


def _utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _check_html(text: str) -> str:
    """Validates Telegram HTML like the Bot API does; returns the plain text."""
    stack: list[str] = []
    pos = 0
    while True:
        lt = text.find("<", pos)
        if lt < 0:
            break
        m = _HTML_TAG.match(text, lt)
        if not m or not m.group(2):
            raise _bad(f'can\'t parse entities: Unsupported start tag "" at byte offset {_utf8_offset(text, lt)}')
        closing, name = m.group(1), m.group(2).lower()
        if not closing:
            if name not in _HTML_TAGS:
                raise _bad(
                    f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {_utf8_offset(text, lt)}'
                )
            stack.append(name)
        else:
            if not stack:
                raise _bad(f"can't parse entities: Unexpected end tag at byte offset {_utf8_offset(text, lt)}")
            expected = stack.pop()
            if expected != name:
                raise _bad(
                    f"can't parse entities: Unmatched end tag at byte offset {_utf8_offset(text, lt)}, "
                    f'expected "</{expected}>", found "</{name}>"'
                )
        pos = m.end()
    if stack:
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return html.unescape(_HTML_TAG.sub("", text))


def _check_markdown_v2(text: str) -> str:
    """A simplified MarkdownV2 check: unescaped reserved characters and unclosed entities, as Telegram reports them.

    Returns the text without escapes and formatting markers (for the length check)."""
    names = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler", "`": "code"}
    plain: list[str] = []
    open_marks: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            plain.append(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):  # pre block: everything up to the closing ``` is literal
            end = text.find("```", i + 3)
            if end < 0:
                raise _bad(f"can't parse entities: Can't find end of pre entity at byte offset {_utf8_offset(text, i)}")
            body = text[i + 3 : end]
            plain.append(body.split("\n", 1)[1] if "\n" in body else body)
            i = end + 3
            continue
        if ch == "`":
            end = i + 1
            while end < n and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise _bad(
                    f"can't parse entities: Can't find end of code entity at byte offset {_utf8_offset(text, i)}"
                )
            plain.append(text[i + 1 : end].replace("\\", ""))
            i = end + 1
            continue
        if ch == "[":
            open_marks.append(("[", i))
            i += 1
            continue
        if ch == "]" and open_marks and open_marks[-1][0] == "[":
            open_marks.pop()
            if not text.startswith("](", i):  # [text] without (url)
                raise _bad(f"can't parse entities: Can't find end of a URL at byte offset {_utf8_offset(text, i)}")
            end = i + 2
            while end < n and text[end] != ")":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise _bad(f"can't parse entities: Can't find end of a URL at byte offset {_utf8_offset(text, i)}")
            i = end + 1
            continue
        mark = text[i : i + 2] if text.startswith(("__", "||"), i) else ch
        if mark in names:
            if open_marks and open_marks[-1][0] == mark:
                open_marks.pop()
            else:
                open_marks.append((mark, i))
            i += len(mark)
            continue
        if ch == ">" and (i == 0 or text[i - 1] == "\n"):  # blockquote
            i += 1
            continue
        if ch in _MDV2_RESERVED:
            raise _bad(
                f"can't parse entities: Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        plain.append(ch)
        i += 1
    if open_marks:
        mark, at = open_marks[-1]
        name = "text URL" if mark == "[" else names[mark]
        raise _bad(f"can't parse entities: Can't find end of {name} entity at byte offset {_utf8_offset(text, at)}")
    return "".join(plain)


def _check_reply_markup(markup: Any) -> None:
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
                actions = [key for key in _INLINE_BUTTON_ACTIONS if key in button]
                if not actions:
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                        raise _bad("BUTTON_DATA_INVALID")
                if "url" in button:
                    url = button["url"]
                    if not isinstance(url, str) or not re.match(r"^(https?|tg)://[^\s/$.?#][^\s]*$", url):
                        raise _bad("BUTTON_URL_INVALID")
    elif "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad("can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row:
                if not (isinstance(button, str) or (isinstance(button, dict) and isinstance(button.get("text"), str))):
                    raise _bad("can't parse keyboard button: KeyboardButton must be a String or an Object")
    elif not ("remove_keyboard" in markup or "force_reply" in markup):
        raise _bad("can't parse reply keyboard markup JSON object")


class FakeTelegram:
    """The Telegram Bot API on 127.0.0.1:<random port>; see the module docstring."""

    def __init__(self, token: str = "123456:TEST-token", *, require_https_webhook: bool = False) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Test Bot",
            "username": "test_cs_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.require_https_webhook = require_https_webhook
        self.base_url = ""
        self.url = ""  # http://127.0.0.1:<port>
        self.calls: list[tuple[str, dict]] = []  # every call with a valid token, failed ones included
        self.results: list[tuple[str, dict, bool]] = []  # (method, params, ok) for the same calls
        self.content_types: list[str] = []  # Content-Type of each request with a valid token ("" for no body)
        self.down = False
        self.blocked_chats: set[int] = set()
        self.missing_chats: set[int] = set()  # sendMessage etc. → 400 "Bad Request: chat not found"
        self.webhook: dict | None = None
        self.commands: dict[tuple[str, str], list[dict]] = {}  # (scope type, language_code) → commands
        self.messages: dict[tuple[int, int], dict] = {}  # (chat_id, message_id) → Message, sent and received
        self.chats: dict[int, dict] = {}  # Chat objects of chats seen in built updates
        self._failures: list[list[Any]] = []  # [method, remaining, status, retry_after, description]
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/bot"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls and inspection

    def fail(
        self,
        method: str,
        times: int,
        status: int = 500,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (``"*"``: any) fail with Telegram's error JSON."""
        self._failures.append(
            [method, times, status, retry_after, description or _default_description(status, retry_after)]
        )

    def sent(self, chat_id: int | None = None) -> list[dict]:
        """Parameters of accepted sendMessage calls (optionally to one chat)."""
        return [
            params
            for method, params, ok in self.results
            if ok and method == "sendMessage" and (chat_id is None or params.get("chat_id") == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [params["text"] for params in self.sent(chat_id)]

    def calls_of(self, method: str, *, include_failed: bool = False) -> list[dict]:
        return [params for m, params, ok in self.results if m == method and (ok or include_failed)]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        chat_id: int | None = None,
        *,
        include_failed: bool = False,
    ) -> list[dict]:
        """Waits until ``count`` successful calls of ``method`` (to ``chat_id``) arrived; returns all of them.

        Raises AssertionError (listing what did arrive) on timeout."""

        def matching() -> list[dict]:
            return [
                params
                for params in self.calls_of(method, include_failed=include_failed)
                if chat_id is None or params.get("chat_id") == chat_id
            ]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := matching()) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(m, p) for m, p, _ in self.results]
                raise AssertionError(f"expected {count} {method} call(s), got {len(found)}; calls: {seen!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return found

    def reset(self) -> None:
        self.calls.clear()
        self.results.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ HTTP

    async def _not_found(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        token = request.match_info["token"]
        if token != self.token:
            if _WELL_FORMED_TOKEN.match(token):
                return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        method = request.match_info["method"]
        self.content_types.append(request.content_type if request.can_read_body else "")
        try:
            params = await self._read_params(request)
        except TelegramApiError as exc:
            self._record(method, {}, ok=False)
            return web.json_response(exc.payload(), status=exc.status)
        status, body = self._dispatch(method, params)
        return web.json_response(body, status=status)

    def _dispatch(self, method: str, params: dict) -> tuple[int, dict]:
        handler_name = _METHODS.get(method.lower())
        name = handler_name[0] if handler_name else method
        try:
            if handler_name is None:
                raise TelegramApiError(404, "Not Found: method not found")
            self._inject_failure(name)
            result = getattr(self, handler_name[1])(params)
        except TelegramApiError as exc:
            self._record(name, params, ok=False)
            return exc.status, exc.payload()
        self._record(name, params, ok=True)
        return 200, {"ok": True, "result": result}

    def _record(self, method: str, params: dict, *, ok: bool) -> None:
        self.calls.append((method, params))
        self.results.append((method, params, ok))
        self._changed.set()

    def _inject_failure(self, method: str) -> None:
        for failure in self._failures:
            target, remaining, status, retry_after, description = failure
            if remaining > 0 and target in ("*", method):
                failure[1] -= 1
                if failure[1] == 0:
                    self._failures.remove(failure)
                raise TelegramApiError(
                    status, description, {"retry_after": retry_after} if retry_after is not None else None
                )

    async def _read_params(self, request: web.Request) -> dict:
        raw: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad("can't parse JSON object")
                raw.update(body)
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                        continue
                    if part.filename is not None:
                        content = await part.read()
                        raw[part.name] = {
                            "filename": part.filename,
                            "content_type": part.headers.get("Content-Type", "application/octet-stream"),
                            "size": len(content),
                            "content": bytes(content),
                        }
                    else:
                        raw[part.name] = await part.text()
            else:  # application/x-www-form-urlencoded (also what an empty POST is treated as)
                form = await request.post()
                raw.update({key: value for key, value in form.items() if isinstance(value, str)})
        return {key: _decode_value(key, value) for key, value in raw.items()}

    # ------------------------------------------------------------------ Bot API methods

    def _chat(self, chat_id: Any) -> dict:
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if not isinstance(chat_id, int) or chat_id in self.missing_chats:
            raise _bad("chat not found")
        if chat_id in self.chats:
            return dict(self.chats[chat_id])
        if chat_id > 0:
            return {"id": chat_id, "first_name": "测试", "type": "private"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "title": "Test group", "type": kind}

    def _get_me(self, params: dict) -> dict:
        return dict(self.bot_user)

    def _set_webhook(self, params: dict) -> bool:
        url = params.get("url", "")
        if not url:
            self.webhook = None
            return True
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if self.require_https_webhook and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET_TOKEN.match(secret)):
            raise _bad("secret token contains unallowed characters")
        max_connections = params.get("max_connections", 40)
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        self.webhook = dict(params)
        return True

    def _delete_webhook(self, params: dict) -> bool:
        self.webhook = None
        return True

    def _get_webhook_info(self, params: dict) -> dict:
        if not self.webhook:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        info: dict[str, Any] = {
            "url": self.webhook["url"],
            "has_custom_certificate": "certificate" in self.webhook,
            "pending_update_count": 0,
            "max_connections": self.webhook.get("max_connections", 40),
            "ip_address": "127.0.0.1",
        }
        if "allowed_updates" in self.webhook:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _set_my_commands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad('parameter "commands" is required')
        if len(commands) > 100:
            raise _bad("too many commands")
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        scope = params.get("scope") or {"type": "default"}
        self.commands[(scope.get("type", "default"), params.get("language_code", ""))] = commands
        return True

    def _get_my_commands(self, params: dict) -> list[dict]:
        scope = params.get("scope") or {"type": "default"}
        return self.commands.get((scope.get("type", "default"), params.get("language_code", "")), [])

    def _checked_text(self, params: dict, field: str = "text", limit: int = 4096) -> str:
        text = params.get(field)
        if not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        parse_mode = str(params.get("parse_mode") or "")
        plain = text
        if parse_mode.upper() == "HTML":
            plain = _check_html(text)
        elif parse_mode == "MarkdownV2":
            plain = _check_markdown_v2(text)
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > limit:
            raise _bad("message is too long")
        return plain

    def _send_message(self, params: dict) -> dict:
        chat = self._chat(params.get("chat_id"))
        plain = self._checked_text(params)
        if chat["id"] in self.blocked_chats:
            raise TelegramApiError(403, "Forbidden: bot was blocked by the user")
        markup = params.get("reply_markup")
        if markup is not None:
            _check_reply_markup(markup)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": dict(self.bot_user),
            "chat": chat,
            "date": int(time.time()),
            "text": plain,
        }
        if isinstance(params.get("entities"), list) and params["entities"]:
            message["entities"] = params["entities"]
        if isinstance(markup, dict) and "inline_keyboard" in markup:  # Telegram returns inline keyboards only
            message["reply_markup"] = markup
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _edited(self, params: dict) -> tuple[dict | None, bool]:
        """The message an edit method targets (None for an inline message)."""
        if params.get("inline_message_id"):
            return None, True
        chat = self._chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        message = self.messages.get((chat["id"], message_id))
        if message is None:
            raise _bad("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad("message can't be edited")
        return message, False

    def _edit_message_reply_markup(self, params: dict) -> dict | bool:
        markup = params.get("reply_markup")
        if markup is not None:
            _check_reply_markup(markup)
            if "inline_keyboard" not in markup:
                raise _bad("inline keyboard expected")
        message, inline = self._edited(params)
        if inline or message is None:
            return True
        new_markup = markup if markup and markup.get("inline_keyboard") else None
        if message.get("reply_markup") == new_markup:
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        return message

    def _edit_message_text(self, params: dict) -> dict | bool:
        plain = self._checked_text(params)
        markup = params.get("reply_markup")
        if markup is not None:
            _check_reply_markup(markup)
        message, inline = self._edited(params)
        if inline or message is None:
            return True
        new_markup = markup if markup and markup.get("inline_keyboard") else None
        if message.get("text") == plain and message.get("reply_markup") == new_markup:
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        message["text"] = plain
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        return message

    def _delete_message(self, params: dict) -> bool:
        chat = self._chat(params.get("chat_id"))
        if self.messages.pop((chat["id"], params.get("message_id")), None) is None:
            raise _bad("message to delete not found")
        return True

    def _answer_callback_query(self, params: dict) -> bool:
        if not params.get("callback_query_id"):
            raise _bad('parameter "callback_query_id" is required')
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        return True

    def _send_chat_action(self, params: dict) -> bool:
        chat = self._chat(params.get("chat_id"))
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        if chat["id"] in self.blocked_chats:
            raise TelegramApiError(403, "Forbidden: bot was blocked by the user")
        return True

    # ------------------------------------------------------------------ updates (what Telegram posts to a webhook)

    def _user(self, user_id: int, first_name: str, language_code: str | None) -> dict:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    def _incoming(
        self,
        chat_id: int,
        *,
        first_name: str,
        language_code: str | None,
        message_id: int | None,
        date: int | None,
        chat_type: str,
        user_id: int | None,
    ) -> dict:
        if chat_type == "private":
            chat: dict[str, Any] = {"id": chat_id, "first_name": first_name, "type": "private"}
        else:
            chat = {"id": chat_id, "title": "Test group", "type": chat_type}
        self.chats[chat_id] = chat
        sender = user_id if user_id is not None else (chat_id if chat_type == "private" else abs(chat_id) % 10**9)
        return {
            "message_id": message_id if message_id is not None else next(self._message_ids),
            "from": self._user(sender, first_name, language_code),
            "chat": dict(chat),
            "date": date if date is not None else int(time.time()),
        }

    def _remember(self, message: dict) -> dict:
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def text_update(
        self,
        update_id: int,
        chat_id: int,
        text: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        message_id: int | None = None,
        date: int | None = None,
        chat_type: str = "private",
        user_id: int | None = None,
    ) -> dict:
        """A text message update; a text starting with a /command gets the bot_command entity Telegram adds."""
        message = self._incoming(
            chat_id,
            first_name=first_name,
            language_code=language_code,
            message_id=message_id,
            date=date,
            chat_type=chat_type,
            user_id=user_id,
        )
        message["text"] = text
        command = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?", text)
        if command:
            length = len(command.group(0).encode("utf-16-le")) // 2
            message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
        return {"update_id": update_id, "message": self._remember(message)}

    def callback_update(
        self,
        update_id: int,
        chat_id: int,
        data: str,
        *,
        message_id: int = 1,
        language_code: str = "zh-hans",
        first_name: str = "测试",
    ) -> dict:
        """A button press on the bot's message ``message_id`` (the fake's copy of it when it sent one)."""
        chat = self.chats.get(chat_id) or self._chat(chat_id)
        message = self.messages.get((chat_id, message_id)) or {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "chat": dict(chat),
            "date": int(time.time()),
            "text": "…",
        }
        user_id = chat_id if chat_id > 0 else abs(chat_id) % 10**9
        return {
            "update_id": update_id,
            "callback_query": {
                "id": str(4_000_000_000_000_000_000 + next(self._callback_ids)),
                "from": self._user(user_id, first_name, language_code),
                "message": json.loads(json.dumps(message)),
                "chat_instance": str(-(abs(chat_id) * 7919 % 10**18) - 1),
                "data": data,
            },
        }

    def _media_update(self, update_id: int, chat_id: int, language_code: str, fields: dict) -> dict:
        message = self._incoming(
            chat_id,
            first_name="测试",
            language_code=language_code,
            message_id=None,
            date=None,
            chat_type="private" if chat_id > 0 else "supergroup",
            user_id=None,
        )
        message.update(fields)
        return {"update_id": update_id, "message": self._remember(message)}

    def photo_update(
        self, update_id: int, chat_id: int, *, caption: str | None = None, language_code: str = "zh-hans"
    ) -> dict:
        """A photo message: a ``photo`` array of sizes and no ``text`` (a ``caption`` if given)."""
        uid = f"AQAD{update_id:06d}"
        sizes = [(90, 67, 1403), (320, 240, 20558), (800, 600, 71234), (1280, 960, 133311)]
        fields: dict[str, Any] = {
            "photo": [
                {
                    "file_id": f"AgACAgUAAxkBAAI{update_id:06d}{i}",
                    "file_unique_id": f"{uid}{i}",
                    "file_size": size,
                    "width": w,
                    "height": h,
                }
                for i, (w, h, size) in enumerate(sizes)
            ]
        }
        if caption is not None:
            fields["caption"] = caption
        return self._media_update(update_id, chat_id, language_code, fields)

    def sticker_update(
        self, update_id: int, chat_id: int, *, emoji: str = "👍", language_code: str = "zh-hans"
    ) -> dict:
        fields = {
            "sticker": {
                "file_id": f"CAACAgIAAxkBAAI{update_id:06d}",
                "file_unique_id": f"AgAD{update_id:06d}",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
                "set_name": "TestStickers",
                "file_size": 23_412,
            }
        }
        return self._media_update(update_id, chat_id, language_code, fields)

    def location_update(
        self,
        update_id: int,
        chat_id: int,
        *,
        latitude: float = 39.908722,
        longitude: float = 116.397499,
        language_code: str = "zh-hans",
    ) -> dict:
        return self._media_update(
            update_id, chat_id, language_code, {"location": {"latitude": latitude, "longitude": longitude}}
        )

    def voice_update(self, update_id: int, chat_id: int, *, duration: int = 3, language_code: str = "zh-hans") -> dict:
        fields = {
            "voice": {
                "file_id": f"AwACAgUAAxkBAAI{update_id:06d}",
                "file_unique_id": f"AgAE{update_id:06d}",
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": 8_000 * duration,
            }
        }
        return self._media_update(update_id, chat_id, language_code, fields)

    async def deliver(self, update: dict, url: str | None = None, *, secret_token: str | None = None) -> int:
        """POSTs ``update`` to the webhook (or ``url``) as Telegram does; returns the HTTP status.

        The secret token header is the one given to setWebhook unless ``secret_token`` overrides it. Like
        Telegram, a 200 answer whose JSON body names a ``method`` is executed as a Bot API call."""
        webhook = self.webhook or {}
        target = url or webhook.get("url")
        if not target:
            raise AssertionError("no webhook set and no url given")
        headers = {"Content-Type": "application/json"}
        secret = secret_token if secret_token is not None else webhook.get("secret_token")
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=json.dumps(update, ensure_ascii=False).encode("utf-8"), headers=headers) as resp,
        ):
            body = await resp.read()
            if resp.status == 200 and resp.content_type == "application/json":
                try:
                    answer = json.loads(body)
                except ValueError:
                    answer = None
                if isinstance(answer, dict) and isinstance(answer.get("method"), str):
                    params = {k: _decode_value(k, v) for k, v in answer.items() if k != "method"}
                    self._dispatch(answer["method"], params)
            return resp.status


# lower-case name → (canonical Bot API name, handler); Telegram's method names are case-insensitive
_METHODS: dict[str, tuple[str, str]] = {
    name.lower(): (name, handler)
    for name, handler in [
        ("getMe", "_get_me"),
        ("setWebhook", "_set_webhook"),
        ("deleteWebhook", "_delete_webhook"),
        ("getWebhookInfo", "_get_webhook_info"),
        ("setMyCommands", "_set_my_commands"),
        ("getMyCommands", "_get_my_commands"),
        ("sendMessage", "_send_message"),
        ("editMessageReplyMarkup", "_edit_message_reply_markup"),
        ("editMessageText", "_edit_message_text"),
        ("deleteMessage", "_delete_message"),
        ("answerCallbackQuery", "_answer_callback_query"),
        ("sendChatAction", "_send_chat_action"),
    ]
}
