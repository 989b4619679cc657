"""What a turn leaves behind: its entries in the conversation's log (numbers masked) and the replies kept for
duplicates and late delivery, in their stored form."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gateway.models import Button, InboundMessage, OutboundMessage
from gateway.privacy import mask_text
from nlu import ParseResult


def log_entries(
    msg: InboundMessage, result: ParseResult | None, replies: Sequence[OutboundMessage],
    events: Sequence[dict[str, Any]], seconds: float, ticket: int, seal: Callable[[bytes], bytes] | None = None,
) -> list[bytes]:  # fmt: skip
    """The turn's entries for the conversation log: the customer's message (phone and ID
    numbers masked) with its NLU labels, the bot's events, then each reply with the turn's time — each sealed
    with ``seal`` (``Keys.seal_bytes``: encrypted at rest) when it is given."""
    nlu = None
    if result:
        nlu = {"intent": result.intent, "confidence": round(result.confidence, 4),
               "complaint_type": result.complaint_type, "lang": result.lang, "urgency": result.urgency}  # fmt: skip
    customer = {"kind": "customer", "channel": msg.channel, "message_id": msg.message_id, "ticket": ticket,
                "text": mask_text(msg.text, result.entities if result else ()), "nlu": nlu,
                "at": msg.received_at}  # fmt: skip
    if msg.display and msg.display != msg.text:  # a button's title: what the customer clicked, for the console
        customer["display"] = mask_text(msg.display, ())
    now = time.time()
    entries = [orjson.dumps(customer)]
    entries.extend(orjson.dumps({**e, "at": now}) for e in events)
    for reply in replies:
        entry = {"kind": reply.sender, "text": mask_text(reply.text, ()), "buttons": [b.title for b in reply.buttons],
                 "seconds": round(seconds, 4), "at": now}  # fmt: skip
        entries.append(orjson.dumps(entry))
    return entries if seal is None else [seal(e) for e in entries]


def out_dict(out: OutboundMessage) -> dict[str, object]:
    buttons = [[b.title, b.payload] for b in out.buttons]
    data: dict[str, object] = {"text": out.text, "buttons": buttons, "from": out.sender}
    if out.private:
        data["private"] = True
    return data


def out_from_dict(data: dict[str, object], msg: InboundMessage, conversation: str) -> OutboundMessage:
    buttons = tuple(Button(str(t), str(p)) for t, p in data.get("buttons", []))  # type: ignore[misc, union-attr]
    return OutboundMessage(msg.channel, msg.sender_id, str(data["text"]), conversation, buttons,
                           str(data.get("from", "bot")), private=bool(data.get("private")))  # fmt: skip
