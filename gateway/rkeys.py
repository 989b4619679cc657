"""Every Redis key name in one place, with its TTL. Hash tags ({…}) keep one conversation's or
one visitor's keys in one Redis Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass

DEDUPE_PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "gw:"

    def dedupe(self, channel: str, message_id: str) -> str:
        """SET NX EX dedupe_ttl: "pending" while handled, then the stored replies (JSON)."""
        return f"{self.prefix}dedupe:{channel}:{message_id}"

    def active_conversation(self, channel: str, sender: str) -> str:
        """The sender's current conversation id; EX conversation_idle_timeout, refreshed per message."""
        return f"{self.prefix}{{sender:{channel}:{sender}}}:conv"

    def ticket(self, channel: str, sender: str) -> str:
        """INCR on arrival: the message's place in the sender's order (no TTL needed: tiny)."""
        return f"{self.prefix}{{sender:{channel}:{sender}}}:ticket"

    def served(self, channel: str, sender: str) -> str:
        """The last ticket whose turn finished."""
        return f"{self.prefix}{{sender:{channel}:{sender}}}:served"

    def conversation(self, conversation_id: str) -> str:
        """Hash: channel, sender, started_at, last_at, lang, state fields of the bots."""
        return f"{self.prefix}{{conv:{conversation_id}}}:meta"

    def conversation_log(self, conversation_id: str) -> str:
        """Stream: one entry per customer message, reply and event."""
        return f"{self.prefix}{{conv:{conversation_id}}}:log"

    def visitor_outbox(self, visitor: str) -> str:
        """Stream of frames for a web chat visitor, replayed after a reconnect (MAXLEN replay_limit)."""
        return f"{self.prefix}{{visitor:{visitor}}}:out"

    def visitor_seq(self, visitor: str) -> str:
        return f"{self.prefix}{{visitor:{visitor}}}:seq"

    def visitor_channel(self, visitor: str) -> str:
        """Pub/sub channel: live fan-out of the outbox to whichever process holds the WebSocket."""
        return f"{self.prefix}live:visitor:{visitor}"

    def recorded_requests(self) -> str:
        """Stream of human-follow-up requests recorded before the handoff queue exists."""
        return f"{self.prefix}followups"
