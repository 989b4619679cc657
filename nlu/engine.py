"""The NLU facade: ``NLU.load()`` then ``nlu.parse(text)``.

The trained artifact is cached under a folder keyed by a hash of the training data, the model
settings and the feature code, and trained automatically on first use.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from nlu import features as features_module
from nlu import model as model_module
from nlu.config import NLUConfig
from nlu.data import COMPLAINT_TYPES, Example, data_files, lang_of
from nlu.data import load as load_examples
from nlu.entities import Entity, EntityExtractor
from nlu.features import features
from nlu.model import FORMAT_VERSION, LinearModel, fit, vectorise
from nlu.normalize import normalise, validate
from nlu.remote import RasaBackend, RemoteParse
from nlu.urgency import urgency

FALLBACK_INTENT = "nlu_fallback"


class Ranked(NamedTuple):
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ParseResult:
    text: str
    intent: str
    confidence: float
    intent_ranking: tuple[Ranked, ...]
    complaint_type: str | None
    complaint_type_confidence: float | None
    lang: str
    entities: tuple[Entity, ...]
    urgency: int

    @property
    def top_intent(self) -> str:
        """The best-ranked real intent, even when the result is ``nlu_fallback`` (a Rasa back end ranks its own
        ``nlu_fallback`` too: skipped here)."""
        return next((r.name for r in self.intent_ranking if r.name != FALLBACK_INTENT), self.intent_ranking[0].name)

    def to_flat(self) -> dict[str, Any]:
        """The ``python -m nlu predict`` line."""
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "intent_ranking": [{"name": r.name, "confidence": round(r.confidence, 4)} for r in self.intent_ranking],
            "complaint_type": self.complaint_type,
            "complaint_type_confidence": _round(self.complaint_type_confidence),
            "lang": self.lang,
            "entities": [e.to_dict() for e in self.entities],
            "urgency": self.urgency,
        }

    def to_rasa(self) -> dict[str, Any]:
        """Rasa's ``/model/parse`` shape plus ``complaint_type``, ``lang`` and ``urgency``."""
        flat = self.to_flat()
        flat["intent"] = {"name": self.intent, "confidence": flat.pop("confidence")}
        return flat

    def to_json(self) -> str:
        return json.dumps(self.to_flat(), ensure_ascii=False)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def default_cache_dir() -> Path:
    return Path(os.environ.get("NLU_CACHE_DIR", "var/nlu"))


def artifact_key(files: Sequence[Path], config: NLUConfig) -> str:
    digest = hashlib.sha256()
    digest.update(f"format={FORMAT_VERSION}".encode())
    digest.update(json.dumps(asdict(config.model), sort_keys=True).encode())
    digest.update(inspect.getsource(features_module).encode())
    digest.update(inspect.getsource(model_module).encode())
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TrainReport:
    path: Path
    seconds: float
    examples: int
    features: int
    size_bytes: int


def train_models(
    examples: Sequence[Example], config: NLUConfig, progress: Callable[[str], None] | None = None
) -> tuple[LinearModel, LinearModel]:
    """The intent model and the complaint-type model; the features are computed once for both."""
    matrix = vectorise([normalise(e.text).model for e in examples], config.model.min_df)
    if progress:
        progress(f"{matrix.rows.shape[0]} examples, {matrix.rows.shape[1]} features")
    intent_model = fit(matrix, [e.intent for e in examples], config.model)
    if progress:
        progress(f"intents: {len(intent_model.classes)}")
    rows = [i for i, e in enumerate(examples) if e.complaint_type]
    type_model = fit(matrix.subset(rows), [examples[i].complaint_type or "" for i in rows], config.model)
    if progress:
        progress(f"complaint types: {len(type_model.classes)}")
    return intent_model, type_model


class _Steps:
    """Progress of a training run: a bar on a terminal, else one line per step (logs of a service)."""

    TOTAL = 5

    def __init__(self, show: bool, interactive: bool) -> None:
        from tqdm import tqdm

        self.started = time.perf_counter()
        self.lines = show and not interactive
        self.bar = tqdm(total=self.TOTAL, desc="nlu train", unit="step", disable=not (show and interactive),
                        leave=False, bar_format="{desc}: {bar} {n_fmt}/{total_fmt} {elapsed} {postfix}")  # fmt: skip
        self.done = 0

    def __call__(self, message: str) -> None:
        self.done += 1
        self.bar.set_postfix_str(message)
        self.bar.update(1)
        if self.lines:
            elapsed = time.perf_counter() - self.started
            print(f"nlu train [{self.done}/{self.TOTAL}] {message} ({elapsed:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def train_to_dir(
    config: NLUConfig, data: Sequence[Path | str] | None, out: Path, show_progress: bool = True
) -> TrainReport:
    started = time.perf_counter()
    files = data_files(data)
    steps = _Steps(show_progress, sys.stderr.isatty())
    try:
        examples = load_examples(files)
        steps(f"read {len(examples)} examples")
        intent_model, type_model = train_models(examples, config, steps)
        missing = set(COMPLAINT_TYPES) - set(type_model.classes)
        if missing:
            raise ValueError(f"training data has no examples of complaint type(s): {', '.join(sorted(missing))}")
        meta = {"examples": len(examples), "files": [str(f) for f in files], "trained_at": datetime.now().isoformat()}
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        tmp.mkdir(exist_ok=True)
        intent_model.save(tmp / "intent", meta)
        type_model.save(tmp / "complaint_type", meta)
        names = sorted(p.name for p in tmp.iterdir())
        names.sort(key=lambda name: name == "complaint_type.json")
        try:  # the whole model at once: processes training the same model side by side never mix their files
            tmp.rename(out)
        except OSError:  # the folder exists: another process published first (keep its model), or it is empty
            if not (out / "complaint_type.json").exists():
                for name in names:  # file by file, complaint_type.json last: loaders take it as the sign
                    (tmp / name).replace(out / name)  # that the model is complete
            shutil.rmtree(tmp, ignore_errors=True)
        steps(f"saved to {out}")
    finally:
        steps.close()
    size = sum((out / name).stat().st_size for name in names)
    return TrainReport(out, time.perf_counter() - started, len(examples), len(intent_model.vocab), size)


