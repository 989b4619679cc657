"""Every Redis key name in one place, with its TTL. Hash tags ({…}) keep one conversation's or
one visitor's keys in one Redis Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass


def _tag(channel: str, sender: str) -> str:
    """``{sender:<channel>:<sender>}``. A REST session's namespace (``<sender>~<hash>``, see gateway/security.py)
    keeps its sender's hash tag, so a binding made in the open conversation lands in the same Cluster slot."""
    base, tilde, rest = sender.partition("~")
    return f"{{sender:{channel}:{base}}}{tilde}{rest}"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "gw:"

    def server_key(self) -> str:
        """String: the key that signs web chat visitor ids when GATEWAY_SECRET_KEY is not set (made once,
        shared by every process of the deployment). No TTL."""
        return f"{self.prefix}server-key"

    def instance(self, instance: str) -> str:
        """String, EX 3 s, refreshed every second: a gateway process is alive (its turns are not taken over)."""
        return f"{self.prefix}instance:{instance}"

    def dedupe(self, channel: str, sender: str, message_id: str) -> str:
        """"pending:<instance>:<ticket>" while handled (EX: a turn's longest time), then the stored replies
        (JSON, EX dedupe_ttl).
        Tagged with the sender so the accept script touches one Cluster slot."""
        return f"{self.prefix}{_tag(channel, sender)}:dedupe:{message_id}"

    def sender(self, channel: str, sender: str) -> str:
        """Hash: conv (current conversation id), started, last (activity time), ticket (INCR on
        arrival), served (last ticket whose turn finished). EX conversation_idle_timeout + 1 day."""
        return f"{self.prefix}{_tag(channel, sender)}:state"

    def binding(self, channel: str, sender: str) -> str:
        """String: the phone number a social/forum account proved it owns (one-time code). EX binding_ttl."""
        return f"{self.prefix}{_tag(channel, sender)}:bind"

    def otp(self, channel: str, sender: str) -> str:
        """Hash: phone, salt, digest (SHA-1 of salt+code), attempts. EX otp_ttl (5 minutes)."""
        return f"{self.prefix}{_tag(channel, sender)}:otp"

    def otp_rate(self, phone: str) -> str:
        """String, SET NX EX otp_resend_after: one code per number per interval."""
        return f"{self.prefix}otp-rate:{phone}"

    def late(self, channel: str, sender: str) -> str:
        """List: answers that arrived after the deadline for a channel that cannot push (REST);
        delivered in front of the sender's next reply."""
        return f"{self.prefix}{_tag(channel, sender)}:late"

    def conversation(self, conversation_id: str) -> str:
        """Hash: channel, sender, started_at, log (the log's key): find a conversation by id."""
        return f"{self.prefix}{{conv:{conversation_id}}}:meta"

    def conversation_log(self, channel: str, sender: str, conversation_id: str) -> str:
        """Stream: one entry per customer message, reply and event, each a JSON field ``e``.
        Tagged with the sender so a turn's whole write is one script in one Cluster slot."""
        return f"{self.prefix}{_tag(channel, sender)}:log:{conversation_id}"

    def complaint(self, ticket: str) -> str:
        """Hash: a complaint ticket (type, status, owner, channel, text masked, due times, history JSON)."""
        return f"{self.prefix}{{complaint:{ticket}}}"

    def complaints_of(self, owner: str) -> str:
        """Sorted set: a customer's tickets by creation time; owner is ``phone:<number>`` or ``<channel>:<sender>``."""
        return f"{self.prefix}complaints-of:{owner}"

    def handoff_requests(self) -> str:
        """Stream: requests for a human and new complaints, for agents (until the live queue)."""
        return f"{self.prefix}handoff:requests"

    def counter(self, name: str) -> str:
        """Integer: daily sequence numbers of tickets and requests."""
        return f"{self.prefix}seq:{name}"

    # ---- handoff: one hash tag, so each handoff script touches one Redis Cluster slot ----------
    def hk(self, *parts: str) -> str:
        """A handoff key: ``{prefix}{handoff}:<parts>``. Agents: ``agent:<name>`` (hash: role, skills,
        capacity, password hash, demo), ``agents`` (set), ``agent:<name>:chats`` (set), ``presence:<name>``
        (hash: status, seen, conns); chats: ``chat:<conversation>`` (hash), ``queue`` (sorted set, score =
        entered − priority credit), ``timers`` (sorted set of SLA/presence timers by due time),
        ``breaches`` (list), ``callbacks`` (stream), ``surveys`` (stream), ``session:<id>`` (hash)."""
        return f"{self.prefix}{{handoff}}:" + ":".join(parts)

    def live_agents(self) -> str:
        """Pub/sub: every agent-side event, fanned out to whichever process holds the agent's WebSocket."""
        return f"{self.prefix}live:agents"

    def visitor_outbox(self, visitor: str) -> str:
        """Stream of frames for a web chat visitor, replayed after a reconnect (MAXLEN replay_limit)."""
        return f"{self.prefix}{{visitor:{visitor}}}:out"

    def visitor_seq(self, visitor: str) -> str:
        return f"{self.prefix}{{visitor:{visitor}}}:seq"

    def visitor_channel(self, visitor: str) -> str:
        """Pub/sub channel: live fan-out of the outbox to whichever process holds the WebSocket."""
        return f"{self.prefix}live:visitor:{visitor}"

    def login_account(self, name: str) -> str:
        """Hash: n (failed agent sign-ins in a row on this account name), until (locked until, epoch seconds).
        Deleted by a successful sign-in; EX 30 minutes after the last attempt."""
        return f"{self.prefix}{{login}}:account:{name}"

    def login_address(self, address: str) -> str:
        """Hash: n (failed agent sign-ins from this client address), until (locked until). EX 30 minutes after
        the last attempt. Same hash tag as ``login_account``: one script touches both in one Cluster slot."""
        return f"{self.prefix}{{login}}:address:{address}"

    def webhook_seen(self, channel: str, digest: str) -> str:
        """String: a signed provider request already seen (replay protection, ``gateway/channels/authn.py``).
        WeChat/Weibo: SET NX EX 600 per (timestamp, nonce), the value a hash of the body it came with; generic
        SMS, Twilio, Discourse: the answer given, kept while the request could be replayed (600 s, 7 days)."""
        return f"{self.prefix}webhook:{channel}:{digest}"
