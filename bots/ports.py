"""What the bots need from the rest of the system, as interfaces the gateway fills in.

* ``Handoff`` — hand a conversation to people: a request for a human, a complaint ticket, the
  customer's complaints. ``handoff.service.HandoffService`` implements it.
* ``SmsSender`` — texts that are not replies (one-time codes). The embedded default logs them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.privacy import mask_phone

log = logging.getLogger("gateway.sms")


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    conversation_id: str
    channel: str
    sender: str
    phone: str | None
    reason: str  # request_human | complaint | fallback | urgent | deadline | backend_error
    lang: str
    text: str  # the customer's last message, numbers masked
    urgency: int = 0
    complaint_type: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, slots=True)
class HandoffResult:
    status: str  # recorded (no live queue yet) | queued | connecting (an agent takes it now) | closed | no_agents
    request_id: str
    position: int | None = None
    wait_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Complaint:
    ticket: str
    complaint_type: str
    status: str  # registered analysed dispatched in_progress replied resolved followed_up closed reopened
    created_at: float
    first_response_due: float
    solution_due: float
    summary: str = ""
    history: tuple[tuple[float, str], ...] = field(default_factory=tuple)
    linked: bool = False  # the customer's open case, which this complaint was added to (not registered again)
    next_promise: str = ""  # first_response | solution | followup | "" (nothing pending)
    next_due: float | None = None  # when ``next_promise`` is due
    followup_pending: bool = False  # the follow-up visit waits for the customer's answer


class Handoff(Protocol):
    def wants_human(self, reason: str, complaint_type: str | None, urgency: int, tier: str) -> bool:
        """Whether this (a complaint of a type, an urgent message, a VIP's misunderstanding) goes to people."""
        ...

    async def request_human(self, request: HandoffRequest) -> HandoffResult: ...

    async def leave_message(self, request_id: str, channel: str, sender: str, phone: str | None, text: str) -> bool:
        """The customer's message for a callback (no agent available, or outside service hours); ``False`` when
        that task is no longer open (an agent handled it): nothing stored, the message is a new one."""
        ...

    async def record_survey(self, conversation_id: str, score: int, comment: str | None) -> None: ...

    async def register_complaint(self, request: HandoffRequest) -> Complaint: ...

    async def complaints(self, phone: str | None, channel: str, sender: str) -> list[Complaint]: ...

    async def followup_answer(self, ticket: str, channel: str, sender: str, answer: dict[str, Any]) -> Complaint | None:
        """The customer's answer in a case's follow-up visit (``solved``, ``score`` or ``comment``); ``None`` when no
        visit of that case waits for this customer."""
        ...


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class ConsoleSms:
    """The embedded default: one-time codes go to the gateway's console (numbers masked)."""

    async def send(self, phone: str, text: str) -> None:
        log.warning("SMS to %s (demo: not sent, shown here): %s", mask_phone(phone), text)
