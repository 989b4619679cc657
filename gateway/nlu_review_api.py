"""The NLU learning loop, HTTP: the review page, its API, an agent's re-label, and the wiring into the app.

Supervisors (``@requires("supervisor")``):

* ``GET /nlu/review`` — the page (zh/en); ``GET /api/nlu/review?lang=zh|en`` — the samples waiting, the labels,
  the review file's size, the active model and the last retrain;
* ``POST /api/nlu/review/{id} {"action": "accept"|"label"|"out_of_scope"|"discard", "intent"?}`` — accept the
  suggestion (an agent's label, else the model's guess), give another label, mark it out of scope (each goes to
  the review file), or drop it;
* ``POST /api/nlu/retrain`` then ``GET /api/nlu/retrain`` — a retrain in a child process and its result (the
  cross-validated accuracies); ``POST /api/nlu/switch {"model"}`` — every process loads it (409 when it is worse
  than the current model, or the current model changed since it was measured); ``GET /api/nlu/model``.

The agent holding a chat (or a supervisor): ``GET /api/chats/{id}/nlu`` — the customer's messages with what
the bot understood; ``POST /api/chats/{id}/relabel {"ref", "intent"}`` — "the bot misunderstood: it was …"
(``ref``: the message's entry in the conversation log, from the former).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import redis.asyncio as aioredis
import yaml
from aiohttp import web

from gateway import audit, websec
from gateway.edge import json_body
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.keys import PIPELINE, REDIS, RKEYS
from gateway.nlu_review import Collector, ReviewStore, retrain_base, review_dir
from gateway.nlu_review_models import Follower, Models, Retrainer
from gateway.pages import page
from gateway.settings import Settings
from handoff.api import SERVICE, agent_of, path_id, requires
from handoff.auth import BODY_LIMIT
from nlu import NLUConfig
from nlu.data import DataError
from nlu.normalize import has_cjk
from nlu.review import add_examples, base_key, labels, read_review

log = logging.getLogger(__name__)
LABEL_NAMES = Path(__file__).resolve().parent.parent / "templates" / "bots" / "labels.yml"
REF = re.compile(r"\d{1,20}-\d{1,20}")


@dataclass
class Loop:
    collector: Collector
    store: ReviewStore
    models: Models
    follower: Follower
    retrainer: Retrainer
    review_file: Path
    tolerance: float
    names: dict[str, dict[str, str]]


LOOP: web.AppKey[Loop] = web.AppKey("nlu_review")


def label_names() -> dict[str, dict[str, str]]:
    """Every review label's name in zh and en (``templates/bots/labels.yml``)."""
    raw = yaml.safe_load(LABEL_NAMES.read_text(encoding="utf-8"))
    intents, types = raw.get("intents", {}), raw.get("complaint_types", {})
    out = {}
    for label in labels():
        base, _, sub = label.partition("/")
        name = dict(intents.get(base) or {"zh": base, "en": base})
        if sub:
            kind = types.get(sub) or {"zh": sub, "en": sub}
            name = {"zh": f"投诉 · {kind['zh']}", "en": f"Complaint · {kind['en']}"}
        out[label] = name
    return out


def check_label(value: str | None) -> str:
    if not value or value not in labels():
        raise BadRequest(f"'intent' must be one of: {', '.join(labels())}", zh="意图无效，请从列表中选择",
                         field="intent")  # fmt: skip
    return value


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


# ---- request bodies --------------------------------------------------------------------------------------
Label = Annotated[str, msgspec.Meta(max_length=64)]


class DecisionIn(msgspec.Struct):
    action: Literal["accept", "label", "out_of_scope", "discard"]
    intent: Label | None = None


class SwitchIn(msgspec.Struct):
    model: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{12}$")]


class RelabelIn(msgspec.Struct):
    ref: Annotated[str, msgspec.Meta(max_length=48)]
    intent: Label


# ---- supervisors -------------------------------------------------------------------------------------------
async def _model_view(request: web.Request) -> dict[str, Any]:
    loop = request.config_dict[LOOP]
    active = await loop.models.active()
    if active:
        active = {k: v for k, v in active.items() if k != "review_keys"}
    return {"active": active, "serving": loop.follower.serving}


