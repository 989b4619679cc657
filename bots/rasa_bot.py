"""Rasa as the bot (``bots.engine: rasa``): each turn goes to a Rasa server's REST channel, its answers come back
on every channel of the gateway, and a conversation it wants to hand to people goes to the gateway's human queue.

* A turn: ``POST {rasa_url}/webhooks/rest/webhook`` ``{"sender", "message", "metadata"}``. The sender is the
  gateway's conversation id (random: no phone number or account reaches Rasa's tracker store); a new gateway
  conversation is a new Rasa conversation. The metadata names the channel, the reply language and whether the
  channel is public (a forum: everyone reads the answer).
* Rasa's answers (``[{"recipient_id", "text"?, "buttons"?, "image"?, "attachment"?, "custom"?}]``) become the
  bot's replies: text, buttons (quick replies; a number picks one where the channel has no buttons), images and
  attachments as links, a custom payload's ``text``/``buttons``. Other custom payloads are logged, never shown.
* Handing over: a custom payload whose ``bots.rasa_handoff_payload`` key is true (``{"handoff": true, "skill":
  "network"}``), or — read from Rasa's tracker (``rasa run --enable-api``) — the turn's intent
  ``bots.rasa_handoff_intent`` or action ``bots.rasa_handoff_action``. The conversation goes to the queue through
  the ``Handoff`` port like the built-in bot's (skills, SLA clocks, the survey afterwards); the gateway's own
  "human" button (``/request_human``) and Telegram's /human do the same without asking Rasa.
* Afterwards: when the bot has the conversation again (the survey answered or skipped), Rasa first gets
  ``bots.rasa_resume_message`` (``/restart``: a clean tracker), then the customer's message.
* Rasa down, slow past ``bots.rasa_timeout`` or answering nonsense: a polite apology in the customer's language
  with a button to an agent; the message stays in the conversation's log for the agent, and a pending restart is
  tried again on the next turn.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bots.context import Ctx, Reply, Services
from bots.engine import Bot
from gateway.models import Button
from gateway.rkeys import Keys
from nlu import COMPLAINT_TYPES

log = logging.getLogger(__name__)

HUMAN_PAYLOAD = "/request_human"  # the gateway's own "agent" button, Telegram's /human, an SMS keyword
RESTART_FIELD = "rasa_restart"  # in the sender's hash (rkeys ``sender``): the conversation whose tracker to restart
HANDOFF_REASONS = {"request_human", "complaint", "urgent"}
APOLOGY = {
    "zh": "抱歉，智能助手暂时无法回复，您的消息已记录。请稍后再试，或者为您转人工客服。",
    "en": "Sorry, our assistant can't answer right now; your message has been kept. Please try again in a moment, "
    "or I can put you through to an agent.",
}


@dataclass(frozen=True, slots=True)
class RasaConfig:
    url: str
    token: str = field(default="", repr=False)  # Rasa's --auth-token, for the tracker API only
    timeout: float = 8.0
    handoff_payload: str = "handoff"  # a custom payload with this key true hands over; "" never
    handoff_intent: str = ""  # e.g. human_handoff (read from the tracker: needs rasa run --enable-api)
    handoff_action: str = ""  # e.g. action_handoff (likewise)
    resume_message: str = "/restart"  # sent when the bot resumes after people; "" sends nothing


class RasaError(Exception):
    """The Rasa server did not answer, or not with Rasa's format."""


@dataclass(frozen=True, slots=True)
class Handover:
    reason: str = "request_human"
    complaint_type: str | None = None  # routes like a complaint type (a skill word not in the types is the skill)


@dataclass(slots=True)
class Rendered:
    replies: list[Reply] = field(default_factory=list)
    handover: Handover | None = None
    hidden: list[dict[str, Any]] = field(default_factory=list)  # custom payloads nobody can be shown


