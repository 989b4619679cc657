"""Fake SMS providers for end-to-end tests: Twilio's Programmable Messaging REST API and a generic HTTP SMS API.

``FakeTwilio`` speaks Twilio's real wire format (the ``twilio`` library's own client works against it when its
``api.base_url`` is pointed here): ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic auth
``AccountSid:AuthToken``, form-encoded ``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ``StatusCallback``;
201 with the Message resource JSON, errors as ``{"code", "message", "more_info", "status"}``. It also produces
what Twilio sends to the gateway: signed status callbacks and inbound-SMS webhooks (``X-Twilio-Signature``).

``FakeHttpSms`` is the generic provider our ``http`` outbound adapter speaks: ``POST /send`` with a JSON body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import hmac
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"

# GSM 03.38 default alphabet and its extension table (extension characters take two septets).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE = re.compile(r"^\d{5,6}$")


def sms_segments(text: str) -> int:
    """How many SMS parts a carrier bills ``text`` as: GSM-7 160 (153 per part when concatenated),
    UCS-2 70 (67 per part) UTF-16 code units; at least 1."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text):
        units, single, part = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in text), 160, 153
    else:
        units, single, part = len(text.encode("utf-16-le")) // 2, 70, 67
    if units <= single:
        return 1
    return -(-units // part)


def _rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC)).replace("-0000", "+0000")


def _country(number: str) -> str:
    for prefix, country in (("+86", "CN"), ("+852", "HK"), ("+853", "MO"), ("+886", "TW"), ("+1", "US")):
        if number.startswith(prefix):
            return country
    return ""


class _Server:
    """An aiohttp app on 127.0.0.1:<random port>."""

    def __init__(self) -> None:
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _wait(self, what: str, found: Any, count: int, timeout: float) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(items := found()) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"expected {count} {what}, got {len(items)}: {items!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return items


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> web.Response:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
            **self.extra,
        }
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if self.status == 401 else None
        return web.json_response(body, status=self.status, headers=headers)


