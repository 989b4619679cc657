"""A conversation's bot state, kept in Redis with the sender's state (field ``bot``, JSON).

Any gateway process can continue any conversation: the accept script returns this with the
ticket, the finish script writes it back with the turn. ``rev`` counts writes, so an answer that
arrives after the deadline only lands when nothing else changed the state in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import orjson


class FlowId(StrEnum):
    """A flow's name as stored in Redis with a question (``Slot.flow``) or a confirmation
    (``Pending.flow``). Conversations in progress carry these strings across an upgrade, so a value
    never changes, whatever the flow's module is called; a new flow adds a member."""

    BALANCE = "balance"
    BILL = "bill"
    BINDING = "binding"
    BROADBAND = "broadband"
    CHANGE_PLAN = "change_plan"
    COMPLAINT = "complaint"
    COMPLAINT_STATUS = "complaint_status"
    DATA_USAGE = "data_usage"
    HUMAN = "human"
    NETWORK = "network"
    PLAN = "plan"
    PORTING = "porting"
    RECHARGE = "recharge"
    ROAMING = "roaming"
    SIM = "sim"
    SMALLTALK = "smalltalk"
    STORES = "stores"
    SURVEY = "survey"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(slots=True)
class Slot:
    """A question the bot asked and waits for: ``flow`` continues with the answer."""

    flow: FlowId
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    tries: int = 0


@dataclass(slots=True)
class Pending:
    """An action that needs the customer's explicit "yes" before ``expires`` (epoch seconds)."""

    id: str
    flow: FlowId
    action: str
    args: dict[str, Any]
    expires: float


@dataclass(slots=True)
class BotState:
    conv: str = ""
    slot: Slot | None = None
    pending: Pending | None = None
    options: list[list[str]] = field(default_factory=list)  # [title, payload] of the last quick replies
    misses: int = 0  # NLU fallbacks in a row
    human_offered: bool = False
    rev: int = 0

    def to_json(self) -> bytes:
        data: dict[str, Any] = {"conv": self.conv, "options": self.options, "misses": self.misses,
                                "human_offered": self.human_offered, "rev": self.rev}  # fmt: skip
        if self.slot:
            data["slot"] = {"flow": self.slot.flow, "name": self.slot.name, "data": self.slot.data,
                            "tries": self.slot.tries}  # fmt: skip
        if self.pending:
            p = self.pending
            data["pending"] = {"id": p.id, "flow": p.flow, "action": p.action, "args": p.args, "expires": p.expires}
        return orjson.dumps(data)

    @classmethod
    def load(cls, raw: bytes | str | None, conversation_id: str) -> BotState:
        """The stored state of this conversation; a fresh one for a new conversation."""
        if not raw:
            return cls(conv=conversation_id)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return cls(conv=conversation_id)
        if data.get("conv") != conversation_id:
            return cls(conv=conversation_id, rev=int(data.get("rev", 0)))
        slot = _known(Slot, data.get("slot"))
        pending = _known(Pending, data.get("pending"))
        return cls(conversation_id, slot, pending, data.get("options", []), int(data.get("misses", 0)),
                   bool(data.get("human_offered")), int(data.get("rev", 0)))  # fmt: skip


_T = TypeVar("_T", Slot, Pending)


def _known(kind: type[_T], data: dict[str, Any] | None) -> _T | None:
    """A stored question or confirmation; None when there is none, or when its flow no longer exists (the
    conversation goes on as if nothing were pending)."""
    if not data:
        return None
    try:
        return kind(**{**data, "flow": FlowId(data["flow"])})
    except (KeyError, TypeError, ValueError):
        return None
