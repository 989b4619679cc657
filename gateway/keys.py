"""Typed application state keys, declared in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from aiohttp import web

from gateway.metrics import METRICS

if TYPE_CHECKING:
    from gateway.fastredis import FastRedis
    from gateway.outbox import Outbox
    from gateway.pipeline import Pipeline
    from gateway.rkeys import Keys
    from gateway.settings import Settings
    from nlu import NLU

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
RKEYS: web.AppKey[Keys] = web.AppKey("rkeys")
NLU_ENGINE: web.AppKey[NLU] = web.AppKey("nlu")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")
FAST_REDIS: web.AppKey[FastRedis | None] = web.AppKey("fast_redis")  # the message path's lean connection (no Cluster)
CHANNELS: web.AppKey[dict[str, Callable[[], str]]] = web.AppKey("channels")  # name → its state, for /healthz
OUTBOXES: web.AppKey[dict[str, Outbox]] = web.AppKey("outboxes")  # channel → its outbox, for operators
__all__ = [
    "CHANNELS",
    "FAST_REDIS",
    "METRICS",
    "NLU_ENGINE",
    "OUTBOXES",
    "PIPELINE",
    "REDIS",
    "RKEYS",
    "SERVER_KEY",
    "SETTINGS",
]
SERVER_KEY: web.AppKey[bytes] = web.AppKey("server_key")  # signs visitor ids (GATEWAY_SECRET_KEY or made once)