class FakeTwilio(_Server):
    """Twilio's Messages API. ``messages`` holds accepted sends: the form fields as posted (``To``, ``From`` or
    ``MessagingServiceSid``, ``Body``, ``StatusCallback`` …) plus ``sid``, ``num_segments`` (int) and ``status``."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "twilio-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.validator = RequestValidator(auth_token)
        self.messages: list[dict] = []
        self.attempts: list[dict] = []  # every authenticated create request's form, accepted or not
        self.down = False
        self.invalid_numbers: set[str] = set()
        self._failures: list[list[Any]] = []  # [remaining, status, code, message]

    def _routes(self, app: web.Application) -> None:
        prefix = f"/{API_VERSION}/Accounts/{{account}}"
        app.router.add_post(f"{prefix}/Messages.json", self._create)
        app.router.add_get(f"{prefix}/Messages/{{sid}}.json", self._fetch)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    # ------------------------------------------------------------------ controls and inspection

    def fail(self, times: int, status: int = 500, code: int = 20500, message: str = "Internal Server Error") -> None:
        """The next ``times`` create requests fail with a Twilio error JSON."""
        self._failures.append([times, status, code, message])

    def sent_to(self, to: str) -> list[str]:
        return [m["Body"] for m in self.messages if m.get("To") == to]

    def message(self, sid: str) -> dict:
        return next(m for m in self.messages if m["sid"] == sid)

    async def wait_messages(self, count: int, timeout: float = 5.0) -> list[dict]:
        return await self._wait("Twilio message(s)", lambda: list(self.messages), count, timeout)

    # ------------------------------------------------------------------ HTTP

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or user != self.account_sid or password != self.auth_token:
            raise TwilioError(401, 20003, "Authenticate", detail="Your AccountSid or AuthToken was incorrect.")
        if request.match_info.get("account") != self.account_sid:
            raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")

    async def _not_found(self, request: web.Request) -> web.Response:
        if self.down:
            return self._outage()
        return TwilioError(404, 20404, f"The requested resource {request.path} was not found").response()

    def _outage(self) -> web.Response:
        return TwilioError(503, 20503, "Service Unavailable").response()

    def _resource(self, stored: dict) -> dict:
        sid = stored["sid"]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": stored["Body"],
            "date_created": stored["date_created"],
            "date_sent": None,
            "date_updated": stored["date_updated"],
            "direction": "outbound-api",
            "error_code": stored.get("error_code"),
            "error_message": None,
            "from": stored.get("From"),
            "messaging_service_sid": stored.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(stored["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": stored["status"],
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": stored["To"],
            "uri": f"{uri}.json",
        }

    async def _create(self, request: web.Request) -> web.Response:
        if self.down:
            return self._outage()
        try:
            self._authenticate(request)
            form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            self.attempts.append(form)
            self._changed.set()
            self._inject_failure()
            stored = self._validate(form)
        except TwilioError as exc:
            return exc.response()
        self.messages.append(stored)
        self._changed.set()
        return web.json_response(self._resource(stored), status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        if self.down:
            return self._outage()
        try:
            self._authenticate(request)
            sid = request.match_info["sid"]
            stored = next((m for m in self.messages if m["sid"] == sid), None)
            if stored is None:
                raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
        except TwilioError as exc:
            return exc.response()
        return web.json_response(self._resource(stored))

    def _inject_failure(self) -> None:
        if self._failures:
            failure = self._failures[0]
            failure[0] -= 1
            if failure[0] <= 0:
                self._failures.pop(0)
            raise TwilioError(failure[1], failure[2], failure[3])

    def _validate(self, form: dict) -> dict:
        to = form.get("To", "")
        sender = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not body and not form.get("MediaUrl"):
            raise TwilioError(400, 21602, "Message body is required.")
        if not sender and not service:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if service and not re.fullmatch(r"MG[0-9a-f]{32}", service):
            raise TwilioError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if to in self.invalid_numbers or not _E164.match(to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if sender and not (_E164.match(sender) or _SHORT_CODE.match(sender) or _ALPHANUMERIC_SENDER.match(sender)):
            raise TwilioError(
                400,
                21212,
                f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID.",
            )
        if len(body) > 1600:
            raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        callback = form.get("StatusCallback")
        if callback is not None and not re.match(r"^https?://\S+$", callback):
            raise TwilioError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        now = _rfc2822(datetime.now(UTC))
        return {
            **form,
            "sid": "SM" + uuid.uuid4().hex,
            "num_segments": sms_segments(body),
            "status": "accepted" if service and not sender else "queued",
            "date_created": now,
            "date_updated": now,
        }

    # ------------------------------------------------------------------ what Twilio sends to the gateway

    def sign(self, url: str, params: dict[str, str]) -> str:
        """``X-Twilio-Signature`` for a form POST of ``params`` to ``url`` (HMAC-SHA1 with the auth token)."""
        return self.validator.compute_signature(url, params)

    def _headers(self, url: str, params: dict[str, str]) -> dict[str, str]:
        return {
            "X-Twilio-Signature": self.sign(url, params),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }

    def status_form(
        self,
        url: str,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        to: str | None = None,
        from_: str | None = None,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(form, headers) of a status callback for message ``sid`` (a message the fake accepted, or give to/from_)."""
        stored = next((m for m in self.messages if m["sid"] == sid), {})
        params = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": to if to is not None else stored.get("To", ""),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_ if from_ is not None else stored.get("From", ""),
            "ApiVersion": API_VERSION,
        }
        if stored.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = stored["MessagingServiceSid"]
        if error_code is None and status in ("failed", "undelivered"):
            error_code = 30003  # Unreachable destination handset
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        if stored:
            stored["status"] = status
            stored["date_updated"] = _rfc2822(datetime.now(UTC))
            if error_code is not None:
                stored["error_code"] = error_code
        return params, self._headers(url, params)

    async def post_status_callback(
        self,
        url: str,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        to: str | None = None,
        from_: str | None = None,
    ) -> int:
        """POSTs a signed status callback (queued/sent/delivered/undelivered/failed) to ``url``; the HTTP status."""
        params, headers = self.status_form(url, sid, status, error_code=error_code, to=to, from_=from_)
        return await _post_form(url, params, headers)

    def inbound_form(
        self, url: str, from_: str, to: str, body: str, sid: str | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(form, headers) of an incoming SMS as Twilio POSTs it to the number's webhook ``url``."""
        sid = sid or "SM" + uuid.uuid4().hex
        params = {
            "ToCountry": _country(to),
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": _country(from_),
            "To": to,
            "ToZip": "",
            "NumSegments": str(sms_segments(body)),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        return params, self._headers(url, params)

    async def post_inbound(self, url: str, from_: str, to: str, body: str, sid: str | None = None) -> int:
        params, headers = self.inbound_form(url, from_, to, body, sid)
        return await _post_form(url, params, headers)


async def _post_form(url: str, params: dict[str, str], headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=params, headers=headers) as resp:
        await resp.read()
        return resp.status


class FakeHttpSms(_Server):
    """A generic HTTP SMS API: ``POST {base_url}/send`` with JSON ``{"to", "from", "text", "reference",
    "callback_url"}`` and the auth header → 200 ``{"id", "segments"}``; errors are ``{"error": "..."}``.

    What it sends to the gateway (the gateway's generic SMS webhooks): delivery receipts ``{"id", "status",
    "reference", "to"[, "error"], "timestamp"}`` to the message's ``callback_url`` and incoming SMS ``{"from", "to",
    "text", "id", "timestamp"}`` (``timestamp``: Unix seconds when sent, covered by the signature), as JSON with
    ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` when ``webhook_secret`` is set."""

    def __init__(self, auth_header: str = "Authorization: Bearer sms-key", webhook_secret: str | None = None) -> None:
        super().__init__()
        self.webhook_secret = webhook_secret
        name, _, value = auth_header.partition(":")
        self.auth_name, self.auth_value = name.strip(), value.strip()
        self.messages: list[dict] = []  # accepted: the JSON as posted plus "id" and "segments"
        self.attempts: list[Any] = []  # every authenticated request body (parsed JSON, or the raw text)
        self.down = False
        self._failures: list[list[int]] = []  # [remaining, status]

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/send", self._send)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def fail(self, times: int, status: int = 500) -> None:
        self._failures.append([times, status])

    def sent_to(self, to: str) -> list[str]:
        return [m["text"] for m in self.messages if m["to"] == to]

    async def wait_messages(self, count: int, timeout: float = 5.0) -> list[dict]:
        return await self._wait("HTTP SMS message(s)", lambda: list(self.messages), count, timeout)

    async def _not_found(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        return web.json_response({"error": "not found"}, status=404)

    async def _send(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        if request.headers.get(self.auth_name) != self.auth_value:
            return web.json_response({"error": "unauthorized"}, status=401)
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            self.attempts.append(raw)
            return web.json_response({"error": "invalid JSON"}, status=400)
        self.attempts.append(body)
        self._changed.set()
        if self._failures:
            failure = self._failures[0]
            failure[0] -= 1
            if failure[0] <= 0:
                self._failures.pop(0)
            return web.json_response(
                {"error": "internal error" if failure[1] >= 500 else "rejected"}, status=failure[1]
            )
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        for field in ("to", "from", "text", "reference"):
            if not isinstance(body.get(field), str) or not body[field]:
                return web.json_response({"error": f"missing or invalid field: {field}"}, status=400)
        callback = body.get("callback_url")
        if callback is not None and not (isinstance(callback, str) and re.match(r"^https?://\S+$", callback)):
            return web.json_response({"error": "invalid field: callback_url"}, status=400)
        if not re.fullmatch(r"\+?\d{7,15}", body["to"]):
            return web.json_response({"error": f"invalid recipient: {body['to']}"}, status=400)
        stored = {**body, "id": uuid.uuid4().hex, "segments": sms_segments(body["text"])}
        self.messages.append(stored)
        self._changed.set()
        return web.json_response({"id": stored["id"], "segments": stored["segments"]})

    def sign(self, body: bytes) -> str:
        """``X-Signature`` of a body this provider posts: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
        if not self.webhook_secret:
            raise AssertionError("FakeHttpSms(webhook_secret=...) is needed to sign")
        return "sha256=" + hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()

    def _signed(self, payload: dict, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        payload = {**payload, "timestamp": int(time.time()) if timestamp is None else timestamp}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Signature"] = self.sign(body)
        return body, headers

    def report_body(
        self, message_id: str, status: str = "delivered", *, error: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """(raw JSON body, headers) of a delivery receipt ``{"id", "status", "reference", "to"[, "error"],
        "timestamp"}`` (``timestamp``: now unless given)."""
        stored = next((m for m in self.messages if m["id"] == message_id), {})
        payload: dict[str, Any] = {"id": message_id, "status": status}
        if stored:
            payload.update(reference=stored["reference"], to=stored["to"])
        if error is not None:
            payload["error"] = error
        return self._signed(payload, timestamp)

    async def post_report(
        self, message_id: str, status: str = "delivered", *, error: str | None = None, url: str | None = None
    ) -> int:
        """POSTs a delivery receipt to ``url`` (default: the message's ``callback_url``); the HTTP status."""
        stored = next((m for m in self.messages if m["id"] == message_id), {})
        target = url or stored.get("callback_url")
        if not target:
            raise AssertionError(f"message {message_id} has no callback_url and no url was given")
        body, headers = self.report_body(message_id, status, error=error)
        return await _post_raw(target, body, headers)

    def inbound_body(
        self, from_: str, to: str, text: str, message_id: str | None = None, *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """(raw JSON body, headers) of an incoming SMS ``{"from", "to", "text", "id", "timestamp"}`` (``timestamp``:
        now unless given)."""
        payload = {"from": from_, "to": to, "text": text, "id": message_id or uuid.uuid4().hex}
        return self._signed(payload, timestamp)

    async def post_inbound(self, url: str, from_: str, to: str, text: str, message_id: str | None = None) -> int:
        body, headers = self.inbound_body(from_, to, text, message_id)
        return await _post_raw(url, body, headers)


async def _post_raw(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status
