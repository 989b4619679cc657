"""The customer's side of a case, always on the customer's own channel (``handoff.ports.Customers``):

* the bots' ``complaint_status`` — each case's real stage and the next time promised (first response, solution,
  follow-up visit);
* notices at ``replied`` and ``resolved`` (with what the agent wrote for the customer, if anything);
* the follow-up visit (回访) after resolution: was it solved (1 yes / 2 no)? then the satisfaction — five levels on
  the 100-point scale (100, 80, 60, 40, 20) — and a comment. "Not solved" reopens the case (within the window);
  the answer completes the visit (``followed_up``). The customer's answers come back through the bot
  (``complaint_status``'s questions ``fu_solved``, ``fu_score``, ``fu_comment``), checked against the one visit
  that waits for this customer."""

from __future__ import annotations

import json
import time
from typing import Any

from bots.ports import Complaint
from gateway.errors import Conflict
from gateway.models import Button, OutboundMessage
from gateway.rkeys import CASE_FOLLOWUP_TTL
from handoff.cases import model
from handoff.cases.service import CaseEngine
from handoff.ports import Customers, Texts

TEMPLATE = "complaint_status"
FLOW = "complaint_status"  # the bot flow that takes the visit's answers (bots.state.FlowId.COMPLAINT_STATUS)
LEVELS = ((100, "very_satisfied"), (80, "satisfied"), (60, "neutral"), (40, "dissatisfied"), (20, "very_dissatisfied"))


def payload(**values: Any) -> str:
    """A quick reply that reaches ``complaint_status`` with these entities, whatever the bot was doing."""
    return "/complaint_status" + json.dumps(values, ensure_ascii=False, separators=(",", ":"))