@requires("supervisor", "review the NLU's samples", "仅主管和管理员可审核NLU样本")
async def review_list(request: web.Request) -> web.Response:
    loop = request.config_dict[LOOP]
    lang = request.query.get("lang") or None
    if lang not in (None, "zh", "en"):
        raise BadRequest("'lang' must be zh or en", zh="lang 只能是 zh 或 en", field="lang")
    samples = await loop.store.pending(lang)
    reviewed = await asyncio.to_thread(read_review, loop.review_file)
    return _json({"samples": samples[:500], "total": len(samples), "labels": list(labels()), "names": loop.names,
                  "review_file": {"path": str(loop.review_file), "examples": len(reviewed)},
                  "model": await _model_view(request), "job": await loop.retrainer.job()})  # fmt: skip


@requires("supervisor", "review the NLU's samples", "仅主管和管理员可审核NLU样本")
async def decide(request: web.Request) -> web.Response:
    loop = request.config_dict[LOOP]
    ident = request.match_info["id"]
    if not re.fullmatch(r"[0-9a-f]{16}", ident):
        raise BadRequest("'id' is not a sample id", zh="样本编号无效", field="id")
    body = await json_body(request, DecisionIn, BODY_LIMIT)
    if body.action == "label":
        check_label(body.intent)
    sample = await loop.store.claim(ident)
    if sample is None:
        raise Conflict("this sample was decided already or is gone", zh="该样本已被处理或已过期", field="id")
    label = {"accept": sample.get("agent_label") or sample.get("guess"), "label": body.intent,
             "out_of_scope": "out_of_scope", "discard": None}[body.action]  # fmt: skip
    examples = None
    if label is not None:
        try:
            examples = await asyncio.to_thread(add_examples, loop.review_file, [(check_label(label), sample["text"])])
        except (OSError, DataError, BadRequest):
            await loop.store.restore(sample)
            raise
    return _json({"id": ident, "action": body.action, "label": label, "review_examples": examples})


@requires("supervisor", "retrain the NLU", "仅主管和管理员可重新训练NLU")
async def retrain(request: web.Request) -> web.Response:
    loop = request.config_dict[LOOP]
    if not await loop.retrainer.start(agent_of(request).name):
        raise Conflict("a retrain is running already", zh="已有重新训练正在进行")
    return _json({"job": await loop.retrainer.job()}, status=202)


@requires("supervisor", "retrain the NLU", "仅主管和管理员可重新训练NLU")
async def retrain_status(request: web.Request) -> web.Response:
    loop = request.config_dict[LOOP]
    return _json({"job": await loop.retrainer.job(), "model": await _model_view(request)})


@requires("supervisor", "switch the NLU model", "仅主管和管理员可切换NLU模型")
async def switch(request: web.Request) -> web.Response:
    loop = request.config_dict[LOOP]
    ident = (await json_body(request, SwitchIn, BODY_LIMIT)).model
    meta = await loop.models.meta(ident)
    if meta is None:
        raise NotFound("no such model (a retrained model not switched to is kept a day)",
                       zh="没有该模型（未切换的新模型保留一天）", field="model")  # fmt: skip
    active = await loop.models.active()
    if (active["id"] if active else "") != meta.get("against", ""):
        raise Conflict("the model in use changed since this one was measured; retrain again",
                       zh="当前模型在评估后已变更，请重新训练", field="model")  # fmt: skip
    if meta["accuracy"] < meta["current_accuracy"] - loop.tolerance:
        raise Conflict(
            f"refused: the new model is worse (cross-validated accuracy {meta['accuracy']:.3f}, "
            f"current {meta['current_accuracy']:.3f})",
            zh=f"已拒绝：新模型更差（交叉验证准确率 {meta['accuracy']:.3f}，当前 {meta['current_accuracy']:.3f}）",
            field="model",
        )
    record = await loop.models.switch(ident, agent_of(request).name)
    await audit.record(request.config_dict[REDIS], request.config_dict[RKEYS], agent_of(request).name,
                       "config_change", where=websec.client_key(request), setting="nlu.model", value=ident,
                       before=active["id"] if active else "")  # fmt: skip
    await loop.follower.sync()  # this process at once; the others on the notice
    return _json({"active": {k: v for k, v in record.items() if k != "review_keys"},
                  "serving": loop.follower.serving})  # fmt: skip


@requires("supervisor", "see the NLU model", "仅主管和管理员可查看NLU模型")
async def model_info(request: web.Request) -> web.Response:
    return _json(await _model_view(request))


