"""The learning loop's training side: the review file of accepted examples, and retraining with them.

The review file is Rasa NLU YAML (``version: "3.1"``, ``nlu: - intent: … examples: |``), the format of
``nlu/data``: supervisors' decisions on ``/nlu/review`` are appended to it (one writer at a time: a lock file
beside it; written to a temporary file and renamed, so a reader never sees half a file). It lives in the
deployment's data folder, never in the repository.

``retrain`` trains on the base data plus the review file. Before that it cross-validates (stratified folds over
base and reviewed examples): each fold trains one model with every reviewed example and one without those the
current model has not seen, and both are scored on the same held-out examples. The decisive figure is the
accuracy on the base data's examples — the curated data a wrong label would hurt (the reviewed examples'
own accuracy is shown beside it, but a model always agrees with the labels it was given). A switch to a model
that scores worse there is refused.

``python -m nlu.review retrain …`` runs ``retrain`` in a child process (the gateway keeps scikit-learn out of its
own memory): progress and the result as JSON lines on standard output.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nlu.config import ConfigError, NLUConfig
from nlu.data import COMPLAINT_TYPES, INTENTS, DataError, Example, data_files, load_rasa_yaml
from nlu.data import load as load_examples
from nlu.engine import NLU, artifact_key, train_models, train_to_dir

HEADER = (
    "# Examples accepted on /nlu/review (the NLU learning loop); `gateway nlu retrain` trains on them with the\n"
    "# bundled data. Rasa NLU YAML: it can be copied into nlu/data or a Rasa project as it is.\n"
)
_ANNOTATION_LIKE = re.compile(r"\[([^\]]*)\](?=[({])")


def labels() -> tuple[str, ...]:
    """Every label a reviewed example may have: the intents, with complaints by type (``complaint/network``)."""
    return tuple(x for i in INTENTS for x in ([f"complaint/{t}" for t in COMPLAINT_TYPES] if i == "complaint" else [i]))


def label_of(example: Example) -> str:
    return f"{example.intent}/{example.complaint_type}" if example.complaint_type else example.intent


def example_key(label: str, text: str) -> str:
    """A reviewed example's identity (label and text): which ones a trained model has seen."""
    return hashlib.sha1(f"{label}\x00{text}".encode()).hexdigest()[:12]


def clean_text(text: str) -> str:
    """One line, as an example line of a Rasa file holds it: whitespace collapsed, nothing read as an entity
    annotation (``[x](y)`` keeps its words; the brackets become full-width)."""
    line = " ".join(text.split())
    return _ANNOTATION_LIKE.sub(lambda m: f"［{m.group(1)}］", line)


