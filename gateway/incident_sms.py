"""The SMS channel as an incident broadcast needs it (``handoff.incidents.broadcast.Texter``): handoff/ never
imports the channels, so the gateway hands it this adapter. The channel is looked up when used (it is mounted
after the core is built); without SMS enabled there is none."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from gateway.channels.sms import SMS_CHANNEL, SmsChannel, normalise_number
from gateway.errors import BadRequest
from gateway.outbox import Job, job_id
from gateway.rkeys import OUTBOX_ID_TTL


class SmsTexter:
    def __init__(self, channel: SmsChannel) -> None:
        self.channel = channel

    def normalise(self, raw: str) -> str:
        try:
            return normalise_number(raw, self.channel.s.country_code)
        except BadRequest as exc:
            raise ValueError(str(exc)) from None

    async def opted_out(self, number: str) -> bool:
        return await self.channel.opted_out(number)

    async def put(self, number: str, text: str, job_key: str) -> bool:
        job = Job(to=number, text=text, id=job_id("incident", job_key), kind="notice")
        return await self.channel.outbox.put(job, id_ttl=OUTBOX_ID_TTL * 7)


def source(app: web.Application) -> Callable[[], SmsTexter | None]:
    """What gives the broadcasts their texter when they need it: the SMS channel once it is built, else None."""

    def texter() -> SmsTexter | None:
        channel = app.get(SMS_CHANNEL)
        return SmsTexter(channel) if channel is not None else None

    return texter
