"""The message model shared by every channel: frozen, slotted, stored as JSON (never pickle)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: str
    conversation_id: str  # channel-scoped sender key until the pipeline assigns the conversation
    sender_id: str
    text: str
    message_id: str  # the provider's id, used for de-duplication
    received_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    phone: str | None = field(default=None, repr=False)  # proven identity, when the channel has one
    lang: str | None = None  # the customer's chosen UI language, if the channel knows it
    # what the channel tells the core about this message (typed; ``metadata`` keeps the provider's extras)
    command: str | None = field(default=None, kw_only=True)  # a channel command, or "/intent" a keyword names
    reply_lang: str | None = field(default=None, kw_only=True)  # the command's own language (SMS "HELP": en)
    display: str | None = field(default=None, kw_only=True)  # what the transcript shows (a button's title)
    public: bool = field(default=False, kw_only=True)  # the answer is seen by everyone (a forum post)
    issue_session: bool = field(default=False, kw_only=True)  # the sender is the client's own string (REST)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    channel: str
    recipient_id: str
    text: str
    conversation_id: str
    buttons: tuple[Button, ...] = ()
    sender: str = "bot"  # bot | agent | system
    agent: str | None = None
    kind: str = "message"  # message | queued | agent_joined | agent_left | typing
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # extra frame fields, e.g. queue position
    private: bool = False  # for the customer alone, on a public channel (a forum's private message)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "from": self.sender, "text": self.text}
        if self.buttons:
            out["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.agent:
            out["agent"] = self.agent
        out.update(self.meta)
        return out

    def to_rasa(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recipient_id": self.recipient_id, "text": self.text}
        if self.buttons:
            out["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        return out


@dataclass(frozen=True, slots=True)
class Turn:
    """What one handled message produced, appended to the conversation's log."""

    conversation_id: str
    replies: tuple[OutboundMessage, ...]
    intent: str | None
    lang: str = "zh"
    duplicate: bool = False
    timed_out: bool = False
    session: str | None = field(default=None, repr=False)  # a REST binding session issued in this turn
