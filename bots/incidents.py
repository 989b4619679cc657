"""What the bots need to know of major incidents (seed ch. 7), as an interface the human side fills in
(``handoff.incidents.desk.Desk``): which incident affects a district now, and the few writes an answer makes.

``active`` and ``affecting`` read an in-process cache (refreshed on every change through Redis pub/sub, and every few
seconds): a turn asks them at no cost, and when no incident is active nothing else is asked. ``observe`` counts a
network question or complaint for the early-warning detector in process memory (flushed to Redis in batches).
The answers themselves are in ``bots.incident_notice``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bots.ports import HandoffRequest


@dataclass(frozen=True, slots=True)
class ActiveIncident:
    id: str
    category: str
    severity: int
    districts: tuple[str, ...]
    services: tuple[str, ...]  # empty: every service
    eta: float | None  # estimated recovery, epoch seconds
    notice: dict[str, str] = field(default_factory=dict)  # lang → the supervisors' own text (else the template's)
    updated_at: float = 0.0


class IncidentDesk(Protocol):
    network_intents: tuple[str, ...]  # questions answered with the notice (besides network complaints)

    @property
    def active(self) -> bool:
        """Any incident customers are told of now (no I/O)."""
        ...

    def affecting(self, district: str, service: str | None = None) -> ActiveIncident | None:
        """The most severe active incident in ``district`` (touching ``service``, if named); no I/O."""
        ...

    def get(self, incident_id: str) -> ActiveIncident | None:
        """An active incident by id (no I/O)."""
        ...

    def observe(self, district: str, channel: str, kind: str, text: str) -> None:
        """A network complaint (``complaint``) or question (``network_status``), for the detector (no I/O)."""
        ...

    async def told(self, incident_id: str, conversation_id: str, channel: str, district: str = "",
                   urgency: int = 0) -> None:  # fmt: skip
        """The conversation (in ``district``; its message's urgency 0–3, for the sentiment) was given the notice."""
        ...

    async def told_of(self, conversation_id: str) -> str | None:
        """The incident this conversation was told of, if any."""
        ...

    async def protect(self, incident_id: str, conversation_id: str, channel: str) -> bool:
        """A request for a person during the incident: ``True`` the first time (answer with the notice instead),
        ``False`` when the customer asks again within the insist window (they join the queue)."""
        ...

    async def link_complaint(self, incident_id: str, request: HandoffRequest, district: str) -> tuple[int, bool]:
        """The customer's network complaint linked to the incident: ``(their complaints so far, first time)``."""
        ...
