"""The incident desk: the bots' ``IncidentDesk`` port (``bots/incidents.py``) and each process's worker.

The turn's questions (``active``, ``affecting``, ``get``, ``observe``) read process memory only: the active
incidents are cached here, refreshed when any process publishes a change on ``incidents_changed`` and at least
every ``refresh_seconds``. The worker, once a second, flushes the detector's counts and — in the one process that
claims the interval — runs the detector and alerts supervisors on the agents' live channel."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from bots.incidents import ActiveIncident
from bots.ports import HandoffRequest
from gateway import tasks
from gateway.errors import log_failure
from gateway.models import OutboundMessage
from gateway.privacy import mask_phone
from gateway.rkeys import INCIDENT_SEEN_TTL, Keys
from handoff.incidents.broadcast import Broadcasts
from handoff.incidents.compensation import Compensation
from handoff.incidents.config import IncidentsConfig
from handoff.incidents.detector import Counts, Detector
from handoff.incidents.model import Incident
from handoff.incidents.store import IncidentStore
from handoff.incidents.tasks import Tasks
from handoff.ports import Customers, Texts

log = logging.getLogger(__name__)
TICK = 1.0  # seconds between the worker's turns
REMIND_EVERY = 30.0  # seconds between this process's looks for due reminders (each is sent once in all)
REMINDERS_KEPT = 50  # the latest reminders the incident room shows
STOP_WAIT = 3.0


def _active(incident: Incident) -> ActiveIncident:
    return ActiveIncident(incident.id, incident.category, incident.severity, incident.districts, incident.services,
                          incident.eta, dict(incident.notice), incident.updated_at)  # fmt: skip


class Desk:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: IncidentsConfig, publish: Any = None,
                 customers: Customers | None = None, texts: Texts | None = None) -> None:  # fmt: skip
        """``publish(event, to)``: the agents' live channel (``handoff.store.ChatStore.publish``); ``customers`` and
        ``texts``: the way back to customers and their templates, for the follow-up when an incident closes."""
        self.customers = customers
        self.texts = texts
        self.background: set[asyncio.Future[Any]] = set()
        self.stats_pending: Counter[tuple[str, str]] = Counter()  # (incident, counter) → not yet in Redis
        self.seen_pending: dict[str, str] = {}  # conversation → the incident it was told of, not yet in Redis
        self.redis = redis
        self.keys = keys
        self.config = config
        self.store = IncidentStore(redis, keys)
        self.detector = Detector(redis, keys, config.detector)
        self.broadcasts = Broadcasts(redis, keys, config.broadcast)
        self.tasks = Tasks(redis, keys, config.tasks)
        self.compensation = Compensation(redis, keys)  # its back end: set by the gateway
        self.reminded_at = 0.0  # ``texter_source``: set by the gateway
        self.counts = Counts(config.detector.samples)
        self.publish = publish
        self.network_intents = config.network_intents
        self._by_id: dict[str, ActiveIncident] = {}
        self._by_district: dict[str, list[ActiveIncident]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.refreshed_at = 0.0

    # ---- the bots' port: process memory only -------------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self._by_id)

    def affecting(self, district: str, service: str | None = None) -> ActiveIncident | None:
        for incident in self._by_district.get(district, ()):  # most severe first
            if service is None or not incident.services or service in incident.services:
                return incident
        return None

    def get(self, incident_id: str) -> ActiveIncident | None:
        return self._by_id.get(incident_id)

    def observe(self, district: str, channel: str, kind: str, text: str) -> None:
        if self.config.detector.enabled and district:
            self.counts.add(district, channel, kind, text)

    # ---- the bots' port: the few writes of an answer ------------------------------------------------------
    async def told(self, incident_id: str, conversation_id: str, channel: str, district: str = "",
                   urgency: int = 0) -> None:  # fmt: skip
        """No Redis call in the turn: the counters (by channel, by district, and by the message's urgency — 0 calm …
        3 escalating, the room's sentiment) and the conversation's mark are kept in memory and written to Redis in
        one batch a second (and before any read of them here)."""
        pending = self.stats_pending
        pending[(incident_id, "notices")] += 1
        pending[(incident_id, f"notices:{channel}")] += 1
        pending[(incident_id, f"district:{district}")] += 1 if district else 0
        pending[(incident_id, f"mood:{max(0, min(urgency, 3))}")] += 1
        self.seen_pending[conversation_id] = incident_id

    def affected_key(self, incident_id: str) -> str:
        """Set: the conversations told of an incident (for the review). No TTL (the incident's record)."""
        return self.keys.ik("affected", incident_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("incidents: a background write failed (%s)", type(task.exception()).__name__)

    async def flush_stats(self) -> None:
        """Add this process's pending counters to Redis (one round trip; kept for the next flush on failure)."""
        if not self.stats_pending and not self.seen_pending:
            return
        pending, self.stats_pending = self.stats_pending, Counter()
        seen, self.seen_pending = self.seen_pending, {}
        pipe = self.redis.pipeline(transaction=False)
        for (incident_id, name), n in pending.items():
            if n:
                pipe.hincrby(self.keys.incident_stats(incident_id), name, n)
        for conversation_id, incident_id in seen.items():  # queue protection; the review's affected customers
            pipe.set(self.keys.incident_seen(conversation_id), incident_id, ex=INCIDENT_SEEN_TTL)
            pipe.sadd(self.affected_key(incident_id), conversation_id)
        try:
            await pipe.execute()
        except Exception:
            self.stats_pending.update(pending)
            self.seen_pending = {**seen, **self.seen_pending}
            raise

    async def told_of(self, conversation_id: str) -> str | None:
        if conversation_id in self.seen_pending:  # told in this process within the last second
            return self.seen_pending[conversation_id]
        found = await self.redis.get(self.keys.incident_seen(conversation_id))
        return found.decode() if found else None

    async def protect(self, incident_id: str, conversation_id: str, channel: str) -> bool:
        key = self.keys.incident_insist(conversation_id)
        first = await self.redis.set(key, incident_id, nx=True, ex=self.config.insist_window)
        await self.store.count(incident_id, "deflected" if first else "insisted")
        return bool(first)

    async def link_complaint(self, incident_id: str, request: HandoffRequest, district: str) -> tuple[int, bool]:
        owner = f"phone:{request.phone}" if request.phone else f"{request.channel}:{request.sender}"
        link = {"at": time.time(), "channel": request.channel, "sender": request.sender, "lang": request.lang,
                "phone": mask_phone(request.phone) if request.phone else "", "district": district,
                "conversation": request.conversation_id, "text": request.text[:500],
                "urgency": request.urgency}  # fmt: skip
        stored, first = await self.store.link(incident_id, owner, link)
        await self.store.count(incident_id, "complaints", *(["linked"] if first else []))
        return int(stored.get("count", 1)), first

    # ---- the cache ---------------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read the incidents customers are told of now into process memory."""
        stages = set(self.config.answer_stages)
        found = [_active(i) for i in await self.store.open() if i.stage in stages]
        found.sort(key=lambda i: (i.severity, -i.updated_at))
        by_district: dict[str, list[ActiveIncident]] = {}
        for incident in found:
            for district in incident.districts:
                by_district.setdefault(district, []).append(incident)
        self._by_id, self._by_district = {i.id: i for i in found}, by_district
        self.refreshed_at = time.time()

    # ---- the worker --------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self.background:
            await asyncio.wait(set(self.background), timeout=STOP_WAIT)
        await tasks.stop(self._task)
        with contextlib.suppress(Exception):
            await self.counts.flush(self.redis, self.keys)
            await self.flush_stats()

    async def _run(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            while not self._stopping:
                try:
                    await pubsub.subscribe(self.keys.incidents_changed())
                    await self.refresh()
                    await self._loop(pubsub)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis away for a moment: try again shortly
                    log_failure(log, "incidents: worker error", exc)
                    await asyncio.sleep(TICK)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _loop(self, pubsub: Any) -> None:
        while not self._stopping:
            message = await pubsub.get_message(timeout=TICK)
            if message is not None or time.time() - self.refreshed_at >= self.config.refresh_seconds:
                await self.refresh()
            await self.counts.flush(self.redis, self.keys)
            await self.flush_stats()
            await self.broadcasts.tick()
            if time.time() - self.reminded_at >= REMIND_EVERY:
                await self.remind()
                for incident_id in await self.compensation.pending():  # a run cut off (a restart): resumed
                    self._spawn(self.grant(incident_id))
            if self.config.detector.enabled and await self.detector.claim():
                await self.detect()

    async def detect(self, now: float | None = None) -> list[dict[str, Any]]:
        """Run the detector now and alert supervisors of each new proposal."""
        await self.counts.flush(self.redis, self.keys)
        covered = {d for i in await self.store.open() for d in i.districts}
        proposals = await self.detector.evaluate(now, covered)
        for proposal in proposals:
            await self.publish_event({"type": "incident_proposal", "proposal": proposal})
        return proposals

    async def remind(self, now: float | None = None) -> list[dict[str, Any]]:
        """Overdue tasks and silent incidents, to supervisors (each reminder once across processes)."""
        self.reminded_at = time.time()
        incidents = await self.store.open()
        last = {i.id: await self.store.last_entry(i.id) or i.updated_at for i in incidents}
        due = await self.tasks.reminders(incidents, last, now)
        owners = {i.id: i.owner for i in incidents}
        for event in due:  # a status update is asked of the incident's owner (an agent's name), else supervisors
            owner = owners.get(event["incident"], "")
            to: str | list[str] = [owner] if event["type"] == "incident_status_due" and owner else "supervisors"
            shown = {**event, "owner": owner, "at": time.time()}
            await self.publish_event(shown, to=to)
            pipe = self.redis.pipeline(transaction=False)  # also kept for the incident room (it polls)
            pipe.lpush(self.reminders_key(), json.dumps(shown, ensure_ascii=False))
            pipe.ltrim(self.reminders_key(), 0, REMINDERS_KEPT - 1)
            await pipe.execute()
        return due

    def reminders_key(self) -> str:
        """List: the latest reminders (JSON, newest first), for the incident room. ``REMINDERS_KEPT`` long."""
        return self.keys.ik("reminders")

    async def recent_reminders(self, since: float) -> list[dict[str, Any]]:
        found = [json.loads(r) for r in await self.redis.lrange(self.reminders_key(), 0, REMINDERS_KEPT - 1)]
        return [r for r in found if r.get("at", 0) >= since]

    async def publish_event(self, event: dict[str, Any], to: str | list[str] = "supervisors") -> None:
        """An event for the supervisors' consoles (or the agents named), on the agents' live channel."""
        if self.publish is not None:
            await self.publish(event, to=to)

    def notice_text(self, incident: Incident, lang: str, channel: str) -> str:
        """The incident's notice as customers get it (the supervisors' text or the template's), for a broadcast."""
        assert self.texts is not None
        tz = ZoneInfo(self.config.broadcast.timezone)
        eta = dt.datetime.fromtimestamp(incident.eta, tz) if incident.eta else None
        district = ("、" if lang == "zh" else ", ").join(incident.districts)
        return self.texts.text("incident", "notice", lang, channel, category=incident.category,
                               services=incident.services, eta=eta, custom=incident.notice.get(lang, ""),
                               district=district)  # fmt: skip

    def wechat_body(self, incident: Incident, lang: str, custom: str = "") -> str:
        """The notice as a WeChat template message's body: ``first`` (the notice), ``keyword1`` (the districts),
        ``keyword2`` (the estimated recovery), ``remark`` — the usual fields of a fault-notice template."""
        tz = ZoneInfo(self.config.broadcast.timezone)
        sep = "、" if lang == "zh" else ", "
        eta = dt.datetime.fromtimestamp(incident.eta, tz).strftime("%Y-%m-%d %H:%M") if incident.eta else ""
        fields = {"first": custom or self.notice_text(incident, lang, "wechat"),
                  "keyword1": sep.join(incident.districts),
                  "keyword2": eta or ("评估中" if lang == "zh" else "being assessed"),
                  "remark": incident.id}  # fmt: skip
        body = {"template_id": self.config.broadcast.wechat_template_id,
                "data": {k: {"value": v} for k, v in fields.items()}}  # fmt: skip
        return json.dumps(body, ensure_ascii=False)

    def closed(self, incident: Incident) -> None:
        """The incident closed: the follow-ups, and the goodwill offer if one was set."""
        self.follow_up(incident)
        self.spawn_offer(incident.id)

    def spawn_offer(self, incident_id: str) -> None:
        """Grant the goodwill offer in the background (the incident is closed)."""
        self._spawn(self._close_offer(incident_id))

    async def _close_offer(self, incident_id: str) -> None:
        await self.compensation.start(incident_id)
        await self.grant(incident_id)

    async def grant(self, incident_id: str) -> int:
        """Grant the incident's goodwill offer to those not granted yet (one process at a time)."""
        incident = await self.store.get(incident_id)
        linked = [owner.split(":", 1)[1] for owner in await self.store.links(incident_id) if owner.startswith("phone:")]
        return await self.compensation.run(incident_id, incident.title, incident.districts, linked)

    def follow_up(self, incident: Incident) -> None:
        """The incident closed: every customer whose complaint was linked to it is told once, on their channel (in
        the background; the stage change that closed it is made once, so this runs once)."""
        if self.customers is not None and self.texts is not None:
            self._spawn(self._follow_up(incident))

    async def _follow_up(self, incident: Incident) -> int:
        assert self.customers is not None and self.texts is not None
        told = 0
        offer = await self.compensation.of(incident.id)
        for owner, link in (await self.store.links(incident.id)).items():
            if link.get("followed_up"):
                continue
            district, lang = link.get("district") or incident.districts[0], link.get("lang") or "zh"
            text = self.texts.text("incident", "resolved", lang, link["channel"], incident_id=incident.id,
                                   district=district)  # fmt: skip
            if offer is not None and owner.startswith("phone:"):  # the goodwill gesture, granted meanwhile
                text += "\n" + self.texts.text("incident", "goodwill", lang, link["channel"], kind=offer["kind"],
                                               amount=offer["amount"])  # fmt: skip
            message = OutboundMessage(link["channel"], link["sender"], text, link.get("conversation") or "",
                                      sender="system")  # fmt: skip
            try:
                await self.customers.deliver(message)
            except Exception as exc:  # one customer's channel failing must not stop the others
                log.warning("incident %s: follow-up not delivered (%s)", incident.id, type(exc).__name__)
                continue
            await self.store.mark_followed(incident.id, owner)
            told += 1
        if told:
            await self.store.count(incident.id, *["followups"] * told)
        return told

    async def changed(self, incident: Incident, event: str) -> None:
        """After a change made in this process: the cache now, the supervisors' consoles (other processes refresh
        through pub/sub)."""
        await self.refresh()
        await self.publish_event({"type": "incident_changed", "event": event, "incident": incident.to_json()})