# ---- the agent holding the chat ------------------------------------------------------------------------------
async def chat_nlu(request: web.Request) -> web.Response:
    views = request.config_dict[SERVICE].views
    chat = await views.readable(agent_of(request), path_id(request))
    redis = request.config_dict[REDIS]
    out = []
    keys = request.config_dict[RKEYS]
    for ref, fields in await redis.xrange(chat.log):
        entry = json.loads(keys.unseal(fields[b"e"]))
        if entry.get("kind") == "customer" and entry.get("text") and not str(entry["text"]).startswith("/"):
            nlu = entry.get("nlu") or {}
            out.append({"ref": ref.decode(), "text": entry["text"], "intent": nlu.get("intent"),
                        "confidence": nlu.get("confidence"), "at": entry.get("at")})  # fmt: skip
    return _json({"messages": out, "labels": list(labels()), "names": request.config_dict[LOOP].names})


async def relabel(request: web.Request) -> web.Response:
    service, agent = request.config_dict[SERVICE], agent_of(request)
    chat = await service.views.readable(agent, path_id(request))
    body = await json_body(request, RelabelIn, BODY_LIMIT)
    if not REF.fullmatch(body.ref):
        raise BadRequest("'ref' is not a message reference", zh="消息引用无效", field="ref")
    label = check_label(body.intent)
    found = await request.config_dict[REDIS].xrange(chat.log, body.ref, body.ref)
    entry = json.loads(request.config_dict[RKEYS].unseal(found[0][1][b"e"])) if found else {}
    text = str(entry.get("text") or "")
    if entry.get("kind") != "customer" or not text or text.startswith("/"):
        raise NotFound("no customer message with this reference in this chat", zh="该会话中没有这条客户消息",
                       field="ref")  # fmt: skip
    nlu = entry.get("nlu") or {}
    guess = nlu.get("intent")
    if guess == "complaint" and nlu.get("complaint_type"):
        guess = f"complaint/{nlu['complaint_type']}"
    sample = await request.config_dict[LOOP].collector.label(
        text,
        str(nlu.get("lang") or ("zh" if has_cjk(text) else "en")),
        guess if guess in labels() else None,
        nlu.get("confidence"),
        label,
        agent.name,
    )
    return _json({"sample": {k: v for k, v in sample.items() if k != "labelled_by"}})


# ---- routes ------------------------------------------------------------------------------------------------
def routes() -> list[web.RouteDef]:
    """Routes of the ``/api`` sub-application (``handoff.api.api_app``)."""
    return [
        web.get("/nlu/review", review_list),
        web.post("/nlu/review/{id}", decide),
        web.post("/nlu/retrain", retrain),
        web.get("/nlu/retrain", retrain_status),
        web.post("/nlu/switch", switch),
        web.get("/nlu/model", model_info),
        web.get("/chats/{id}/nlu", chat_nlu),
        web.post("/chats/{id}/relabel", relabel),
    ]


def page_routes() -> list[web.RouteDef]:
    return [web.get("/nlu/review", page("pages/nlu_review.html"))]


def ctx(settings: Settings) -> Any:
    """The loop in this process (after the core: it needs the pipeline): collection on, the active model
    loaded before the first message, the follower listening for switches."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        redis, keys, pipeline = app[REDIS], app[RKEYS], app[PIPELINE]
        config = NLUConfig.load(settings.nlu.config or None)
        base = retrain_base(settings)
        key = base_key(base, config)
        folder = review_dir(settings)
        models = Models(redis, keys)

        def install(engine: Any) -> None:
            pipeline.nlu = engine  # one assignment: each message sees the old model or the new one

        follower = Follower(models, settings.data_dir / "nlu", key, config, install)
        collector = Collector(redis, keys, settings.nlu)
        loop = Loop(collector=collector, store=ReviewStore(redis, keys, settings.nlu), models=models,
                    follower=follower,
                    retrainer=Retrainer(models, folder / "review.yml", folder / "work", base, settings.nlu.config,
                                        settings.nlu.retrain_folds, key, settings.nlu.retrain_tolerance),
                    review_file=folder / "review.yml", tolerance=settings.nlu.retrain_tolerance,
                    names=label_names())  # fmt: skip
        app[LOOP] = loop
        try:  # the active model from the first message on; without it, the follower keeps trying
            await follower.sync()
        except (aioredis.RedisError, OSError, KeyError) as exc:
            log.warning("NLU model: the active model could not be loaded at start-up (%s)", type(exc).__name__)
        follower.start()
        collector.start()
        pipeline.observe = lambda result: collector.offer(pipeline.nlu, result)
        yield
        pipeline.observe = None
        await collector.stop()
        await follower.stop()
        await loop.retrainer.stop()

    return run