class CustomerSide:
    def __init__(self, engine: CaseEngine, renderer: Texts, customers: Customers) -> None:
        self.engine = engine
        self.store = engine.store
        self.renderer = renderer
        self.customers = customers
        engine.on_stage.append(self.stage_changed)
        engine.visit = self.visit

    def text(self, case: dict[str, Any], macro: str, **args: Any) -> str:
        return self.renderer.text(TEMPLATE, macro, case.get("lang") or "zh", case["channel"], **args)

    async def tell(self, case: dict[str, Any], text: str, buttons: tuple[Button, ...] = ()) -> None:
        await self.customers.deliver(
            OutboundMessage(case["channel"], case["sender"], text, case.get("conversation") or "", buttons)
        )  # as the bot's

    # ---- notices ------------------------------------------------------------------------------------------
    async def stage_changed(self, case: dict[str, Any], to: str, reply: str) -> None:
        if to == "replied":
            await self.tell(case, self.text(case, "notice_replied", ticket=case["ticket"], reply=reply))
        elif to == "resolved":
            await self.tell(case, self.text(case, "notice_resolved", ticket=case["ticket"], reply=reply))
            due = time.time() + self.engine.config.followup_delay
            await self.engine.timers.schedule(case["ticket"], "followup", "visit", due)
            await self.store.update(case["ticket"], followup_due=due, followup={})  # an earlier visit: in the history

    # ---- the follow-up visit --------------------------------------------------------------------------------
    async def visit(self, case: dict[str, Any]) -> None:
        """Ask the customer, on their channel, whether the complaint was solved (the case stays ``resolved``)."""
        ticket, lang = case["ticket"], case.get("lang") or "zh"
        key = self.store.keys.case_followup(case["channel"], case["sender"])
        await self.store.redis.set(key, ticket, ex=CASE_FOLLOWUP_TTL)
        await self.customers.await_answer(case["channel"], case["sender"], FLOW, "fu_solved", {"ticket": ticket})
        buttons = (Button(self.text(case, "solved_label"), payload(ticket=ticket, solved="yes")),
                   Button(self.text(case, "unsolved_label"), payload(ticket=ticket, solved="no")))  # fmt: skip
        await self.tell(case, self.text(case, "followup_ask", ticket=ticket), buttons)
        await self.store.update(ticket, followup={"asked_at": time.time(), "lang": lang})
        await self.engine.record(case, "followup_asked", "system", "followup", channel=case["channel"])

    async def answer(self, ticket: str, channel: str, sender: str, answer: dict[str, Any]) -> Complaint | None:
        """One answer of the visit from the customer (``solved``: bool, ``score``: 20–100, ``comment``: str or
        None to skip it — the last step). ``None`` when no visit of this case waits for this customer."""
        key = self.store.keys.case_followup(channel, sender)
        waiting = await self.store.redis.get(key)
        if waiting is None or waiting.decode() != ticket:
            return None
        case = await self.store.get(ticket)
        followup = dict(case.get("followup") or {})
        if "solved" in answer:
            followup["solved"] = bool(answer["solved"])
            await self.store.update(ticket, followup=followup)
            if not answer["solved"]:
                await self.store.redis.delete(key)
                await self._result(case, followup)
                try:
                    case = await self.engine.transition(ticket, "reopened", "bot", "followup",
                                                        note="customer: not solved (follow-up visit)")  # fmt: skip
                except Conflict:  # past the window (or closed meanwhile): an agent decides
                    await self.engine.record(case, "reopen_refused", "bot", "followup")
                return self.complaint(await self.store.get(ticket))
        if "score" in answer:
            score = int(answer["score"])
            followup.update(score=score, level=next(name for value, name in LEVELS if value == score))
            await self.store.update(ticket, followup=followup)
        if "comment" in answer:
            followup["comment"] = (answer["comment"] or "")[:500]
            followup["answered_at"] = time.time()
            await self.store.update(ticket, followup=followup)
            await self.store.redis.delete(key)
            await self._result(case, followup)
            if case["status"] == "resolved":
                case = await self.engine.transition(ticket, "followed_up", "bot", "followup")
        return self.complaint(await self.store.get(ticket))

    async def _result(self, case: dict[str, Any], followup: dict[str, Any]) -> None:
        """The visit's result for reports: solved, score and level, comment (satisfaction with the handling)."""
        await self.engine.record(case, "followup", "bot", "followup", solved=followup.get("solved"),
                                 score=followup.get("score"), level=followup.get("level"),
                                 comment=followup.get("comment", ""))  # fmt: skip

    async def waiting(self, channel: str, sender: str) -> str | None:
        ticket = await self.store.redis.get(self.store.keys.case_followup(channel, sender))
        return ticket.decode() if ticket else None

    # ---- the bots' complaint status ---------------------------------------------------------------------------
    async def complaints(self, phone: str | None, channel: str, sender: str) -> list[Complaint]:
        owners = list(dict.fromkeys([model.owner_of(phone, channel, sender), model.owner_of(None, channel, sender)]))
        tickets = await self.store.of_customer(owners)
        visit = await self.waiting(channel, sender)
        return [self.complaint(c, followup_pending=c["ticket"] == visit) for c in await self.store.many(tickets)]

    def complaint(self, case: dict[str, Any], linked: bool = False, followup_pending: bool = False) -> Complaint:
        promise, due = next_promise(case)
        return Complaint(case["ticket"], case["type"], case["status"], case["created_at"], case["first_response_due"],
                         case["solution_due"], case.get("summary") or "", ((case["created_at"], "registered"),),
                         linked=linked,
                         next_promise=promise, next_due=due, followup_pending=followup_pending)  # fmt: skip


def next_promise(case: dict[str, Any]) -> tuple[str, float | None]:
    """What the customer is promised next and by when: ``first_response`` (someone contacts them), ``solution``
    (a solution proposed), ``followup`` (the visit after resolution); ``("", None)`` when nothing is pending."""
    stage = case["status"]
    if stage in model.OPEN and not case.get("first_response_at"):
        return "first_response", case["first_response_due"]
    if stage in ("in_progress", "reopened", "dispatched") and not case.get("solution_at"):
        return "solution", case["solution_due"]
    if stage == "resolved" and case.get("followup_due") and not (case.get("followup") or {}).get("asked_at"):
        return "followup", float(case["followup_due"])  # (once asked, the visit's question itself is pending)
    return "", None
