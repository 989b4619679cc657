"""The channels and the back end as major incidents need them: handoff/ never imports the channels, so the gateway
hands the incident desk these adapters (``wire``).

* ``Sender``s (``handoff.incidents.broadcast.Sender``) for a broadcast of the notice: SMS (a text, ``TD`` opt-outs
  honoured), WeChat (a template message, unsubscribed followers honoured) and Telegram (a message); each puts its
  messages in the channel's outbox and the outbox tells the broadcast how each ended (sent or failed). A channel is
  looked up when used (channels are mounted after the core is built); one not enabled has no sender.
* ``BackEnd`` (``broadcast.Audience`` and ``compensation.Goodwill`` of handoff.incidents): the customers of a district
  from the back end (``BSS.district_phones``), the WeChat/Telegram accounts bound to their numbers (the bindings made
  with a one-time code, found with ``SCAN``: a supervisor's one-off request, never on a customer's turn), and the
  goodwill gesture (``BSS.goodwill``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from bots.bss import BSS
from bots.bss.base import Order
from bots.identity import accounts_of
from gateway.channels.sms import SMS_CHANNEL, SmsChannel, normalise_number
from gateway.channels.telegram import TELEGRAM, TelegramChannel
from gateway.channels.wechat import WECHAT, WeChatChannel
from gateway.consent import may_market
from gateway.errors import BadRequest
from gateway.keys import PIPELINE, REDIS, RKEYS
from gateway.outbox import Job, Outbox, job_id
from gateway.rkeys import OUTBOX_ID_TTL
from handoff.incidents.broadcast import JOB_TAG, Broadcasts, Sender
from handoff.incidents.desk import Desk
from handoff.incidents.web import DESK

PAGE = 1000  # numbers per back-end page


class SmsTexter:
    def __init__(self, channel: SmsChannel) -> None:
        self.channel = channel
        self.outbox = channel.outbox

    def normalise(self, raw: str) -> str:
        try:
            return normalise_number(raw, self.channel.s.country_code)
        except BadRequest as exc:
            raise ValueError(str(exc)) from None

    async def opted_out(self, address: str) -> bool:
        return await self.channel.opted_out(address)

    async def put(self, address: str, text: str, job_key: str, broadcast_id: str) -> bool:
        job = Job(to=address, text=text, id=job_id("incident", job_key), kind="notice",
                  conversation_id=JOB_TAG + broadcast_id)  # fmt: skip
        return await self.outbox.put(job, id_ttl=OUTBOX_ID_TTL * 7)


class WeChatTemplates:
    """A template message per follower (``text``: the template message's JSON body, without ``touser``)."""

    def __init__(self, channel: WeChatChannel) -> None:
        self.channel = channel
        self.outbox = channel.outbox

    def normalise(self, raw: str) -> str:
        value = raw.strip()
        if not value or len(value) > 128 or not all(c.isalnum() or c in "_-" for c in value):
            raise ValueError("not a WeChat openid")
        return value

    async def opted_out(self, address: str) -> bool:
        return bool(await self.channel.redis.exists(self.channel.keys.wechat_unsubscribed(address)))

    async def put(self, address: str, text: str, job_key: str, broadcast_id: str) -> bool:
        job = Job(to=address, text=text, id=job_id("incident", job_key), kind="template",
                  conversation_id=JOB_TAG + broadcast_id)  # fmt: skip
        return await self.outbox.put(job, id_ttl=OUTBOX_ID_TTL * 7)


class TelegramMessages:
    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        self.outbox = channel.outbox

    def normalise(self, raw: str) -> str:
        value = raw.strip()
        if not value.lstrip("-").isdigit() or len(value) > 20:
            raise ValueError("not a Telegram chat id")
        return value

    async def opted_out(self, address: str) -> bool:
        return False  # a user who blocked the bot is known only when a send is refused (counted as failed)

    async def put(self, address: str, text: str, job_key: str, broadcast_id: str) -> bool:
        job = Job(to=address, text=text, id=job_id("incident", job_key), kind="notice",
                  conversation_id=JOB_TAG + broadcast_id)  # fmt: skip
        return await self.outbox.put(job, id_ttl=OUTBOX_ID_TTL * 7)


class BackEnd:
    """The back end and the bindings, for a broadcast's recipients and the goodwill offer."""

    def __init__(self, app: web.Application, bss: BSS) -> None:
        self.app = app
        self.bss = bss

    async def phones(self, district: str) -> list[str]:
        found: list[str] = []
        after = ""
        while True:
            page, after = await self.bss.district_phones(district, after, PAGE)
            found += page
            if not after or not page:
                return found

    async def accounts(self, channel: str, phones: set[str]) -> list[str]:
        """The ``channel`` accounts bound to one of ``phones`` (the number's accounts index, ``bots.identity``: no
        number in any key name) whose customers have not withdrawn marketing consent there."""
        redis, keys = self.app[REDIS], self.app[RKEYS]
        found: list[str] = []
        for phone, accounts in (await accounts_of(redis, keys, sorted(phones))).items():
            for on, sender in accounts:
                if on == channel and await may_market(redis, keys, phone, channel):  # marketing consent
                    found.append(sender)
        return sorted(found)

    async def goodwill(self, phone: str, kind: str, amount: float, reason: str, idempotency_key: str) -> Order:
        return await self.bss.goodwill(phone, kind, amount, reason, idempotency_key)


def senders(app: web.Application, broadcasts: Broadcasts) -> Callable[[], dict[str, Sender]]:
    """What gives the broadcasts their channels when they need them (each outbox tells the broadcasts how each of
    their messages ended, from the first look on)."""
    watched: set[int] = set()

    def watch(channel: str, outbox: Outbox) -> None:
        observers = getattr(outbox, "observers", None)  # an outbox without them: no sent/failed counts
        if id(outbox) not in watched and observers is not None:
            watched.add(id(outbox))

            async def observer(job: Job, outcome: str) -> None:
                await broadcasts.settled(channel, job.conversation_id, outcome)

            observers.append(observer)

    def found() -> dict[str, Sender]:
        made: dict[str, Any] = {}
        if (sms := app.get(SMS_CHANNEL)) is not None:
            made["sms"] = SmsTexter(sms)
        if (wechat := app.get(WECHAT)) is not None and broadcasts.config.wechat_template_id:
            made["wechat"] = WeChatTemplates(wechat)
        if (telegram := app.get(TELEGRAM)) is not None:
            made["telegram"] = TelegramMessages(telegram)
        for channel, sender in made.items():
            watch(channel, sender.outbox)
        return made

    return found


def source(app: web.Application) -> Callable[[], dict[str, Sender]]:
    """What gateway/app.py sets as the broadcasts' ``texter_source``: on its first call (the desk's worker, once the
    app is built) it wires the desk (``wire``) with the bots' own back end, then gives the channels."""
    wired: list[Callable[[], dict[str, Sender]]] = []

    def found() -> dict[str, Sender]:
        if not wired:
            desk, pipeline = app[DESK], app.get(PIPELINE)
            bss = getattr(getattr(getattr(pipeline, "bot", None), "svc", None), "bss", None)
            if bss is None:  # not built yet: the SMS channel alone for now
                sms = app.get(SMS_CHANNEL)
                return {"sms": SmsTexter(sms)} if sms is not None else {}
            wire(app, desk, bss)
            assert desk.broadcasts.senders_source is not None
            wired.append(desk.broadcasts.senders_source)
        return wired[0]()

    return found


def wire(app: web.Application, desk: Desk, bss: BSS) -> None:
    """The desk's ways out: the channels for broadcasts, the back end for recipients and goodwill offers."""
    desk.broadcasts.senders_source = senders(app, desk.broadcasts)
    backend = BackEnd(app, bss)
    desk.broadcasts.audience = backend
    desk.compensation.backend = backend
