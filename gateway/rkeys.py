"""Every Redis key name in one place, with its TTL. Hash tags ({…}) keep one conversation's or
one visitor's keys in one Redis Cluster slot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from gateway.vault import Keyring, deployment_keyring

# ---- expiry times and lengths (seconds / entries) ---------------------------------------------------
SEQ_TTL = 3 * 86400  # ``counter``: a day's sequence outlives its day
LOGIN_TTL = 1800  # ``login_account`` / ``login_address``: forgotten 30 minutes after the last attempt
HANDOFF_REQUESTS_MAXLEN = 100_000  # ``handoff_requests`` (approximate)
HANDOFF_SESSION_TTL = 12 * 3600  # ``handoff_session``: an agent signs in once per shift
HANDOFF_CLOCKS_TTL = 7 * 86400  # ``handoff_clocks``
HANDOFF_BREACHES_KEPT = 200  # ``handoff_breaches``
HANDOFF_CALLBACKS_MAXLEN = 10_000  # ``handoff_callbacks``
HANDOFF_SURVEY_TTL = 400 * 86400  # ``handoff_survey``: a year of reports, and a month to spare
CASE_EVENTS_MAXLEN = 1_000_000  # ``case_events`` (approximate)
CASE_FOLLOWUP_TTL = 7 * 86400  # ``case_followup``: a follow-up visit waits a week for the customer's answer
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
REPORT_HOUR_TTL = 40 * 86400  # ``report_hour``: the hourly buckets of the last 40 days (staffing, today's hours)
REPORT_DAY_TTL = 800 * 86400  # ``report_day``: two years of daily buckets (quarter over quarter, year over year)
REPORT_ONCE_TTL = 60 * 86400  # ``report_once``: a milestone counted once per chat or case within two months
REPORT_QUALITY_TTL = 400 * 86400  # ``report_quality`` / ``report_quality_day``: a year of inspections
# major incidents (handoff/incidents/)
INCIDENT_COUNTS_TTL = 35 * 86400  # ``incident_counts``: the detector's hour buckets, four weeks of baseline and spare
INCIDENT_SEEN_TTL = 86400  # ``incident_seen``: a conversation was told of an incident within a day
INCIDENT_SEQ_TTL = 3 * 86400  # ``incident_seq``: a day's incident numbers outlive their day
FORUM_FEED_LOCK_MIN_TTL = 5  # ``forum_feed_lock``: EX the poll interval (settings: forum.feed_interval), 5 s at least
# the NLU learning loop (gateway/nlu_review*.py): review keys EX nlu.review_ttl_days, refreshed on every write
NLU_CANDIDATE_TTL = 86400  # ``nlu_model`` of a retrained model not switched to yet: a day
NLU_PREVIOUS_TTL = 7 * 86400  # ``nlu_model`` of the model switched away from: a week (to switch back by hand)
NLU_RETRAIN_LOCK_TTL = 1800  # ``nlu_retrain_lock``: one retrain at a time; a crashed one frees it in 30 minutes
NLU_RETRAIN_JOB_TTL = 86400  # ``nlu_retrain_job``: the last retrain's progress and result
AUDIT_KEPT = 3 * 365 * 86400  # ``audit``: entries older than three years trimmed (MINID) at each write
PRIVACY_PURGE_LOCK_TTL = 23 * 3600  # ``privacy_purge_lock``: one retention purge a day for the whole deployment


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names, and the sealing of what is stored under them. With a ``vault`` (the deployment's keyring, see
    gateway/vault.py) a customer's identifier in a key name — a phone number, a Telegram chat id, an openid — is
    its keyed hash (``cid``), and ``seal``/``unseal`` encrypt and decrypt stored values; without one (benches,
    tools reading only non-customer keys) both are the identity."""

    prefix: str = "gw:"
    vault: Keyring | None = None

    def cid(self, value: str) -> str:
        """A customer identifier as it appears in key names, index members and logs: 24 hex digits of its HMAC
        under the index key (the same value always gives the same name; the name gives nothing back)."""
        return self.vault.index(value, "id")[:24] if self.vault is not None else value

    def seal(self, text: str) -> str:
        """``text`` encrypted (AES-256-GCM, the key id beside it). The key prefix is authenticated with it: a value
        copied into another deployment's keys does not open there."""
        return self.vault.encrypt(text, self.prefix) if self.vault is not None else text

    def seal_bytes(self, data: bytes) -> bytes:
        """``seal`` for UTF-8 bytes (JSON from orjson): the same sealed value, as bytes."""
        return self.vault.encrypt_bytes(data, self.prefix.encode()) if self.vault is not None else data

    def unseal(self, value: str | bytes | None) -> str:
        """A stored value in clear text: sealed ones decrypted, clear ones (older data) as they are; ``""`` for
        None."""
        if value is None:
            return ""
        text = value.decode() if isinstance(value, bytes) else value
        return self.vault.decrypt(text, self.prefix) if self.vault is not None else text

    def _tag(self, channel: str, sender: str) -> str:
        """``{sender:<channel>:<cid(sender)>}``. A REST session's namespace (``<sender>~<hash>``, see
        gateway/security.py) keeps its sender's hash tag, so a binding made in the open conversation lands in the
        same Cluster slot."""
        base, tilde, rest = sender.partition("~")
        return f"{{sender:{channel}:{self.cid(base)}}}{tilde}{rest}"

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
        return f"{self.prefix}{self._tag(channel, sender)}:dedupe:{message_id}"

    def sender(self, channel: str, sender: str) -> str:
        """Hash: conv (current conversation id), started, last (activity time), ticket (INCR on
        arrival), served (last ticket whose turn finished), o<ticket> (the process running that turn), lang, bot and
        botrev (the bot's state), human (the chat an agent holds), renewed (when the TTL was last set).
        EX conversation_idle_timeout + 1 day from the last message, renewed at most once a minute."""
        return f"{self.prefix}{self._tag(channel, sender)}:state"

    def binding(self, channel: str, sender: str) -> str:
        """String: the phone number a social/forum account proved it owns (one-time code). EX binding_ttl."""
        return f"{self.prefix}{self._tag(channel, sender)}:bind"

    def otp(self, channel: str, sender: str) -> str:
        """Hash: phone, salt, digest (SHA-1 of salt+code), attempts. EX otp_ttl (5 minutes)."""
        return f"{self.prefix}{self._tag(channel, sender)}:otp"

    def phone_accounts(self, phone: str) -> str:
        """Hash: the accounts bound to a number — field ``cid(<channel>:<sender>)``, value the sealed
        ``<channel>\\x1f<sender>`` — so a broadcast or a data-subject request finds a customer's social accounts
        without the number in any key name. EX the binding's TTL, refreshed at each binding."""
        return f"{self.prefix}{{accounts:{self.cid(phone)}}}"

    def otp_rate(self, phone: str) -> str:
        """String, SET NX EX otp_resend_after: one code per number per interval."""
        return f"{self.prefix}otp-rate:{self.cid(phone)}"

    def late(self, channel: str, sender: str) -> str:
        """List: answers that arrived after the deadline for a channel that cannot push (REST);
        delivered in front of the sender's next reply."""
        return f"{self.prefix}{self._tag(channel, sender)}:late"

    def conversation(self, conversation_id: str) -> str:
        """Hash: channel, sender, started_at, log (the log's key): find a conversation by id."""
        return f"{self.prefix}{{conv:{conversation_id}}}:meta"

    def conversation_log(self, channel: str, sender: str, conversation_id: str) -> str:
        """Stream: one entry per customer message, reply and event, each a JSON field ``e``.
        Tagged with the sender so a turn's whole write is one script in one Cluster slot."""
        return f"{self.prefix}{self._tag(channel, sender)}:log:{conversation_id}"

    def complaint(self, ticket: str) -> str:
        """Hash: a complaint ticket (type, status, owner, channel, text masked, due times, history JSON)."""
        return f"{self.prefix}{{complaint:{ticket}}}"

    def complaints_of(self, owner: str) -> str:
        """Sorted set: a customer's tickets by creation time; owner is ``phone:<number>`` or ``<channel>:<sender>``."""
        return f"{self.prefix}complaints-of:{self.cid(owner)}"

    # ---- complaint cases (handoff/cases/): one hash tag, so each case script touches one Cluster slot ----------
    def ck(self, *parts: str) -> str:
        """The builder of every complaint-case key, ``{prefix}{cases}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{cases}}:" + ":".join(parts)

    def case(self, ticket: str) -> str:
        """Hash: a complaint case (stage, type, severity, customer, department, assignee, clock times, facts JSON,
        linked chats JSON). No TTL (cases are the operator's records)."""
        return self.ck("case", ticket)

    def case_history(self, ticket: str) -> str:
        """List: a case's transitions and clock events (JSON), append-only (RPUSH, never rewritten). No TTL."""
        return self.ck("history", ticket)

    def case_notes(self, ticket: str) -> str:
        """List: agents' notes on a case (JSON), append-only. No TTL."""
        return self.ck("notes", ticket)

    def cases_all(self) -> str:
        """Sorted set: every case's ticket by registration time. No TTL."""
        return self.ck("all")

    def cases_in(self, stage: str) -> str:
        """Set: the tickets of the cases now at ``stage``. No TTL."""
        return self.ck("stage", stage)

    def cases_of_agent(self, agent: str) -> str:
        """Set: the tickets of the cases an agent is responsible for (any stage). No TTL."""
        return self.ck("agent", agent)

    def cases_of(self, owner: str) -> str:
        """Sorted set: a customer's tickets by registration time; owner is ``phone:<number>`` or
        ``<channel>:<sender>``. No TTL."""
        return self.ck("of", self.cid(owner))

    def case_open(self, owner: str) -> str:
        """String: the ticket of the customer's open case (a new complaint links to it); set at registration,
        deleted at ``resolved``, set again at ``reopened``. No TTL."""
        return self.ck("open", self.cid(owner))

    def case_timers(self) -> str:
        """Sorted set: ``ticket|clock|stage`` case timers (warn, breach, head, followup) by due time; a process
        claims one by moving it a lease ahead, and removes it once handled."""
        return self.ck("timers")

    def case_events(self) -> str:
        """Stream: every case transition and follow-up visit result (JSON field ``e``), for reports; MAXLEN
        ~ ``CASE_EVENTS_MAXLEN``."""
        return self.ck("events")

    def case_followup(self, channel: str, sender: str) -> str:
        """String: the ticket whose follow-up visit waits for this customer's answer. EX ``CASE_FOLLOWUP_TTL``."""
        return self.ck("followup", channel, self.cid(sender))

    # ---- reports (handoff/reports/): one hash tag, so each recorder script touches one Cluster slot ----------
    def rk(self, *parts: str) -> str:
        """The builder of every report key, ``{prefix}{reports}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{reports}}:" + ":".join(parts)

    def report_hour(self, hour: int) -> str:
        """Hash of integer counters (fields: ``handoff/reports/buckets.py``) for one UTC hour (epoch hour).
        EX ``REPORT_HOUR_TTL``, renewed on every write."""
        return self.rk("h", str(hour))

    def report_day(self, day: str) -> str:
        """Hash of integer counters for one local day ``YYYYMMDD`` (reports' time zone). EX ``REPORT_DAY_TTL``."""
        return self.rk("d", day)

    def report_once(self, subject: str) -> str:
        """Hash: milestones already counted for a chat or case (field = milestone), so a repeated event is counted
        once. EX ``REPORT_ONCE_TTL``."""
        return self.rk("once", subject)

    def report_quality(self, chat_id: str) -> str:
        """Hash: a chat's quality inspection (agent, automatic score, override, deductions JSON). EX
        ``REPORT_QUALITY_TTL``."""
        return self.rk("q", chat_id)

    def report_quality_day(self, day: str, agent: str = "") -> str:
        """Sorted set: the chats inspected on a local day ``YYYYMMDD`` (of one agent, or all) by score, so the
        lowest of a range are read without reading every inspection. EX ``REPORT_QUALITY_TTL``."""
        return self.rk("qd", day, agent) if agent else self.rk("qd", day)

    def handoff_requests(self) -> str:
        """Stream: requests for a human and new complaints, for agents (until the live queue)."""
        return f"{self.prefix}handoff:requests"

    def counter(self, name: str) -> str:
        """Integer: daily sequence numbers of tickets and requests."""
        return f"{self.prefix}seq:{name}"

    # ---- major incidents (handoff/incidents/): one hash tag, so each incident script touches one Cluster slot ---
    def ik(self, *parts: str) -> str:
        """The builder of every incident key, ``{prefix}{incidents}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{incidents}}:" + ":".join(parts)

    def incident(self, incident_id: str) -> str:
        """Hash: a major incident (category, severity, districts/services JSON, stage, eta, owner, notice texts,
        stage times JSON). No TTL (incidents are the operator's records)."""
        return self.ik("incident", incident_id)

    def incident_timeline(self, incident_id: str) -> str:
        """List: an incident's stage changes, updates and notes (JSON), append-only. No TTL."""
        return self.ik("timeline", incident_id)

    def incidents_all(self) -> str:
        """Sorted set: every incident's id by creation time. No TTL."""
        return self.ik("all")

    def incidents_open(self) -> str:
        """Set: the ids of the incidents not closed (every process re-reads these, not the whole history). No TTL."""
        return self.ik("open")

    def incident_links(self, incident_id: str) -> str:
        """Hash: customer owner (``phone:<n>`` or ``<channel>:<sender>``) → JSON of their complaints linked to the
        incident (channel, sender, lang, count, first/last time). No TTL."""
        return self.ik("links", incident_id)

    def incident_stats(self, incident_id: str) -> str:
        """Hash of integer counters of an incident (notices, deflected, insisted, linked, by channel). No TTL."""
        return self.ik("stats", incident_id)

    def incident_seq(self, day: str) -> str:
        """Integer: a day's incident numbers (INCR). EX ``INCIDENT_SEQ_TTL``."""
        return self.ik("seq", day)

    def incident_seen(self, conversation_id: str) -> str:
        """String: the incident a conversation was told of (its notice was given). EX ``INCIDENT_SEEN_TTL``."""
        return self.ik("seen", conversation_id)

    def incident_insist(self, conversation_id: str) -> str:
        """String: a conversation asked for a person during an incident and got the notice instead; asking again
        while it lives joins the queue. EX the configured insist window (config/incidents.yml)."""
        return self.ik("insist", conversation_id)

    def incident_counts(self, hour: int) -> str:
        """Hash of integer counters for one UTC epoch hour: ``<district>|<channel>|<kind>`` → network complaints /
        network_status questions (the early-warning detector). EX ``INCIDENT_COUNTS_TTL``."""
        return self.ik("counts", str(hour))

    def incident_samples(self, district: str) -> str:
        """List: the newest network complaint/question texts of a district (masked), evidence for a proposal;
        LTRIM to the configured number of samples, EX ``INCIDENT_COUNTS_TTL``."""
        return self.ik("samples", district)

    def incident_external(self, group: str) -> str:
        """String: the incident a monitoring system's alert group (Alertmanager ``groupKey``, hashed) opened; later
        notifications of the group add to its timeline. No TTL."""
        return self.ik("external", group)

    def incident_proposals(self) -> str:
        """Hash: proposal id → JSON of an incident the detector proposes (evidence, state). No TTL (kept as the
        record of what was proposed, accepted or dismissed)."""
        return self.ik("proposals")

    def incident_mute(self, scope: str) -> str:
        """String: no new proposal for this district (or district|channel) while it lives. EX the cooldown."""
        return self.ik("mute", scope)

    def incident_claim(self, slot: int) -> str:
        """String: the process that runs one detector evaluation (SET NX). EX twice the evaluation interval."""
        return self.ik("claim", str(slot))

    def incident_broadcast(self, broadcast_id: str) -> str:
        """Hash: a proactive broadcast of an incident's notice (incident, state, text, lang, total, cursor, the
        counters queued/opted_out/invalid/duplicates, who asked and approved, quiet-hour waits). No TTL."""
        return self.ik("broadcast", broadcast_id)

    def incident_broadcast_numbers(self, broadcast_id: str) -> str:
        """List: a broadcast's recipients (normalised numbers), read from ``cursor`` on. No TTL."""
        return self.ik("broadcast-numbers", broadcast_id)

    def incident_broadcasts(self) -> str:
        """Sorted set: every broadcast's id by creation time (the workers look at the unfinished ones). No TTL."""
        return self.ik("broadcasts")

    def incident_broadcast_tick(self, second: int) -> str:
        """String: the process that queues broadcast messages in one wall-clock second (SET NX). EX 2 s."""
        return self.ik("broadcast-tick", str(second))

    def incident_tasks(self, incident_id: str) -> str:
        """Hash: task id → JSON of an incident's task for a department (title, deadline, state, who and when).
        No TTL."""
        return self.ik("tasks", incident_id)

    def incident_reminder(self, what: str) -> str:
        """String: a reminder was sent (``task:<incident>:<task>`` once; ``status:<incident>`` EX the status
        interval), so every process sends it once."""
        return self.ik("reminder", what)

    def incidents_changed(self) -> str:
        """Pub/sub channel: an incident changed (every process refreshes its cache of active incidents)."""
        return self.ik("changed")

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
        return self.hk("callback-open", channel, self.cid(sender))

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

    def visitor_published(self, visitor: str, client_id: str) -> str:
        """Marks that the frames of the visitor's message ``client_id`` (a hash of it) were published: once only."""
        digest = hashlib.sha1(client_id.encode()).hexdigest()[:20]
        return f"{self.prefix}{{visitor:{visitor}}}:pub:{digest}"

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
        return f"{self.prefix}bss:{{sub:{self.cid(phone)}}}"

    def bss_idempotency(self, key: str) -> str:
        """String: "pending" while a demo write runs (EX ``BSS_IDEMPOTENCY_PENDING_TTL``), then its order (JSON,
        EX ``BSS_IDEMPOTENCY_TTL``): the same idempotency key always gets the first result."""
        return f"{self.prefix}bss:idem:{key}"

    def bss_orders(self) -> str:
        """Integer: the demo back end's order sequence (INCR). No TTL."""
        return f"{self.prefix}bss:orders"

    # ---- the NLU learning loop (gateway/nlu_review*.py): one hash tag, one Cluster slot for its scripts -------
    def nlu(self, *parts: str) -> str:
        """The builder of every learning-loop key, ``{prefix}{nlu}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{nlu}}:" + ":".join(parts)

    def nlu_review_items(self) -> str:
        """Hash: sample id (digest of the masked text) → JSON sample waiting for review (masked text, lang, the
        model's guess and confidence, an agent's label, count, first/last seen). At most ``nlu.review_max``
        fields; EX ``nlu.review_ttl_days``, refreshed on each write (samples older than that are dropped)."""
        return self.nlu("review", "items")

    def nlu_review_recent(self) -> str:
        """Sorted set: sample id → last seen (epoch s): the cap and the age limit of ``nlu_review_items``. EX as it."""
        return self.nlu("review", "recent")

    def nlu_review_done(self) -> str:
        """Sorted set: decided sample id → when (epoch s); seen again, it is not collected again within
        ``nlu.review_ttl_days`` (older entries trimmed on each write). EX as ``nlu_review_items``."""
        return self.nlu("review", "done")

    def nlu_model(self, model_id: str) -> str:
        """Hash: a retrained model's files (name → bytes) and ``meta`` (JSON: accuracies, base key, reviewed keys).
        The active one has no TTL; a candidate EX ``NLU_CANDIDATE_TTL``; the one switched away from
        EX ``NLU_PREVIOUS_TTL``."""
        return self.nlu("model", model_id)

    def nlu_model_active(self) -> str:
        """String: JSON of the model every gateway process serves (id, base key, accuracy, when, by whom). No TTL."""
        return self.nlu("model", "active")

    def nlu_model_events(self) -> str:
        """Pub/sub channel: a model id, published on a switch; every process loads it."""
        return self.nlu("model", "events")

    def nlu_retrain_lock(self) -> str:
        """String: the process running a retrain; SET NX EX ``NLU_RETRAIN_LOCK_TTL``."""
        return self.nlu("retrain", "lock")

    def nlu_retrain_job(self) -> str:
        """Hash: the last retrain: state (running|done|failed), progress, by, started_at, finished_at, result (JSON),
        error. EX ``NLU_RETRAIN_JOB_TTL``."""
        return self.nlu("retrain", "job")

    def audit(self) -> str:
        """Stream: the audit trail (gateway/audit.py) — who, what, customer (``cid``), where, reason, details —
        append-only; entries older than ``AUDIT_KEPT`` trimmed by MINID at each write."""
        return f"{self.prefix}audit"

    # ---- privacy: consent and retention (gateway/consent.py, gateway/retention.py) ------------------------
    def consent(self, phone: str) -> str:
        """Hash: a customer's marketing consent, channel (or ``*``) → JSON {granted, at, source, by, history}.
        No TTL (the proof of consent, and a withdrawal, outlive conversations; kept through an erasure)."""
        return f"{self.prefix}consent:{self.cid(phone)}"

    def privacy_purge_lock(self) -> str:
        """String: the process running the daily retention purge (SET NX EX ``PRIVACY_PURGE_LOCK_TTL``)."""
        return f"{self.prefix}privacy:purge-lock"

    # ---- channels: provider state and de-duplication (gateway/channels/) ----------------------------------
    def passive_claim(self, channel: str, message_key: str) -> str:
        """String: who answers a pushed message (WeChat, Weibo), "passive" (in the HTTP response) or "api" (through
        the outbox); SET NX EX ``PASSIVE_CLAIM_TTL``, so each platform retry finds it. Tagged ``{<channel>}``."""
        return f"{self.prefix}{{{channel}}}:claim:{message_key}"

    def sms_optout(self) -> str:
        """Hash (older versions): clear number → when it opted out of marketing texts. Moved into ``consent`` records
        and deleted by ``gateway.consent.migrate_sms_optout`` (at the SMS channel's start and by the daily purge)."""
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
        return self.smpp("parts", self.cid(source), str(reference), str(total))

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
        return self.wechat("win", self.cid(openid))

    def wechat_held(self, openid: str) -> str:
        """List: outbox jobs (JSON) held until the follower writes again (window closed or its quota used);
        EX ``WECHAT_HELD_TTL`` from the last one held."""
        return self.wechat("held", self.cid(openid))

    def wechat_unsubscribed(self, openid: str) -> str:
        """String "1": the follower unsubscribed (nothing is sent to them); deleted when they subscribe again, else
        EX ``UNSUBSCRIBED_TTL``."""
        return self.wechat("unsub", self.cid(openid))

    def weibo_unsubscribed(self, fan: str) -> str:
        """String "1": the fan unfollowed (nothing is sent to them); deleted when they follow again, else EX
        ``UNSUBSCRIBED_TTL``."""
        return f"{self.prefix}{{weibo}}:unsub:{self.cid(fan)}"

    def forum(self, *parts: str) -> str:
        """The builder of every forum key, ``{prefix}{forum}:<parts>``; use the named methods below."""
        return f"{self.prefix}{{forum}}:" + ":".join(parts)

    def forum_topic(self, sender: str) -> str:
        """Hash: where a forum user last posted (topic_id, post_number, url, username, source: discourse | feed),
        where their replies go. No TTL (overwritten by their next post)."""
        return self.forum("topic", self.cid(sender))

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


def deployment_keys(prefix: str, key_file: str = "", data_dir: Path | None = None, production: bool = False) -> Keys:
    """The deployment's ``Keys``: its prefix and its keyring (``vault.deployment_keyring``: the environment, else the
    key file) — what the server, its command-line tools and tests reading its keys all use."""
    ring, _ = deployment_keyring(key_file, data_dir or Path("/nonexistent-data-dir"), production)
    return Keys(prefix, ring)
