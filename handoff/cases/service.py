"""Complaint cases: registration from any channel, analysis, dispatch, transitions with their rules and clocks.

* ``register`` — a complaint from the bot (any channel, the forum included), an agent closing a chat with
  ``complaint_registered``, a callback task or an agent's own entry: a new case, or — when the customer already
  has an open one — a link to it (the text, channel and chat added to that case, nothing registered twice).
  Registration is followed at once by the system's analysis (type, severity, the customer's account facts from the
  back end) and dispatch (department per type and region, a responsible agent), each a transition of its own.
* ``transition`` — every later stage, checked against ``handoff.cases.model.NEXT`` (409 with the allowed ones),
  attributed and appended to the history; reaching ``in_progress`` meets the first-response clock, ``replied``
  the solution clock; ``replied`` and ``resolved`` are told to the customer on their channel; ``resolved``
  schedules the follow-up visit (``handoff.cases.followup``).
* ``fire`` — the clocks' timers (``handoff.cases.clocks``): a warning before a breach, escalation to the
  department's supervisor at the breach and to its head later.

Reports: every transition, clock event and follow-up result goes on the ``case_events`` stream and to each
``listeners`` callable (``async (event: dict) -> None``) — the stable place to count them."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from bots.ports import HandoffRequest
from gateway.errors import Forbidden
from gateway.metrics import Metrics
from gateway.rkeys import Keys
from handoff.agents import Agent, AgentStore
from handoff.cases import model
from handoff.cases.clocks import CaseTimers
from handoff.cases.config import CLOCKS, TYPES, CasesConfig
from handoff.cases.store import CaseStore
from handoff.ports import ProfileOf
from handoff.store import ChatStore
from handoff.tickets import ComplaintTickets

log = logging.getLogger(__name__)
Listener = Callable[[dict[str, Any]], Awaitable[None]]
INTAKE_CHECK = 30.0  # seconds after registration the worker completes an analysis or dispatch left undone
ENTRY_KEYS = ("type", "severity", "channel", "assignee", "department", "skill", "region", "created_at")  # on each event


class CaseEngine:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: CasesConfig, tickets: ComplaintTickets,
                 chats: ChatStore, agents: AgentStore, metrics: Metrics | None = None,
                 profile_of: ProfileOf | None = None) -> None:  # fmt: skip
        self.config = config
        self.store = CaseStore(redis, keys)
        self.timers = CaseTimers(redis, keys)
        self.tickets = tickets
        self.chats = chats
        self.agents = agents
        self.metrics = metrics
        self.profile_of = profile_of
        self.listeners: list[Listener] = []
        self.on_stage: list[Callable[[dict[str, Any], str, str], Awaitable[None]]] = []  # case, to, reply text
        self.visit: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # the follow-up visit, when due

    # ---- registration ----------------------------------------------------------------------------------
    async def register(self, request: HandoffRequest, *, source: str, by_kind: str, by: str,
                       chat: str | None = None) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """A complaint: ``(case, False)`` when registered now, ``(open case, True)`` when linked to the customer's
        open case. ``source`` is where it came from (bot, agent, forum, callback …)."""
        owner = model.owner_of(request.phone, request.channel, request.sender)
        open_ticket = await self.store.open_case(owner)
        if open_ticket:
            linked = await self._link(open_ticket, request, source, by_kind, by, chat)
            if linked is not None:
                return linked, True
        now = time.time()
        kind = request.complaint_type if request.complaint_type in TYPES else "other"
        facts = await self._facts(request.phone, request.lang)
        repeats = await self.store.count_since(owner, now - self.config.severity.repeat_days * 86400)
        severity = self.severity(kind, request.urgency, request.text, facts.get("tier"), repeats)
        ticket = await self.tickets.number("TS")
        clocks = {name: self.config.clock(name, kind, severity) for name in CLOCKS}
        fields: dict[str, Any] = {
            "ticket": ticket, "status": "registered", "source": source, "owner": owner, "channel": request.channel,
            "sender": request.sender, "phone": request.phone or "", "lang": request.lang, "summary": request.text,
            "conversation": request.conversation_id, "type": kind, "severity": "", "urgency": request.urgency,
            "created_at": now, "updated_at": now, "escalation": 0, "reopens": 0, "chats": [chat] if chat else [],
            "linked": [], "first_response_due": now + clocks["first_response"].due,
            "solution_due": now + clocks["solution"].due, "registered_by": f"{by_kind}:{by}",
        }  # fmt: skip
        entry = self._entry(fields, "", "registered", by_kind, by, now, source=source)
        made, which = await self.store.create(ticket, owner, fields, entry)
        if not made:  # another registration of this customer came first: link to it
            linked = await self._link(which, request, source, by_kind, by, chat)
            if linked is not None:
                return linked, True
        await self.timers.schedule(ticket, "intake", "check", now + INTAKE_CHECK)  # should this process die now
        for name, clock in clocks.items():
            await self._schedule(ticket, name, fields[f"{name}_due"], clock.warn_before)
        await self._emit(entry)
        case = await self._intake(await self.store.get(ticket), facts, repeats)
        await self.timers.cancel(ticket, "intake", ("check",))
        return case, False

    async def _intake(self, case: dict[str, Any], facts: dict[str, Any] | None = None,
                      repeats: int | None = None) -> dict[str, Any]:  # fmt: skip
        """The system's analysis and dispatch of a registered case (again, by the worker, for a case a process
        registered but died before it had analysed or dispatched it)."""
        if case["status"] == "registered":
            if facts is None:
                facts = await self._facts(case.get("phone") or None, case.get("lang") or "zh")
            if repeats is None:
                since = case["created_at"] - self.config.severity.repeat_days * 86400
                repeats = max(0, await self.store.count_since(case["owner"], since) - 1)
            severity = self.severity(case["type"], int(case.get("urgency") or 0), case.get("summary") or "",
                                     facts.get("tier"), repeats)  # fmt: skip
            case = await self._move(case, "analysed", "system", "analysis", severity=severity, facts=facts,
                                    region=facts.get("district") or "", repeats=repeats)  # fmt: skip
        if case["status"] == "analysed":
            case = await self.dispatch(case, "system", "dispatch")
        return case

    async def _link(self, ticket: str, request: HandoffRequest, source: str, by_kind: str, by: str,
                    chat: str | None) -> dict[str, Any] | None:  # fmt: skip
        case = await self.store.find(ticket)
        if case is None:
            return None
        link = {"at": time.time(), "channel": request.channel, "source": source, "text": request.text,
                "conversation": request.conversation_id}  # fmt: skip
        chats = list(case.get("chats") or [])
        if chat and chat not in chats:
            chats.append(chat)
        await self.store.update(ticket, linked=[*case.get("linked", []), link][-50:], chats=chats)
        await self.record(case, "linked", by_kind, by, source=source, text=request.text, channel=request.channel)
        return await self.store.get(ticket)

    async def _facts(self, phone: str | None, lang: str) -> dict[str, Any]:
        """The customer's account as the back end knows it (tier, plan, district, name); ``{}`` without a number,
        ``{"unavailable": True}`` when the back end does not answer."""
        if not phone or self.profile_of is None:
            return {}
        try:
            return dict(await self.profile_of(phone, lang))
        except Exception as exc:
            log.warning("case analysis: the back end did not answer (%s)", type(exc).__name__)
            return {"unavailable": True}

    def severity(self, kind: str, urgency: int, text: str, tier: str | None, repeats: int) -> str:
        s = self.config.severity
        lowered = text.lower()
        if urgency >= s.high_urgency or (tier and tier in s.high_tiers) or repeats >= s.high_repeats \
                or any(w and w in lowered for w in s.high_words):  # fmt: skip
            return "high"
        return "low" if kind in s.low_types else s.default

    # ---- dispatch ------------------------------------------------------------------------------------------
    async def responsible(self, department_id: str) -> str:
        """The department's agent with the fewest unresolved cases (its listed agents, else every agent with its
        skill); its supervisor when it has no agent."""
        dept = self.config.departments[department_id]
        everyone = {a.name: a for a in await self.agents.all()}
        names = [n for n in dept.agents if n in everyone] or [
            a.name for a in everyone.values() if a.role == "agent" and a.serves((dept.skill,))]  # fmt: skip
        if not names:
            return dept.supervisor
        loads = [(await self.store.load(n), i, n) for i, n in enumerate(names)]
        return min(loads)[2]

    async def dispatch(self, case: dict[str, Any], by_kind: str, by: str, assignee: str | None = None,
                       note: str = "") -> dict[str, Any]:  # fmt: skip
        dept = self.config.department(case["type"], case.get("region"))
        who = assignee or (case.get("assignee") if case["status"] == "reopened" else None)
        who = who or await self.responsible(dept.id)
        await self.store.assign(case["ticket"], case.get("assignee") or "", who)
        case = {**case, "assignee": who}
        return await self._move(case, "dispatched", by_kind, by, note=note, department=dept.id, skill=dept.skill,
                                supervisor=dept.supervisor, head=dept.head)  # fmt: skip

    # ---- transitions ----------------------------------------------------------------------------------------
    async def transition(self, ticket: str, to: str, by_kind: str, by: str, *, agent: Agent | None = None,
                         note: str = "", reply: str = "", assignee: str | None = None) -> dict[str, Any]:  # fmt: skip
        case = await self.store.get(ticket)
        if agent is not None and not (agent.supervises or case.get("assignee") == agent.name):
            raise Forbidden("this case is not yours", zh="这不是您负责的投诉单")
        if to == "dispatched":
            model.check(case["status"], to, resolved_at=case.get("resolved_at"), now=time.time(),
                        reopen_window=self.config.reopen_window)  # fmt: skip
            return await self.dispatch(case, by_kind, by, assignee, note)
        return await self._move(case, to, by_kind, by, note=note, reply=reply)

    async def _move(self, case: dict[str, Any], to: str, by_kind: str, by: str, *, note: str = "", reply: str = "",
                    **fields: Any) -> dict[str, Any]:  # fmt: skip
        for _ in range(5):
            now = time.time()
            model.check(case["status"], to, resolved_at=case.get("resolved_at"), now=now,
                        reopen_window=self.config.reopen_window)  # fmt: skip
            extra, open_action = dict(fields), ""
            met = model.MEETS.get(to)
            if met and not case.get(f"{met}_at"):
                extra[f"{met}_at"] = now
            if to == "replied" and not case.get("first_response_at"):
                extra["first_response_at"] = now
            if to == "resolved":
                extra["resolved_at"], open_action = now, "del"
            elif to == "closed":
                extra["closed_at"] = now
            elif to == "reopened":
                clock = self.config.clock("solution", case["type"], case.get("severity") or "medium")
                extra.update(reopens=int(case.get("reopens") or 0) + 1, solution_at="", solution_due=now + clock.due,
                             escalation=0)  # fmt: skip
                open_action = "set"
            merged = {**case, **extra, "status": to}
            entry = self._entry(merged, case["status"], to, by_kind, by, now, note=note, reply=reply)
            got = await self.store.move(case, to, entry, now, open_action, **extra)
            if got == "ok":
                break
            case = await self.store.get(case["ticket"])  # another transition came first: judge again
        else:
            raise model.TransitionRefused("the case keeps changing; try again", zh="投诉单正在被修改，请重试",
                                          allowed=())  # fmt: skip
        ticket = case["ticket"]
        if met:
            await self.timers.cancel(ticket, met)
        if to == "replied":
            await self.timers.cancel(ticket, "first_response")
        if to == "reopened":
            await self.timers.cancel(ticket, "followup", ("visit",))
            clock = self.config.clock("solution", case["type"], case.get("severity") or "medium")
            await self._schedule(ticket, "solution", extra["solution_due"], clock.warn_before)
        await self._emit(entry)
        updated = await self.store.get(ticket)
        for hook in self.on_stage:  # the customer's side: notices, the follow-up visit
            await hook(updated, to, reply)
        await self.chats.publish({"type": "case_changed", "ticket": ticket, "status": to},
                                 to=[n for n in (updated.get("assignee"), "supervisors") if n])  # fmt: skip
        return await self.store.get(ticket) if self.on_stage else updated

    async def note(self, agent: Agent, ticket: str, text: str) -> dict[str, Any]:
        case = await self.store.get(ticket)
        if not (agent.supervises or case.get("assignee") == agent.name):
            raise Forbidden("this case is not yours", zh="这不是您负责的投诉单")
        note = {"at": time.time(), "agent": agent.name, "display_name": agent.display_name, "text": text}
        await self.store.add_note(ticket, note)
        return note

    async def link_chat(self, ticket: str, chat_id: str) -> None:
        case = await self.store.find(ticket)
        if case is not None and chat_id not in (case.get("chats") or []):
            await self.store.update(ticket, chats=[*(case.get("chats") or []), chat_id])

    # ---- clocks ---------------------------------------------------------------------------------------------
    async def _schedule(self, ticket: str, clock: str, due: float, warn_before: float) -> None:
        if warn_before > 0:
            await self.timers.schedule(ticket, clock, "warn", due - warn_before)
        await self.timers.schedule(ticket, clock, "breach", due)

    async def fire(self, ticket: str, clock: str, stage: str, due: float) -> None:
        """A case timer is due (claimed by this process): warn, escalate, or start the follow-up visit."""
        case = await self.store.find(ticket)
        if case is None or (clock in CLOCKS and case.get(f"{clock}_at")):
            return  # gone, or the clock was met meanwhile
        if stage == "warn" and clock in CLOCKS and time.time() >= float(case.get(f"{clock}_due") or 0):
            return  # fired late (its claim was lost with a process): the breach comes instead
        # once per scheduled time: the case's own due time of the clock (the timers' score moves a lease ahead with
        # each claim, so a process slower than the lease would otherwise fire again under another mark)
        scheduled = float(case.get(f"{clock}_due") or due)
        mark = f"fired:{clock}:{stage}:{scheduled:.3f}"
        if not await self.store.redis.hsetnx(self.store.keys.case(ticket), mark, time.time()):
            return  # a process that died after doing this left the timer to fire again: done already
        if clock == "followup":
            if self.visit is not None and case["status"] == "resolved":
                await self.visit(case)
            return
        if clock == "intake":
            await self._intake(case)
            return
        dept = self.config.departments.get(case.get("department") or "")
        supervisor, head = (dept.supervisor, dept.head) if dept else ("", "")
        due_at = case.get(f"{clock}_due")
        if stage == "warn":
            await self.record(case, "sla_warning", "system", "clock", clock=clock, due_at=due_at)
            to = [case.get("assignee") or "", "supervisors"]
        elif stage == "breach":
            if self.metrics is not None:
                self.metrics.sla_breaches.labels(f"case_{clock}").inc()
            await self.record(case, "sla_breach", "system", "clock", clock=clock, due_at=due_at)
            await self.store.update(ticket, escalation=max(1, int(case.get("escalation") or 0)),
                                    escalated_to=supervisor)  # fmt: skip
            await self.record(case, "escalated", "system", "clock", clock=clock, level=1, to=supervisor)
            clock_cfg = self.config.clock(clock, case["type"], case.get("severity") or "medium")
            await self.timers.schedule(ticket, clock, "head", due + clock_cfg.head_after)
            to = [case.get("assignee") or "", supervisor, "supervisors"]
        else:  # head: still not met long after the breach
            await self.store.update(ticket, escalation=2, escalated_to=head)
            await self.record(case, "escalated", "system", "clock", clock=clock, level=2, to=head)
            to = [head, supervisor, "supervisors"]
        await self.chats.publish({"type": "case_alert", "ticket": ticket, "clock": clock, "stage": stage,
                                  "due_at": due_at}, to=[n for n in dict.fromkeys(to) if n])  # fmt: skip

    # ---- events -------------------------------------------------------------------------------------------
    def _entry(self, case: dict[str, Any], frm: str, to: str, by_kind: str, by: str, at: float,
               **more: Any) -> dict[str, Any]:  # fmt: skip
        entry = {"kind": "transition", "ticket": case["ticket"], "from": frm, "to": to, "at": at, "by_kind": by_kind,
                 "by": by, **{k: case.get(k) or "" for k in ENTRY_KEYS}}  # fmt: skip
        entry.update({k: v for k, v in more.items() if v not in (None, "")})
        return entry

    async def record(self, case: dict[str, Any], event: str, by_kind: str, by: str, **more: Any) -> dict[str, Any]:
        """A non-transition event in the case's history (and on the reports' stream)."""
        entry = {"kind": "event", "event": event, "ticket": case["ticket"], "at": time.time(), "by_kind": by_kind,
                 "by": by, "stage": case.get("status"), **{k: case.get(k) or "" for k in ENTRY_KEYS},
                 **more}  # fmt: skip
        await self.store.record(case["ticket"], entry)
        await self._emit(entry)
        return entry

    async def _emit(self, entry: dict[str, Any]) -> None:
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                await listener(entry)