def read_review(path: Path) -> list[Example]:
    """The accepted examples (none when the file does not exist yet)."""
    return load_rasa_yaml(path) if path.exists() else []


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_examples(path: Path, items: Iterable[tuple[str, str]]) -> int:
    """Add ``(label, text)`` pairs to the review file; a text already there with another label takes the new one
    (the latest decision wins). Returns how many examples the file holds."""
    valid = set(labels())
    wanted = []
    for label, text in items:
        if label not in valid:
            raise DataError(f"unknown label {label!r}; expected one of {', '.join(sorted(valid))}")
        line = clean_text(text)
        if line:
            wanted.append((label, line))
    with _locked(path):
        current = {e.text: label_of(e) for e in read_review(path)}
        for label, line in wanted:
            current.pop(line, None)
            current[line] = label
        by_label: dict[str, list[str]] = {}
        for line, label in current.items():
            by_label.setdefault(label, []).append(line)
        parts = [HEADER, 'version: "3.1"\n', "nlu:\n"]
        for label in sorted(by_label):
            parts.append(f"- intent: {label}\n  examples: |\n")
            parts.extend(f"    - {line}\n" for line in by_label[label])
        if not by_label:
            parts[-1] = "nlu: []\n"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(parts), encoding="utf-8")
        os.replace(tmp, path)
        return len(current)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model trained with the review file, and how it compares with one trained without the new examples."""

    folder: str
    base_key: str  # which base data and settings it was trained on (``base_key``)
    accuracy: float  # cross-validated intent accuracy on the base examples, trained with every reviewed example
    current_accuracy: float  # the same folds and examples, trained without the ones the current model has not seen
    reviewed_accuracy: float | None  # on the reviewed examples (trained with the others)
    reviewed_current_accuracy: float | None  # … and without the new ones
    examples: int
    reviewed: int  # examples in the review file
    new: int  # reviewed examples the current model has not seen
    folds: int
    seconds: float
    review_keys: tuple[str, ...]

    def worse(self, tolerance: float = 0.0) -> bool:
        return self.accuracy < self.current_accuracy - tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "review_keys": list(self.review_keys)}


def base_key(base: Sequence[Path], config: NLUConfig) -> str:
    """The identity of the base data and NLU settings a reviewed model builds on: a model made on other ones
    (the data changed with an upgrade) is not switched to."""
    return artifact_key(base, config)


def retrain(
    base: Sequence[Path], review: Path, config: NLUConfig, seen: Iterable[str], out: Path, folds: int = 3,
    progress: Callable[[str], None] | None = None, seed: int = 13,
) -> Candidate:  # fmt: skip
    """Cross-validate with and without the new reviewed examples (``seen``: the keys of the reviewed examples
    the current model was trained on), then train the new model on everything into ``out``."""
    from sklearn.model_selection import StratifiedKFold

    started = time.perf_counter()
    say = progress or (lambda _: None)
    base_examples = load_examples(base)
    reviewed = read_review(review)
    keys = tuple(example_key(label_of(e), e.text) for e in reviewed)
    known = set(seen)
    examples = [*base_examples, *reviewed]
    current = [True] * len(base_examples) + [k in known for k in keys]
    is_reviewed = [False] * len(base_examples) + [True] * len(reviewed)
    strata = [f"{e.intent}/{e.complaint_type or ''}/{e.lang}" for e in examples]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    right = {"new": 0, "current": 0, "new_reviewed": 0, "current_reviewed": 0}
    with warnings.catch_warnings():  # a label with fewer examples than folds: sklearn warns, the folds are fine
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(examples, strata))
    for fold, (train_idx, test_idx) in enumerate(splits, 1):
        say(f"fold {fold}/{folds}")
        for name, chosen in (("new", train_idx), ("current", [i for i in train_idx if current[i]])):
            nlu = NLU(*train_models([examples[i] for i in chosen], config), config)
            for i in test_idx:
                hit = nlu.parse(examples[i].text).top_intent == examples[i].intent
                right[f"{name}_reviewed" if is_reviewed[i] else name] += hit
    say("training the new model")
    train_to_dir(config, [*base, *([review] if reviewed else [])], out, show_progress=False)
    n_base, n_reviewed = len(base_examples), len(reviewed)
    return Candidate(
        folder=str(out), base_key=base_key(base, config), accuracy=right["new"] / n_base,
        current_accuracy=right["current"] / n_base,
        reviewed_accuracy=right["new_reviewed"] / n_reviewed if n_reviewed else None,
        reviewed_current_accuracy=right["current_reviewed"] / n_reviewed if n_reviewed else None,
        examples=len(examples), reviewed=n_reviewed, new=sum(1 for k in keys if k not in known), folds=folds,
        seconds=round(time.perf_counter() - started, 2), review_keys=keys,
    )  # fmt: skip


# ---- the child process: ``python -m nlu.review retrain …`` -------------------------------------------------
def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, ensure_ascii=False), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlu.review", description="retrain the NLU with reviewed examples")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("retrain", help="JSON lines on stdout: {progress} …, then {result} or {error}")
    run.add_argument("--base", type=Path, action="append", help="base data file or folder (default: bundled)")
    run.add_argument("--review", type=Path, required=True)
    run.add_argument("--seen", type=Path, help="file of the keys the current model has seen, one a line")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--config", type=Path, help="override file for nlu/config.yml")
    run.add_argument("--folds", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        if args.folds < 2:
            raise DataError("--folds must be at least 2")
        config = NLUConfig.load(args.config)
        seen = args.seen.read_text(encoding="utf-8").split() if args.seen else []
        candidate = retrain(data_files(args.base), args.review, config, seen, args.out, args.folds,
                            lambda msg: _emit({"progress": msg}))  # fmt: skip
    except (ConfigError, DataError, ValueError, OSError) as exc:
        _emit({"error": str(exc)})
        return 2
    _emit({"result": candidate.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
