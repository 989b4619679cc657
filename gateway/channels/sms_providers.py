"""The SMS outbox's providers: how a queued text leaves the gateway.

* ``log`` (the demo): the text is logged, numbers masked, and not sent.
* ``twilio``: Twilio's Messages API (or anything speaking it), receipts to ``/channels/sms/twilio/status``.
* ``http``: a generic JSON API (``POST http_url`` → ``{id}``), receipts to ``/channels/sms/status``.
* ``smpp``: the operator's SMSC over SMPP 3.4 (``gateway/channels/smpp.py``).

A provider raises ``RetryLater`` for what may pass later (an outage, 5xx, 429) and ``PermanentFailure`` for what
never will (an invalid number); the outbox retries or gives up accordingly.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Protocol

import aiohttp

from gateway.channels.smpp import SmppProvider
from gateway.outbox import PermanentFailure, RetryLater
from gateway.privacy import mask_phone
from gateway.settings import Settings, SmsSettings

DEMO_LOG = logging.getLogger("gateway.sms")  # the demo provider's texts (one-time codes), numbers masked


class Provider(Protocol):
    name: str

    async def send(self, to: str, text: str, reference: str) -> str | None:
        """Send one text (the provider splits it, or the adapter does); the provider's id."""
        ...

    async def close(self) -> None: ...


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500 or status == 408


class LogProvider:
    """Demo: texts are printed (numbers masked), not sent."""

    name = "log"

    async def send(self, to: str, text: str, reference: str) -> str | None:
        DEMO_LOG.warning("SMS to %s (demo provider: not sent): %s", mask_phone(to), text)
        return f"log-{reference}"

    async def close(self) -> None:
        return None


class TwilioProvider:
    """Twilio's Messages API (or anything speaking it, at ``twilio_base_url``)."""

    name = "twilio"

    def __init__(self, settings: SmsSettings, status_url: str) -> None:
        self.s = settings
        self.url = (
            f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
        )
        self.status_url = status_url
        authorization = basic_auth_header(settings.twilio_account_sid, settings.twilio_auth_token)
        self.session = aiohttp.ClientSession(headers={"Authorization": authorization},
                                             timeout=aiohttp.ClientTimeout(total=10))  # fmt: skip

    async def send(self, to: str, text: str, reference: str) -> str | None:
        form = {"To": e164(to, self.s.country_code), "Body": text, "StatusCallback": self.status_url}
        if self.s.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = self.s.twilio_messaging_service_sid
        else:
            form["From"] = self.s.source
        try:
            async with self.session.post(self.url, data=form) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"twilio unreachable: {type(exc).__name__}") from None
        data = _json_or_empty(body)
        if 200 <= status < 300:
            return str(data.get("sid") or "") or None
        reason = f"twilio HTTP {status} code {data.get('code', '?')}"
        after = _retry_after(data)
        if _retryable(status):
            raise RetryLater(reason, after)
        raise PermanentFailure(reason)

    async def close(self) -> None:
        await self.session.close()


class HttpProvider:
    """A generic HTTP provider: ``POST http_url`` JSON ``{to, from, text, reference, callback_url}`` → ``{id}``."""

    name = "http"

    def __init__(self, settings: SmsSettings, status_url: str) -> None:
        self.s = settings
        self.status_url = status_url
        headers = {}
        if settings.http_auth:
            name, _, value = settings.http_auth.partition(":")
            headers[name.strip()] = value.strip()
        self.session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10))

    async def send(self, to: str, text: str, reference: str) -> str | None:
        body = {"to": e164(to, self.s.country_code), "from": self.s.source, "text": text, "reference": reference,
                "callback_url": self.status_url}  # fmt: skip
        try:
            async with self.session.post(self.s.http_url, json=body) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"SMS provider unreachable: {type(exc).__name__}") from None
        data = _json_or_empty(raw)
        if 200 <= status < 300:
            return str(data.get("id") or "") or None
        reason = f"SMS provider HTTP {status}: {str(data.get('error', ''))[:80]}"
        if _retryable(status):
            raise RetryLater(reason, _retry_after(data))
        raise PermanentFailure(reason)

    async def close(self) -> None:
        await self.session.close()


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(data: dict[str, Any]) -> float | None:
    value = data.get("retry_after") or (data.get("parameters") or {}).get("retry_after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def e164(number: str, country_code: str) -> str:
    return number if number.startswith("+") else f"+{country_code}{number}"


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def make_provider(settings: Settings) -> Provider:
    s = settings.sms
    base = settings.public_url.rstrip("/") + "/channels/sms"
    if s.provider == "twilio":
        return TwilioProvider(s, base + "/twilio/status")
    if s.provider == "http":
        return HttpProvider(s, base + "/status")
    if s.provider == "smpp":
        return SmppProvider(s)
    return LogProvider()
