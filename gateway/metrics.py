"""Prometheus metrics, one registry per app (so several apps can live in one test process).

Under ``gateway --workers N`` each worker counts in its own process, and a scrape of ``/metrics`` lands on whichever
worker the kernel gives the connection to; so the supervisor gives its workers one folder for prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``: each worker's values in memory-mapped files there), and every worker
answers ``/metrics`` with the sum over all of them (``exposition``). A worker that died keeps its counts in the sum
(counters never go back); its open sockets leave the gauges (``worker_exited``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

SHARED_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it when it is imported: set by the supervisor

REPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True, slots=True)
class ChannelMetrics:
    """One channel's labelled children, looked up once (``labels()`` is slow on the hot path)."""

    messages: Any
    duplicates: Any
    deadline_misses: Any
    reply_seconds: Any
    late_answer_seconds: Any
    throttled: Any


class Metrics:
    def __init__(self) -> None:
        self._channels: dict[str, ChannelMetrics] = {}
        self._intents: dict[str, Any] = {}
        self.registry = CollectorRegistry()
        self.reply_seconds = Histogram(
            "gateway_reply_seconds", "Time from receipt of a customer message to the reply, per channel "
            "(target: 5 s for automated answers)", ["channel"], buckets=REPLY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.messages = Counter(
            "gateway_messages_total", "Customer messages accepted", ["channel"], registry=self.registry
        )
        self.duplicates = Counter(
            "gateway_duplicates_total", "Duplicate deliveries answered from the first handling", ["channel"],
            registry=self.registry,
        )  # fmt: skip
        self.deadline_misses = Counter(
            "gateway_deadline_misses_total", "Turns that missed the reply deadline (the customer got "
            "\"checking…\", the answer followed)",
            ["channel"], registry=self.registry,
        )  # fmt: skip
        self.throttled = Counter(
            "gateway_throttled_total", "Messages refused (429) because their sender was over pipeline.sender_rate",
            ["channel"], registry=self.registry,
        )  # fmt: skip
        self.late_answer_seconds = Histogram(
            "gateway_late_answer_seconds", "Time from receipt to an answer delivered after the deadline "
            "(the customer got \"checking…\" first)", ["channel"], buckets=REPLY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.handoff_queued = Counter(
            "handoff_chats_queued_total", "Chats put in the human queue", registry=self.registry
        )
        self.handoff_wait_seconds = Histogram(
            "handoff_queue_wait_seconds", "Time from entering the queue to an agent taking the chat (target 15 s)",
            buckets=(1, 5, 10, 15, 30, 60, 120, 300, 600, 1800), registry=self.registry,
        )  # fmt: skip
        self.sla_breaches = Counter(
            "handoff_sla_breaches_total", "SLA clocks that ran out: pickup, first_reply, complaint_first_response",
            ["clock"], registry=self.registry,
        )  # fmt: skip
        self.agent_sockets = Gauge("handoff_agent_websockets", "Open agent console WebSockets", registry=self.registry,
                                   multiprocess_mode="livesum")  # fmt: skip
        self.outbox_queued = Counter(
            "outbox_queued_total", "Messages queued for a provider (SMS, Telegram…)", ["channel"],
            registry=self.registry,
        )  # fmt: skip
        self.outbox_sent = Counter(
            "outbox_sent_total", "Messages a provider accepted", ["channel"], registry=self.registry
        )
        self.outbox_retries = Counter(
            "outbox_retries_total", "Sends that failed and will be retried (outage, 5xx, 429)", ["channel"],
            registry=self.registry,
        )  # fmt: skip
        self.outbox_dead = Counter(
            "outbox_dead_total", "Messages given up on (refused for good, or out of attempts)", ["channel"],
            registry=self.registry,
        )  # fmt: skip
        self.outbox_send_seconds = Histogram(
            "outbox_send_seconds", "Time a provider took to accept a message", ["channel"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10), registry=self.registry,
        )  # fmt: skip
        self.sms_receipts = Counter(
            "sms_delivery_receipts_total", "SMS delivery receipts by final status", ["status"], registry=self.registry
        )
        self.sms_parts = Counter(
            "sms_parts_total", "SMS parts sent (a long message counts each part)", registry=self.registry
        )
        self.intents = Counter("gateway_intents_total", "Recognised intents", ["intent"], registry=self.registry)
        self.websockets = Gauge("gateway_websockets", "Open customer WebSockets", registry=self.registry,
                                multiprocess_mode="livesum")  # fmt: skip
        self.redis_unconfirmed = Counter(
            "gateway_redis_unconfirmed_writes_total", "Turns and queued replies answered without the confirmation "
            "of redis.wait_replicas replicas (short: WAIT timed out; no_replica: the master has none; migrating: "
            "its slot was moving): a failover of their master may lose them", ["reason"], registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "gateway_errors_total", "Unexpected errors while handling a request", registry=self.registry
        )

    def exposition(self) -> bytes:
        """``/metrics``: this app's registry; under a supervisor, the sum over every worker of the deployment (on
        this host)."""
        folder = os.environ.get(SHARED_ENV)
        if not folder:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, folder)
        return generate_latest(registry)

    def intent(self, name: str) -> Any:
        child = self._intents.get(name)
        if child is None:
            child = self._intents[name] = self.intents.labels(name)
        return child

    def channel(self, name: str) -> ChannelMetrics:
        found = self._channels.get(name)
        if found is None:
            found = self._channels[name] = ChannelMetrics(
                self.messages.labels(name), self.duplicates.labels(name), self.deadline_misses.labels(name),
                self.reply_seconds.labels(name), self.late_answer_seconds.labels(name), self.throttled.labels(name),
            )  # fmt: skip
        return found


METRICS: web.AppKey[Metrics] = web.AppKey("metrics")  # the application's metrics (also exported by gateway.keys)


# ---- the supervisor's side (gateway/workers.py) ------------------------------------------------------------
def prepare_shared(folder: Path) -> None:
    """The workers' metrics folder, emptied: a new deployment's counters start at 0 (as one process's do)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.db"):
        old.unlink(missing_ok=True)


def worker_exited(pid: int, folder: Path) -> None:
    """A worker is gone: its open sockets are no longer open (its counters stay in the sum)."""
    multiprocess.mark_process_dead(pid, str(folder))