class RasaClient:
    """A Rasa server's REST channel and (optionally) its tracker API, over one aiohttp session."""

    def __init__(self, config: RasaConfig) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"sender": sender, "message": message, "metadata": metadata}
        answer = await self._call("POST", "/webhooks/rest/webhook", json=body)
        if not isinstance(answer, list):
            raise RasaError(f"the REST channel answered {type(answer).__name__}, not a list")
        return [r for r in answer if isinstance(r, dict)]

    async def tracker(self, sender: str) -> dict[str, Any]:
        params = {"include_events": "AFTER_RESTART"}
        if self.config.token:
            params["token"] = self.config.token
        answer = await self._call("GET", f"/conversations/{sender}/tracker", params=params)
        if not isinstance(answer, dict):
            raise RasaError("the tracker API answered no object")
        return answer

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._http().request(method, self.base + path, **kwargs) as resp:
                if resp.status != 200:
                    raise RasaError(f"{method} {path}: HTTP {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RasaError(f"{method} {path}: {type(exc).__name__}") from None


def render(responses: list[dict[str, Any]], handoff_key: str) -> Rendered:
    """Rasa's answers as the bot's replies, and whether one of them hands the conversation over."""
    out = Rendered()
    for r in responses:
        if not isinstance(r, dict):
            continue
        buttons, links = _buttons(r.get("buttons") or r.get("quick_replies"))
        text = "\n".join(x for x in (str(r.get("text") or "").strip(), *links) if x)
        if text or buttons:
            out.replies.append(Reply(text, buttons))
        for link in (_link(r.get("image")), _link(r.get("attachment"))):
            if link:
                out.replies.append(Reply(link))
        custom = r.get("custom")
        if not isinstance(custom, dict) or not custom:
            continue
        if handoff_key and custom.get(handoff_key):
            out.handover = _handover(custom)
            continue
        buttons, links = _buttons(custom.get("buttons") or custom.get("quick_replies"))
        text = "\n".join(x for x in (str(custom.get("text") or "").strip(), *links) if x)
        if text or buttons:
            out.replies.append(Reply(text, buttons))
        else:
            out.hidden.append(custom)
    return out


def _buttons(raw: Any) -> tuple[tuple[Button, ...], list[str]]:
    """Buttons with a payload are quick replies; a link button ("url") becomes a line "title: url"."""
    buttons: list[Button] = []
    links: list[str] = []
    for b in raw if isinstance(raw, list) else []:
        if not isinstance(b, dict):
            continue
        title = str(b.get("title") or "").strip()
        payload = str(b.get("payload") or "").strip()
        url = str(b.get("url") or "").strip()
        if url and not payload:
            links.append(f"{title}: {url}" if title else url)
        elif title or payload:
            buttons.append(Button(title or payload, payload or title))
    return tuple(buttons), links


def _link(raw: Any) -> str:
    """An image or attachment as a link: a URL string, or Rasa's ``{"payload": {"src"|"url": …}}``."""
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, dict):
        inner = raw.get("payload") if isinstance(raw.get("payload"), dict) else raw
        return str(inner.get("src") or inner.get("url") or "").strip()
    return ""


def _handover(custom: dict[str, Any]) -> Handover:
    kind = custom.get("complaint_type")
    skill = custom.get("skill")
    reason = custom.get("reason")
    complaint_type = kind if kind in COMPLAINT_TYPES else (str(skill) if isinstance(skill, str) and skill else None)
    return Handover(reason if reason in HANDOFF_REASONS else "request_human", complaint_type)


