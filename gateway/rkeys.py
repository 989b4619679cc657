"""Every Redis key name in one place, with its TTL. Hash tags ({…}) keep one conversation's or
one visitor's keys in one Redis Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass


def _tag(channel: str, sender: str) -> str:
    """``{sender:<channel>:<sender>}``. A REST session's namespace (``<sender>~<hash>``, see gateway/security.py)
    keeps its sender's hash tag, so a binding made in the open conversation lands in the same Cluster slot."""
    base, tilde, rest = sender.partition("~")
    return f"{{sender:{channel}:{base}}}{tilde}{rest}"


# ---- expiry times and lengths (seconds / entries) ---------------------------------------------------
SEQ_TTL = 3 * 86400  # ``counter``: a day's sequence outlives its day
LOGIN_TTL = 1800  # ``login_account`` / ``login_address``: forgotten 30 minutes after the last attempt
HANDOFF_REQUESTS_MAXLEN = 100_000  # ``handoff_requests`` (approximate)
HANDOFF_SESSION_TTL = 12 * 3600  # ``handoff_session``: an agent signs in once per shift
HANDOFF_CLOCKS_TTL = 7 * 86400  # ``handoff_clocks``
HANDOFF_BREACHES_KEPT = 200  # ``handoff_breaches``
HANDOFF_CALLBACKS_MAXLEN = 10_000  # ``handoff_callbacks``
HANDOFF_SURVEY_TTL = 400 * 86400  # ``handoff_survey``: a year of reports, and a month to spare
BSS_IDEMPOTENCY_TTL = 86400  # ``bss_idempotency``: a write's first result, for its retries
BSS_IDEMPOTENCY_PENDING_TTL = 60  # ``bss_idempotency`` while the write runs (a crashed writer frees it)


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
        """The builder of every handoff key, ``{prefix}{handoff}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{handoff}}:" + ":".join(parts)

    def handoff_agent(self, name: str) -> str:
        """Hash: an agent account (name, display_name, role, skills, capacity, password hash, demo). No TTL."""
        return self.hk("agent", name)

    def handoff_agents(self) -> str:
        """Set: every agent account's name. No TTL."""
        return self.hk("agents")

    def handoff_agent_chats(self, name: str) -> str:
        """Set: the ids of the chats an agent holds (its load, against its capacity). No TTL."""
        return self.hk("agent", name, "chats")

    def handoff_presence(self, name: str) -> str:
        """Hash: status (online | away | offline), seen (last sign of life), conns (open console sockets)."""
        return self.hk("presence", name)

    def handoff_session(self, sid: str) -> str:
        """Hash: an agent's console session (agent, csrf, created). EX ``HANDOFF_SESSION_TTL``."""
        return self.hk("session", sid)

    def handoff_chat(self, chat_id: str) -> str:
        """Hash: a chat with people (its id is the conversation's): customer, skills, state, agent, clock times,
        the log's key. No TTL (closed chats stay for their surveys and reports)."""
        return self.hk("chat", chat_id)

    def handoff_queue(self) -> str:
        """Sorted set: queued chat ids, score = entered − priority credit (lowest first)."""
        return self.hk("queue")

    def handoff_timers(self) -> str:
        """Sorted set: ``clock|id|stage`` SLA and presence timers by due time (epoch seconds)."""
        return self.hk("timers")

    def handoff_clocks(self, chat_id: str) -> str:
        """Hash: a chat's running SLA clocks, clock → JSON [warn_at, due_at, breached]. EX ``HANDOFF_CLOCKS_TTL``."""
        return self.hk("clocks", chat_id)

    def handoff_breaches(self) -> str:
        """List: the latest SLA breaches (JSON), newest first, trimmed to ``HANDOFF_BREACHES_KEPT``."""
        return self.hk("breaches")

    def handoff_callbacks(self) -> str:
        """Stream: callback requests and the messages customers left (JSON field ``e``), MAXLEN
        ``HANDOFF_CALLBACKS_MAXLEN``."""
        return self.hk("callbacks")

    def handoff_callbacks_done(self) -> str:
        """Hash: callback task id → JSON of who handled it, when, how. No TTL."""
        return self.hk("callbacks", "done")

    def handoff_survey(self, conversation_id: str) -> str:
        """Hash: a conversation's satisfaction survey (each field JSON). EX ``HANDOFF_SURVEY_TTL``."""
        return self.hk("survey", conversation_id)

    def handoff_surveys(self) -> str:
        """Stream: every survey score as it is given (JSON field ``e``), for reports."""
        return self.hk("surveys")

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

    # ---- the demo operator back end (bots/bss/demo.py): writes over the read-only demo data ----------
    def bss_subscriber(self, phone: str) -> str:
        """Hash: what demo writes changed on a subscriber (status, pending_plan, vas_cancelled JSON). No TTL."""
        return f"{self.prefix}bss:{{sub:{phone}}}"

    def bss_idempotency(self, key: str) -> str:
        """String: "pending" while a demo write runs (EX ``BSS_IDEMPOTENCY_PENDING_TTL``), then its order (JSON,
        EX ``BSS_IDEMPOTENCY_TTL``): the same idempotency key always gets the first result."""
        return f"{self.prefix}bss:idem:{key}"

    def bss_orders(self) -> str:
        """Integer: the demo back end's order sequence (INCR). No TTL."""
        return f"{self.prefix}bss:orders"
