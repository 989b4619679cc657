"""The application factory: ``create_app(settings) -> web.Application``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bots.bss import BSS, BSSError
from bots.bss.demo import DEMO_DATA, DemoBSS
from bots.bss.http import HttpBSS
from bots.context import BotConfig, Services
from bots.engine import Bot
from bots.identity import Binder
from bots.ports import ConsoleSms, Handoff, SmsSender
from bots.rasa_bot import RasaBot, RasaClient, RasaConfig
from bots.state import FlowId, Slot
from bots.templates import Renderer
from gateway import edge, incident_sms, nlu_review_api, openapi, operators, redisconn, registry, tasks, vault, websec
from gateway.channels import sms
from gateway.embedded import EmbeddedRedis
from gateway.errors import REFUSALS, BadRequest, error_middleware, refusal
from gateway.fastredis import FastRedis
from gateway.host import AppHost
from gateway.keys import (
    CHANNELS,
    FAST_REDIS,
    METRICS,
    NLU_ENGINE,
    OUTBOXES,
    PIPELINE,
    REDIS,
    RKEYS,
    SERVER_KEY,
    SETTINGS,
)
from gateway.metrics import Metrics
from gateway.models import OutboundMessage
from gateway.pipeline import HEARTBEAT_TTL, Pipeline
from gateway.privacy_api import routes as privacy_routes
from gateway.retention import ctx as retention_ctx
from gateway.rkeys import Keys
from gateway.security import random_key
from gateway.settings import Settings
from handoff import api as handoff_api
from handoff.cases import api as cases_api
from handoff.config import HandoffConfig, load_handoff_config
from handoff.incidents import api as incidents_api
from handoff.incidents.config import load_incidents_config
from handoff.incidents.desk import Desk
from handoff.reports import api as reports_api
from handoff.reports.config import configure as configure_reports
from handoff.service import HandoffService
from nlu import NLU, NLUConfig, NLUInputError
from nlu import boot as nlu_boot

log = logging.getLogger(__name__)
EMBEDDED: web.AppKey[EmbeddedRedis] = web.AppKey("embedded_redis")
HANDOFF_CONFIG: web.AppKey[HandoffConfig] = web.AppKey("handoff_config")
KEYS_SOURCE: web.AppKey[str] = web.AppKey("keys_source")  # where the data keys came from (logged at start)
DEMO_AGENTS: web.AppKey[list[tuple[str, str, str, bool]]] = web.AppKey("demo_agents")  # name, password, role, new
HOST: web.AppKey[AppHost] = web.AppKey("host")


async def healthz(request: web.Request) -> web.Response:
    """200 when this process can take a message. Its check is a write (this process's heartbeat key), not a ping:
    a Redis that answers but refuses writes — full, unable to save, a replica — cannot take one either (503, with
    the cause and what to do)."""
    pipeline = request.config_dict[PIPELINE]
    try:
        await asyncio.wait_for(request.config_dict[REDIS].set(pipeline.keys.instance(pipeline.instance), "1",
                                                              ex=HEARTBEAT_TTL), 2.0)  # fmt: skip
    except (aioredis.RedisError, OSError, TimeoutError) as exc:
        code = refusal(exc)
        body = {"status": "unavailable", "redis": code or type(exc).__name__}
        if code:
            body["detail"] = REFUSALS[code]
        return web.json_response(body, status=503)
    channels = {name: state() for name, state in request.config_dict[CHANNELS].items()}
    return web.json_response({"status": "ok", "redis": "ok", "channels": channels})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.config_dict[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def model_parse(request: web.Request) -> web.Response:
    """Rasa-compatible ``POST /model/parse`` ``{"text"}``."""
    body = await edge.json_body(request, ParseBody, request.config_dict[SETTINGS].webchat.max_body_bytes)
    try:
        result = request.config_dict[PIPELINE].nlu.parse(body.text)
    except NLUInputError as exc:
        raise BadRequest(f"'text': {exc}", field="text") from None
    return web.json_response(result.to_rasa(), dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _redis_ctx(settings: Settings) -> object:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        embedded = None
        if settings.redis.url:
            counter = app[METRICS].redis_unconfirmed
            durability = redisconn.Durability(settings.redis.wait_replicas, settings.redis.wait_timeout_ms,
                                              lambda reason: counter.labels(reason).inc())  # fmt: skip
            client = redisconn.client(settings.redis.url, durability=durability)
        else:
            embedded = EmbeddedRedis(settings.data_dir / "redis", settings.redis.appendfsync)
            app[EMBEDDED] = embedded
            client = redisconn.unix_client(str(embedded.socket))
        try:
            if embedded:
                await embedded.start()
            await client.ping()
            app[SERVER_KEY] = await _server_key(client, app[RKEYS], settings)  # type: ignore[arg-type]
        except BaseException:  # a failed or stopped start-up (SIGTERM): no redis-server left behind, orphaned
            if embedded:
                await embedded.stop()
            raise
        if embedded:
            embedded.keep_running()  # started again if it exits on its own (a crash, the OOM killer)
        app[REDIS] = client  # type: ignore[assignment]  # a RedisCluster on a cluster: the same commands
        # the lean connection speaks to one server; on a cluster the message path uses RedisCluster
        cluster = redisconn.is_cluster(settings.redis.url)
        app[FAST_REDIS] = None if cluster else FastRedis(settings.redis.url or embedded.url)  # type: ignore[union-attr]
        yield
        if app[FAST_REDIS] is not None:
            await app[FAST_REDIS].aclose()
        await client.aclose()
        if isinstance(client, aioredis.Redis):
            await client.connection_pool.disconnect()
        if embedded:
            await embedded.stop()

    return ctx


async def _server_key(client: aioredis.Redis, keys: Keys, settings: Settings) -> bytes:
    """``GATEWAY_SECRET_KEY``, else a random key made once and kept in Redis (every process shares it)."""
    if settings.server.secret_key:
        return settings.server.secret_key.encode()
    await client.set(keys.server_key(), random_key(), nx=True)
    return bytes(await client.get(keys.server_key()) or b"")


class ParseBody(msgspec.Struct):
    """``POST /model/parse``"""

    text: str
    message_id: str | None = None


def load_nlu(settings: Settings) -> NLU:
    """Load the cached model; on the first start (or when the data or the settings changed) wait for
    the child process training it (``nlu.boot``: scikit-learn never stays resident in the server)."""
    folder = nlu_boot.ensure(settings.nlu.config or None, settings.nlu.data, settings.data_dir / "nlu")
    return NLU.from_dir(folder, NLUConfig.load(settings.nlu.config or None))


def make_backend(settings: Settings, redis: aioredis.Redis, keys: Keys, fast: FastRedis | None = None) -> BSS:
    """The operator back end the settings name: the demo data (default) or a real one over HTTP."""
    b = settings.bots
    if b.backend == "http":
        return HttpBSS(b.backend_url, auth_header=b.backend_auth, timeout=b.backend_timeout, retries=b.backend_retries,
                       failure_threshold=b.circuit_failures, reset_after=b.circuit_reset)  # fmt: skip
    return DemoBSS(redis, keys, Path(b.demo_data) if b.demo_data else DEMO_DATA, b.timezone, fast=fast)


def make_bot(settings: Settings, redis: aioredis.Redis, keys: Keys, bss: BSS, renderer: Renderer, handoff: Handoff,
             sms: SmsSender | None = None, incidents: Desk | None = None) -> Bot:  # fmt: skip
    b = settings.bots
    binder = Binder(redis, keys, code_ttl=b.otp_ttl, max_attempts=b.otp_attempts, resend_after=b.otp_resend_after,
                    binding_ttl=b.binding_ttl_days * 86400)  # fmt: skip
    services = Services(
        bss=bss, renderer=renderer, handoff=handoff, sms=sms or ConsoleSms(), binder=binder,
        config=BotConfig(confirm_ttl=b.confirm_ttl, timezone=b.timezone), incidents=incidents,
    )  # fmt: skip
    if b.engine == "rasa":  # a Rasa assistant answers (bots/rasa_bot.py); the gateway keeps handoff and survey
        rasa = RasaConfig(b.rasa_url, b.rasa_token, b.rasa_timeout, b.rasa_handoff_payload, b.rasa_handoff_intent,
                          b.rasa_handoff_action, b.rasa_resume_message)  # fmt: skip
        return RasaBot(services, RasaClient(rasa), redis, keys)
    return Bot(services)


def _history_secret(app: web.Application) -> bytes:
    """What the history's customer keys and search terms are hashed with: derived from the data keys' index key
    (outside Redis, so a copy of the data names no one), else the server key."""
    ring = app[RKEYS].vault
    return ring.derive("history") if ring is not None else app[SERVER_KEY]


def make_handoff(app: web.Application, settings: Settings, bss: BSS, renderer: Renderer) -> HandoffService:
    """The human side: queue, agents, SLA timers. What agents write reaches customers through the pipeline,
    which is built after the bot, which is built after this: ``PipelineCustomers`` (``handoff.ports.Customers``)
    finds ``app[PIPELINE]`` when it is used."""

    async def tier_of(phone: str) -> str:
        try:
            return (await bss.subscriber(phone)).tier
        except BSSError:
            return "normal"

    async def profile_of(phone: str, lang: str) -> dict[str, object]:
        sub = await bss.subscriber(phone)
        plans = {p.id: p for p in await bss.plans()}
        plan = plans.get(sub.plan)
        return {"tier": sub.tier, "plan": plan.name.get(lang) if plan else sub.plan, "district": sub.district,
                "name": sub.name.get(lang)}  # fmt: skip

    class PipelineCustomers:
        async def deliver(self, message: OutboundMessage) -> None:
            await app[PIPELINE].deliver(message)

        async def await_survey(self, channel: str, sender: str, conversation_id: str) -> None:
            await app[PIPELINE].set_slot(channel, sender, conversation_id, Slot(FlowId.SURVEY, "score", {}))

        async def await_answer(self, channel: str, sender: str, flow: str, step: str, data: dict[str, object]) -> None:
            conv = await app[REDIS].hget(app[RKEYS].sender(channel, sender), "conv")  # the current conversation
            await app[PIPELINE].set_slot(channel, sender, conv.decode() if conv else "", Slot(FlowId(flow), step, data))

    service = HandoffService(app[REDIS], app[RKEYS], app[HANDOFF_CONFIG], renderer, app[METRICS], PipelineCustomers(),
                             tier_of=tier_of, profile_of=profile_of, secret=_history_secret(app),
                             fast=app[FAST_REDIS])  # fmt: skip
    app[handoff_api.SERVICE] = service
    return service


async def _demo_agents(service: HandoffService, settings: Settings) -> list[tuple[str, str, str, bool]]:
    """Outside production, while no real agent exists, the demo agents of config/routing.yml (created
    on the first start; their credentials are printed at every start)."""
    if settings.server.production:
        return []
    existing = {a.name: a for a in await service.agents.all()}
    if any(not a.demo for a in existing.values()):
        return []
    made = []
    for a in service.config.demo_agents:
        if a.name not in existing:
            await service.agents.add(a.name, a.password, role=a.role, skills=a.skills, capacity=a.capacity,
                                     display_name=a.display_name, demo=True, names=a.names)  # fmt: skip
        made.append((a.name, a.password, a.role, a.name not in existing))
    return made


async def _follow_keys(keys: Keys) -> None:
    """Re-read the key file when it changes (``gateway keys rotate``): new values get the new active key."""
    while keys.vault is not None:
        await asyncio.sleep(1.0)
        try:
            keys.vault.refresh()
        except (vault.KeyringError, OSError) as exc:  # a half-edited file: the ring stays as it was
            log.warning("data keys: the key file could not be re-read (%s)", exc)


def _core_ctx(settings: Settings, nlu: NLU | None) -> object:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        engine = nlu or await asyncio.to_thread(load_nlu, settings)
        app[NLU_ENGINE] = engine
        bss = make_backend(settings, app[REDIS], app[RKEYS], app[FAST_REDIS])
        renderer = Renderer(sms_max_parts=settings.bots.sms_max_parts)
        handoff = make_handoff(app, settings, bss, renderer)
        sms_sender = None
        if settings.sms.enabled:  # one-time codes are texted through the SMS channel's outbox
            sms_sender = sms.OutboxSms(sms.outbox_of(app[HOST], settings))
        desk = app[incidents_api.DESK] = Desk(app[REDIS], app[RKEYS], load_incidents_config(), handoff.store.publish,
                                              handoff.callbacks.customers, renderer)  # fmt: skip
        desk.broadcasts.texter_source = incident_sms.source(app)  # SMS broadcasts of incident notices, if SMS is on
        bot = make_bot(settings, app[REDIS], app[RKEYS], bss, renderer, handoff, sms_sender, desk)
        pipeline = app[PIPELINE] = Pipeline(
            app[REDIS], app[RKEYS], engine, settings.pipeline, app[METRICS], bot, fast=app[FAST_REDIS],
            late_answer_timeout=settings.bots.late_answer_timeout, handoff=handoff,
        )  # fmt: skip
        app[DEMO_AGENTS] = await _demo_agents(handoff, settings)
        handoff.start()
        desk.start()
        gc.collect()
        gc.freeze()  # the model's vocabulary lives for the process: keep it out of every GC pass
        follower = asyncio.create_task(_follow_keys(app[RKEYS]), name="follow-keys")
        yield
        await tasks.stop(follower)
        await desk.stop()
        await handoff.stop()
        await pipeline.drain(settings.server.shutdown_timeout)
        await bss.close()
        if isinstance(bot, RasaBot):
            await bot.close()

    return ctx


def create_app(settings: Settings, nlu: NLU | None = None, handoff_config: HandoffConfig | None = None
               ) -> web.Application:  # fmt: skip
    """The gateway. ``nlu`` may be passed in (tests share one); otherwise it loads or trains at start-up."""
    app = web.Application(middlewares=[websec.middleware(settings), error_middleware],
                          client_max_size=max(settings.webchat.max_body_bytes, 1024**2))  # fmt: skip
    app[SETTINGS] = settings
    keyring, app[KEYS_SOURCE] = vault.deployment_keyring(settings.privacy.key_file, settings.data_dir,
                                                         settings.server.production)  # fmt: skip
    app[RKEYS] = Keys(settings.redis.key_prefix, keyring)
    app[CHANNELS] = {"rest": lambda: "ready", "webchat": lambda: "ready"}
    app[OUTBOXES] = {}
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_redis_ctx(settings))  # type: ignore[arg-type]
    app.cleanup_ctx.append(_core_ctx(settings, nlu))  # type: ignore[arg-type]
    app.cleanup_ctx.append(nlu_review_api.ctx(settings))  # the NLU learning loop: collection, model switches
    app.cleanup_ctx.append(retention_ctx(settings))  # the daily retention purge (one process of the deployment)
    app.add_routes([
        web.get("/healthz", healthz),
        web.get("/metrics", websec.guard_metrics(metrics)),
        web.post("/model/parse", model_parse),
    ])  # fmt: skip
    app[HANDOFF_CONFIG] = handoff_config or load_handoff_config(settings.source)
    app.add_routes(handoff_api.page_routes() + reports_api.page_routes() + cases_api.page_routes())
    app.add_routes(nlu_review_api.page_routes())
    app.add_routes(incidents_api.page_routes())
    app.add_subapp("/api", handoff_api.api_app(operators.routes() + reports_api.routes() + cases_api.routes()
                                               + nlu_review_api.routes() + incidents_api.routes()
                                               + privacy_routes()))  # fmt: skip
    configure_reports(settings.source)
    app[HOST] = AppHost(app, settings)
    registry.mount(app, settings, app[HOST])
    app.add_routes(openapi.routes())  # GET /openapi.json and /docs: the document of the routes above
    app.cleanup_ctx.append(handoff_api.hub_ctx)
    app.on_startup.append(tasks.stop_requested_in_start_up)  # after every cleanup_ctx's start
    return app
