"""Major incidents in the conversation (seed ch. 7.2.2): customers in an affected district who ask about the
network, signal, broadband or an outage get the incident's notice at once, with the estimated recovery; their
network complaints are linked to the incident (one record per customer, no new ticket); a request for a person
gets the notice first and joins the queue only when the customer asks again (queue protection). Everything else
the bot does keeps working. When no incident is active, a turn costs nothing here (``IncidentDesk.active``).

Two hooks: ``routed`` (the engine, before a request's flow) and ``network`` (the network_status flow, once it
knows the district — also when the district was the answer to its question)."""

from __future__ import annotations

import datetime as dt
import logging

from bots.bss import BSSError
from bots.context import Ctx
from bots.incidents import ActiveIncident, IncidentDesk
from nlu import FALLBACK_INTENT

log = logging.getLogger(__name__)
NAME = "incident"  # templates/bots/<lang>/incident.j2
SERVICE_OF = {"broadband_repair": "broadband"}


async def network(ctx: Ctx, district: str) -> bool:
    """The network_status flow knows the district: True when the incident notice answered it."""
    desk: IncidentDesk | None = ctx.svc.incidents
    if desk is None:
        return False
    desk.observe(district, ctx.channel, "network_status", ctx.text)
    incident = desk.affecting(district) if desk.active else None
    if incident is None:
        return False
    await _tell(ctx, desk, incident, district, "notice")
    return True


async def routed(ctx: Ctx) -> bool:
    """Before the request's flow: True when an incident answered it (a network complaint, a broadband fault, a
    request for a person during an incident that concerns the customer)."""
    desk: IncidentDesk | None = ctx.svc.incidents
    if desk is None:
        return False
    intent = ctx.intent
    complaint = intent == "complaint" and ctx.result.complaint_type == "network"
    if not complaint and not desk.active:
        return False
    if intent == FALLBACK_INTENT:  # not understood for sure: during an incident, a network question's best guess
        return await _unsure(ctx, desk)
    if not (complaint or intent == "request_human" or (intent in desk.network_intents and intent != "network_status")):
        return False
    district = await _district(ctx)
    if complaint and district:
        desk.observe(district, ctx.channel, "complaint", ctx.text)
    if not desk.active:
        return False
    incident = desk.affecting(district, SERVICE_OF.get(intent)) if district else None
    if intent == "request_human":
        return await _protect(ctx, desk, incident, district)
    if incident is None or district is None:
        return False
    if complaint:
        count, first = await desk.link_complaint(incident.id, ctx.handoff_request("complaint"), district)
        ctx.event("incident_linked", incident=incident.id, first=first)
        await _tell(ctx, desk, incident, district, "linked", count=count, first=first)
        return True
    await _tell(ctx, desk, incident, district, "notice")
    return True


async def _unsure(ctx: Ctx, desk: IncidentDesk) -> bool:
    """A message the NLU is unsure of ("朝阳区手机没信号", 0.44) whose best guess is a network question, from an
    affected district: the notice answers it (the usual "did you mean …" otherwise)."""
    ranking = ctx.result.intent_ranking
    if not ranking or ranking[0].name != "network_status":
        return False
    district = await _district(ctx)
    if district:
        desk.observe(district, ctx.channel, "network_status", ctx.text)
    incident = desk.affecting(district) if district else None
    if incident is None or district is None:
        return False
    await _tell(ctx, desk, incident, district, "notice")
    return True


async def _protect(ctx: Ctx, desk: IncidentDesk, incident: ActiveIncident | None, district: str | None) -> bool:
    """Queue protection: the notice first, the queue when the customer insists. A request concerns the incident
    when this conversation was told of it, or it is about the network in an affected district."""
    if incident is None or ctx.result.complaint_type != "network":
        told = await desk.told_of(ctx.conversation_id)
        incident = desk.get(told) if told else None
        if incident is None:
            return False
        district = district if district in incident.districts else incident.districts[0]
    if not await desk.protect(incident.id, ctx.conversation_id, ctx.channel):
        ctx.event("incident_insisted", incident=incident.id)
        return False
    ctx.event("incident_deflected", incident=incident.id)
    await _tell(ctx, desk, incident, district or incident.districts[0], "protect")
    return True


async def _tell(ctx: Ctx, desk: IncidentDesk, incident: ActiveIncident, district: str, macro: str, **args: object
                ) -> None:  # fmt: skip
    eta = dt.datetime.fromtimestamp(incident.eta, ctx.tz) if incident.eta else None
    ctx.say(NAME, macro, ctx.button("request_human"), category=incident.category, services=incident.services,
            eta=eta, custom=incident.notice.get(ctx.lang, "").strip(), district=district, incident_id=incident.id,
            **args)  # fmt: skip
    ctx.event("incident_notice", incident=incident.id, reason=macro)
    await desk.told(incident.id, ctx.conversation_id, ctx.channel, district, ctx.result.urgency)


async def _district(ctx: Ctx) -> str | None:
    """The district the customer names, else the one on their account (the back end), else unknown."""
    named = ctx.entity("district")
    if named:
        return str(named)
    if not ctx.phone:
        return None
    try:
        return (await ctx.svc.bss.subscriber(ctx.phone)).district
    except BSSError as exc:
        log.info("incident check: the back end did not answer (%s)", type(exc).__name__)
        return None