class RasaBot(Bot):
    """The gateway's bot interface (``respond(ctx)``) answered by a Rasa assistant; the gateway's own questions —
    the survey after people, a message for a callback — are still asked and taken by the gateway's flows."""

    def __init__(self, services: Services, client: RasaClient, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(services)
        self.client = client
        self.config = client.config
        self.redis = redis
        self.keys = keys

    async def close(self) -> None:
        await self.client.close()

    async def respond(self, ctx: Ctx) -> None:
        state = ctx.state
        options, state.options = state.options, []
        state.pending = None  # no confirmation is asked in this mode
        if state.slot and await self._slot(ctx):  # the survey, a message for a callback: the gateway's flows
            return None
        text = ctx.text.strip()
        if options and ctx.norm.isdigit() and 1 <= int(ctx.norm) <= len(options):  # a quick reply by its number
            text = options[int(ctx.norm) - 1][1]
        return await self._turn(ctx, text)

    async def route(self, ctx: Ctx) -> None:
        """A message after one of the gateway's questions ended (a handled callback task): to Rasa."""
        await self._turn(ctx, ctx.text.strip())

    async def _turn(self, ctx: Ctx, text: str) -> None:
        if HUMAN_PAYLOAD in (text, ctx.result.text.strip()):
            return await self._hand_over(ctx, Handover("request_human"))
        sender = ctx.conversation_id
        try:
            responses = await self._resume(ctx)
            responses += await self.client.send(sender, text, self._metadata(ctx))
        except RasaError as exc:
            log.warning("rasa unavailable: %s", exc)
            ctx.event("rasa_unavailable", error=str(exc)[:200])
            human = self.svc.renderer.button("request_human", ctx.lang)
            ctx.replies.append(Reply(APOLOGY.get(ctx.lang, APOLOGY["en"]), (human,)))
            ctx.state.options = [[human.title, human.payload]]
            return None
        out = render(responses, self.config.handoff_payload)
        ctx.replies.extend(out.replies)
        buttons = [b for r in out.replies for b in r.buttons]
        if buttons:
            ctx.state.options = [[b.title, b.payload] for b in buttons]
        if out.hidden:
            ctx.event("rasa_custom", keys=sorted({str(k) for c in out.hidden for k in c})[:20])
        handover = out.handover or await self._asked_for_people(ctx, sender)
        if handover is not None:
            await self._hand_over(ctx, handover)
        return None

    @staticmethod
    def _metadata(ctx: Ctx) -> dict[str, Any]:
        """What Rasa's custom actions may read (``tracker.latest_message["metadata"]``): never who the customer is."""
        return {"channel": ctx.channel, "lang": ctx.lang, "public": ctx.public}

    async def _resume(self, ctx: Ctx) -> list[dict[str, Any]]:
        """After people had the conversation: Rasa's tracker restarted (``resume_message``) before the next turn."""
        key = self.keys.sender(ctx.channel, ctx.sender)
        marked = await self.redis.hget(key, RESTART_FIELD)
        if marked is None:
            return []
        responses: list[dict[str, Any]] = []
        if marked.decode() == ctx.conversation_id and self.config.resume_message:
            responses = await self.client.send(ctx.conversation_id, self.config.resume_message, self._metadata(ctx))
            ctx.event("rasa_resumed", message=self.config.resume_message)
        await self.redis.hdel(key, RESTART_FIELD)  # (another conversation's mark: that tracker is not used again)
        return responses

    async def _asked_for_people(self, ctx: Ctx, sender: str) -> Handover | None:
        """The turn's intent or actions, from Rasa's tracker, when the settings name a handoff intent or action."""
        intent, action = self.config.handoff_intent, self.config.handoff_action
        if not intent and not action:
            return None
        try:
            events = (await self.client.tracker(sender)).get("events") or []
        except RasaError as exc:
            log.warning("rasa tracker unavailable (handoff intent/action not checked): %s", exc)
            ctx.event("rasa_tracker_unavailable", error=str(exc)[:200])
            return None
        users = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("event") == "user"]
        if not users:
            return None
        last = events[users[-1]]
        said = ((last.get("parse_data") or {}).get("intent") or {}).get("name")
        done = {e.get("name") for e in events[users[-1] + 1 :] if isinstance(e, dict) and e.get("event") == "action"}
        if (intent and said == intent) or (action and action in done):
            return Handover("request_human")
        return None

    async def _hand_over(self, ctx: Ctx, handover: Handover) -> None:
        """To the gateway's queue through the ``Handoff`` port (as ``Ctx.hand_over``, with Rasa's skill), and a
        mark that Rasa's tracker is restarted when the bot has the conversation again."""
        kind = handover.complaint_type or ctx.result.complaint_type  # Rasa's skill, else the gateway's NLU's type
        await ctx.hand_over_request(dataclasses.replace(ctx.handoff_request(handover.reason), complaint_type=kind),
                                    engine="rasa")  # fmt: skip
        await self.redis.hset(self.keys.sender(ctx.channel, ctx.sender), RESTART_FIELD, ctx.conversation_id)
