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
HANDOFF_HISTORY_TTL = 400 * 86400  # ``handoff_episode`` and the history indexes: a year, and a month to spare
BSS_IDEMPOTENCY_TTL = 86400  # ``bss_idempotency``: a write's first result, for its retries
BSS_IDEMPOTENCY_PENDING_TTL = 60  # ``bss_idempotency`` while the write runs (a crashed writer frees it)
# channels (gateway/channels/) and their outboxes (gateway/outbox.py)
WEBHOOK_REPLAY_TTL = 600  # ``webhook_seen`` of a signed time: > 2 × the skew allowed (authn.MAX_SKEW, 5 minutes)
WEBHOOK_LONG_TTL = 7 * 86400  # ``webhook_seen`` of a request that signs no time (Twilio, Discourse): a week
OUTBOX_ID_TTL = 86400  # ``outbox_id``: a job id is queued once within a day
OUTBOX_SECOND_TTL = 2  # ``outbox_second``: one wall-clock second's sends, and a second to spare
OUTBOX_DEAD_KEPT = 1000  # ``outbox_dead``: the newest dead jobs kept
PASSIVE_CLAIM_TTL = 600  # ``passive_claim``: longer than any platform's retries of a push
UNSUBSCRIBED_TTL = 365 * 86400  # ``wechat_unsubscribed`` / ``weibo_unsubscribed``: a year
SMS_RECEIPT_TTL = 7 * 86400  # ``sms_receipt``: a send's record, for its delivery receipts
SMPP_PARTS_TTL = 600  # ``smpp_parts``: the parts of a long message wait ten minutes for the rest
SMPP_SEEN_TTL = 120  # ``smpp_seen``: the same (sender, text) again within two minutes is a redelivery
SMPP_INBOX_MAXLEN = 100_000  # ``smpp_inbox`` (approximate)
SMPP_INBOX_GROUP = "gateway"  # ``smpp_inbox``'s consumer group (every process reads in it)
TELEGRAM_CALLBACK_TTL = 30 * 86400  # ``telegram_callback``: a button keeps working for a month
WECHAT_TOKEN_LOCK_TTL = 10  # ``wechat_token_lock``: one process fetches the access token (a crashed one frees it)
WECHAT_WINDOW_SPARE = 86400  # ``wechat_window``: EX the 48-hour window (settings: wechat.window_hours) + a day
WECHAT_HELD_TTL = 7 * 86400  # ``wechat_held``
FORUM_EVENT_TTL = 7 * 86400  # ``forum_event``: Discourse's redeliveries of an event come within a week
FORUM_FEED_LOCK_MIN_TTL = 5  # ``forum_feed_lock``: EX the poll interval (settings: forum.feed_interval), 5 s at least


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
        """ "pending:<instance>:<ticket>" while handled (EX: a turn's longest time), then the stored replies
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

    def handoff_alive(self) -> str:
        """String: epoch seconds some gateway process of the deployment was last alive (its timer worker writes it
        every second; a start after a longer gap is a system outage). No TTL."""
        return self.hk("alive")

    def handoff_started(self) -> str:
        """String: epoch seconds a gateway process last started (agents' reconnect grace counts from it). No TTL."""
        return self.hk("started")

    def handoff_outages(self) -> str:
        """List: system outages (JSON: from, to, seconds, clocks paused), newest first, trimmed like breaches."""
        return self.hk("outages")

    def handoff_callback_open(self, channel: str, sender: str) -> str:
        """String: the id of the customer's open callback task (one at a time). EX ``HANDOFF_CLOCKS_TTL``."""
        return self.hk("callback-open", channel, sender)

    def handoff_episode(self, episode: str) -> str:
        """Hash: one ended chat with people (an episode of a conversation): the chat's summary masked, agents,
        close, the slice of the conversation log it spans, its text masked (for search). EX ``HANDOFF_HISTORY_TTL``."""
        return self.hk("episode", episode)

    def handoff_episodes(self) -> str:
        """Sorted set: every episode id by close time; older than ``HANDOFF_HISTORY_TTL`` trimmed at each close."""
        return self.hk("episodes")

    def handoff_history(self, customer: str) -> str:
        """Sorted set: a customer's episodes by close time; ``customer`` is a keyed hash (HMAC with the server key)
        of the phone number, else of channel and sender — never the number. EX ``HANDOFF_HISTORY_TTL`` from the
        last close."""
        return self.hk("history", customer)

    def handoff_index(self, kind: str, value: str) -> str:
        """Sorted set: episodes by close time for a search filter — ``agent`` (sign-in name), ``ticket``, ``term``
        (a keyed hash of a word or two-character run of the masked text). EX ``HANDOFF_HISTORY_TTL`` from the
        last episode added."""
        return self.hk("index", kind, value)

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

    # ---- channels: provider state and de-duplication (gateway/channels/) ----------------------------------
    def passive_claim(self, channel: str, message_key: str) -> str:
        """String: who answers a pushed message (WeChat, Weibo), "passive" (in the HTTP response) or "api" (through
        the outbox); SET NX EX ``PASSIVE_CLAIM_TTL``, so each platform retry finds it. Tagged ``{<channel>}``."""
        return f"{self.prefix}{{{channel}}}:claim:{message_key}"

    def sms_optout(self) -> str:
        """Hash: number → when it opted out of marketing texts (epoch seconds). No TTL (until it opts in)."""
        return f"{self.prefix}sms:optout"

    def sms_receipt(self, provider_id: str) -> str:
        """Hash: a text sent, by the provider's id: job, kind, status (sent, then the receipts' words), sent_at,
        parts, updated, error. EX ``SMS_RECEIPT_TTL``."""
        return f"{self.prefix}sms:receipt:{provider_id}"

    def smpp(self, *parts: str) -> str:
        """The builder of every SMPP key, ``{prefix}{smpp}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{smpp}}:" + ":".join(parts)

    def smpp_inbox(self) -> str:
        """Stream: whole mobile-originated texts (from, to, text, id, at) for the consumer group
        ``SMPP_INBOX_GROUP``; MAXLEN ~ ``SMPP_INBOX_MAXLEN``. An entry is deleted once handled."""
        return self.smpp("inbox")

    def smpp_parts(self, source: str, reference: int | str, total: int | str) -> str:
        """Hash: the parts of a long text come so far, seq → data coding byte + the part's bytes; deleted when
        complete, else EX ``SMPP_PARTS_TTL`` (from the last part)."""
        return self.smpp("parts", source, str(reference), str(total))

    def smpp_seen(self, digest: str) -> str:
        """String "1": a (sender, recipient, text) accepted into the inbox (SET NX EX ``SMPP_SEEN_TTL``): SMPP gives
        a customer's text no id, so a redelivery is known by its content."""
        return self.smpp("seen", digest)

    def telegram_callback(self, digest: str) -> str:
        """String: a button's payload too long for Telegram's callback_data (64 bytes), which carries
        ``h:<digest>`` instead. EX ``TELEGRAM_CALLBACK_TTL``."""
        return f"{self.prefix}tg:cb:{digest}"

    def wechat(self, *parts: str) -> str:
        """The builder of every WeChat key, ``{prefix}{wechat}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{wechat}}:" + ":".join(parts)

    def wechat_token(self) -> str:
        """Hash: the official account's access token (token, expires), shared by every process; EXPIREAT its
        expiry."""
        return self.wechat("token")

    def wechat_token_lock(self) -> str:
        """String: the pid of the process fetching the access token; SET NX EX ``WECHAT_TOKEN_LOCK_TTL``."""
        return self.wechat("token", "lock")

    def wechat_window(self, openid: str) -> str:
        """Hash: a follower's customer-service window, last_in (when they last wrote), sent (messages since);
        EX the window + ``WECHAT_WINDOW_SPARE``."""
        return self.wechat("win", openid)

    def wechat_held(self, openid: str) -> str:
        """List: outbox jobs (JSON) held until the follower writes again (window closed or its quota used);
        EX ``WECHAT_HELD_TTL`` from the last one held."""
        return self.wechat("held", openid)

    def wechat_unsubscribed(self, openid: str) -> str:
        """String "1": the follower unsubscribed (nothing is sent to them); deleted when they subscribe again, else
        EX ``UNSUBSCRIBED_TTL``."""
        return self.wechat("unsub", openid)

    def weibo_unsubscribed(self, fan: str) -> str:
        """String "1": the fan unfollowed (nothing is sent to them); deleted when they follow again, else EX
        ``UNSUBSCRIBED_TTL``."""
        return f"{self.prefix}{{weibo}}:unsub:{fan}"

    def forum(self, *parts: str) -> str:
        """The builder of every forum key, ``{prefix}{forum}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{forum}}:" + ":".join(parts)

    def forum_topic(self, sender: str) -> str:
        """Hash: where a forum user last posted (topic_id, post_number, url, username, source: discourse | feed),
        where their replies go. No TTL (overwritten by their next post)."""
        return self.forum("topic", sender)

    def forum_event(self, event_id: str) -> str:
        """String "1": a Discourse webhook event id handled (or being handled); SET NX EX ``FORUM_EVENT_TTL``,
        deleted when its handling failed (so the redelivery is handled)."""
        return self.forum("event", event_id)

    def forum_feed_lock(self) -> str:
        """String "1": one process polls the feed; SET NX EX the poll interval (``FORUM_FEED_LOCK_MIN_TTL`` at
        least), deleted after the poll."""
        return self.forum("feed", "lock")

    def forum_feed_http(self) -> str:
        """Hash: etag, modified — the feed's last HTTP validators, for a conditional GET. No TTL."""
        return self.forum("feed", "http")

    def forum_feed_seen(self) -> str:
        """Hash: feed entry guid → its updated time (an entry is answered once, an edit is not answered), and
        ``__started__`` (when the first poll took the backlog). No TTL."""
        return self.forum("feed", "seen")

    # ---- a channel's outbox (gateway/outbox.py): one hash tag per channel, each script in one Cluster slot --
    def outbox(self, channel: str, *parts: str) -> str:
        """The builder of every outbox key, ``{prefix}{out:<channel>}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{out:{channel}}}:" + ":".join(parts)

    def outbox_due(self, channel: str) -> str:
        """Sorted set: recipients with jobs waiting, score = when the head may be sent (a claim moves it a lease
        ahead). No TTL (a recipient leaves it when its list empties)."""
        return self.outbox(channel, "due")

    def outbox_queue(self, channel: str, recipient: str) -> str:
        """List: a recipient's jobs (JSON), in order; the head is sent, then popped. ``outbox_queue(channel, "")``
        is the prefix of every recipient's list (the claim script appends the recipient). No TTL."""
        return self.outbox(channel, "q", recipient)

    def outbox_next(self, channel: str, recipient: str) -> str:
        """String: the earliest time (epoch seconds) the next job to a recipient may go, PX the channel's interval
        (a job queued after the list emptied still keeps it)."""
        return self.outbox(channel, "next", recipient)

    def outbox_id(self, channel: str, job_id: str) -> str:
        """String "1": a job id queued (SET NX EX ``OUTBOX_ID_TTL``, or the put's ``id_ttl``): the same id again is
        not queued. ``job_id`` "-" stands for a job without one (never written)."""
        return self.outbox(channel, "id", job_id)

    def outbox_second(self, channel: str, second: int) -> str:
        """Integer: sends claimed in one wall-clock second by every process (the channel's per-second cap);
        EX ``OUTBOX_SECOND_TTL``."""
        return self.outbox(channel, "sec", str(second))

    def outbox_dead(self, channel: str) -> str:
        """List: jobs given up on (JSON, with attempts, last_error masked, failed_at), for operators; trimmed to
        the newest ``OUTBOX_DEAD_KEPT``. No TTL."""
        return self.outbox(channel, "dead")
