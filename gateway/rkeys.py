"""Every Redis key name in one place, with its TTL. Hash tags ({…}) keep one conversation's or
one visitor's keys in one Redis Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass

DEDUPE_PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "gw:"

    def dedupe(self, channel: str, sender: str, message_id: str) -> str:
        """SET NX EX dedupe_ttl: "pending" while handled, then the stored replies (JSON).
        Tagged with the sender so the accept script touches one Cluster slot."""
        return f"{self.prefix}{{sender:{channel}:{sender}}}:dedupe:{message_id}"

    def sender(self, channel: str, sender: str) -> str:
        """Hash: conv (current conversation id), started, last (activity time), ticket (INCR on
        arrival), served (last ticket whose turn finished). EX conversation_idle_timeout + 1 day."""
        return f"{self.prefix}{{sender:{channel}:{sender}}}:state"

    def conversation(self, conversation_id: str) -> str:
        """Hash: channel, sender, started_at, log (the log's key): find a conversation by id."""
        return f"{self.prefix}{{conv:{conversation_id}}}:meta"

    def conversation_log(self, channel: str, sender: str, conversation_id: str) -> str:
        """Stream: one entry per customer message, reply and event, each a JSON field ``e``.
        Tagged with the sender so a turn's whole write is one script in one Cluster slot."""
        return f"{self.prefix}{{sender:{channel}:{sender}}}:log:{conversation_id}"

    def visitor_outbox(self, visitor: str) -> str:
        """Stream of frames for a web chat visitor, replayed after a reconnect (MAXLEN replay_limit)."""
        return f"{self.prefix}{{visitor:{visitor}}}:out"

    def visitor_seq(self, visitor: str) -> str:
        return f"{self.prefix}{{visitor:{visitor}}}:seq"

    def visitor_channel(self, visitor: str) -> str:
        """Pub/sub channel: live fan-out of the outbox to whichever process holds the WebSocket."""
        return f"{self.prefix}live:visitor:{visitor}"