class NLU:
    """Intent, complaint type, entities, language and urgency for one message."""

    def __init__(self, intent_model: LinearModel, type_model: LinearModel, config: NLUConfig) -> None:
        self.config = config
        self._intents = intent_model
        self._types = type_model
        self._entities = EntityExtractor(config.gazetteer)
        self._remote = (
            RasaBackend(config.backend.url, config.backend.timeout) if config.backend.kind == "rasa" else None
        )
        # Results by exact text (the embedded model only: it answers the same text the same way all day). Customers
        # send the same short messages again and again; a result holds relative dates ("上个月"), so the cache
        # is for one local day. Least recently used first out.
        self._cache: dict[str, ParseResult] = {}
        self._cache_size = config.cache_size if self._remote is None else 0
        self._cache_until = 0.0

    @classmethod
    def load(
        cls,
        config: NLUConfig | None = None,
        data: Sequence[Path | str] | None = None,
        cache_dir: Path | None = None,
        show_progress: bool = False,
    ) -> NLU:
        """Load the cached model for ``data`` + ``config``, training it first if there is none."""
        config = config or NLUConfig.load()
        files = data_files(data)
        folder = (cache_dir or default_cache_dir()) / artifact_key(files, config)
        if not (folder / "complaint_type.json").exists():
            train_to_dir(config, files, folder, show_progress)
        return cls.from_dir(folder, config)

    @classmethod
    def from_dir(cls, folder: Path, config: NLUConfig | None = None) -> NLU:
        config = config or NLUConfig.load()
        return cls(LinearModel.load(folder / "intent"), LinearModel.load(folder / "complaint_type"), config)

    @property
    def cached(self) -> int:
        """How many parse results the cache holds."""
        return len(self._cache)

    @property
    def is_remote(self) -> bool:
        """True when parsing calls a Rasa server (blocking I/O: run it off the event loop)."""
        return self._remote is not None

    @property
    def intents(self) -> tuple[str, ...]:
        return self._intents.classes

    def parse(self, text: str, now: date | None = None) -> ParseResult:
        if now is not None or not self._cache_size:
            return self._parse(text, now)
        cache = self._cache
        if time.time() >= self._cache_until:  # a new day: "yesterday" means another date now
            cache.clear()
            tomorrow = date.today() + timedelta(days=1)
            self._cache_until = datetime.combine(tomorrow, datetime.min.time()).timestamp()
        result = cache.pop(text, None)
        if result is None:
            result = self._parse(text, None)
            if len(cache) >= self._cache_size:
                del cache[next(iter(cache))]
        cache[text] = result
        return result

    def _parse(self, text: str, now: date | None) -> ParseResult:
        validate(text, self.config.max_length)
        norm = normalise(text)
        remote = self._remote.parse(text) if self._remote else None
        ranking = self._remote_ranking(remote) if remote else None
        grams = features(norm.model)
        if ranking is None:
            probs = self._intents.proba(self._intents.indices(grams))
            order = probs.argsort()[::-1][:10].tolist()
            classes = self._intents.classes
            ranking = tuple(map(Ranked, [classes[i] for i in order], probs[order].tolist()))
        real = [r for r in ranking if r.name != FALLBACK_INTENT]  # Rasa's own nlu_fallback stays in the ranking
        top = real[0] if real else Ranked(FALLBACK_INTENT, ranking[0].confidence)
        second = real[1].confidence if len(real) > 1 else 0.0
        fallback = self.config.fallback
        is_fallback = ranking[0].name == FALLBACK_INTENT or top.confidence < fallback.threshold \
            or top.confidence - second < fallback.ambiguity_threshold  # fmt: skip
        ctype, cconf = None, None
        if top.name == "complaint" and not is_fallback:
            ctype, cconf = self._complaint_type(grams)
            if remote is not None and remote.complaint_type in self._types.classes:  # Rasa's complaint/<type>
                ctype, cconf = remote.complaint_type, remote.complaint_type_confidence or cconf
        return ParseResult(
            text=text,
            intent=FALLBACK_INTENT if is_fallback else top.name,
            confidence=top.confidence,
            intent_ranking=ranking,
            complaint_type=ctype,
            complaint_type_confidence=cconf,
            lang=lang_of(text),
            entities=tuple(self._entities.extract(norm.aligned, now or date.today())),
            urgency=urgency(norm.aligned),
        )

    def complaint_type(self, model_text: str) -> tuple[str, float]:
        """The complaint type of a text already known to be a complaint."""
        return self._complaint_type(features(model_text))

    def _complaint_type(self, grams: list[str]) -> tuple[str, float]:
        probs = self._types.proba(self._types.indices(grams))
        best = int(probs.argmax())
        return self._types.classes[best], float(probs[best])

    def _remote_ranking(self, remote: RemoteParse) -> tuple[Ranked, ...] | None:
        """Rasa's intents known here, and its ``nlu_fallback`` (first when Rasa fell back, as Rasa ranks it)."""
        known = sorted(
            (Ranked(name, conf) for name, conf in remote.ranking
             if name in self._intents.classes or name == FALLBACK_INTENT),
            key=lambda r: (r.name != FALLBACK_INTENT or remote.ranking[0][0] != FALLBACK_INTENT, -r.confidence),
        )  # fmt: skip
        return tuple(known) or None
