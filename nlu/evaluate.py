"""Evaluation: stratified k-fold cross-validation on the training data, or a given test set."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlu.config import NLUConfig
from nlu.data import Example
from nlu.engine import NLU, train_models
from nlu.normalize import normalise


@dataclass
class Prediction:
    example: Example
    intent: str  # the top intent, fallback or not
    fallback: bool
    complaint_type: str | None  # predicted type for gold complaints (type accuracy is measured on them)


@dataclass
class Scores:
    accuracy: float
    macro_f1: float
    count: int
    per_intent: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)


@dataclass
class Report:
    method: str
    by_lang: dict[str, Scores]
    overall: Scores
    complaint_type_accuracy: float
    complaint_type_by_lang: dict[str, float]
    fallback_rate: float
    confused: list[tuple[str, str, int]]
    errors: list[Prediction]

    def to_markdown(self) -> str:
        lines = [
            f"# NLU evaluation ({self.method})",
            "",
            "| set | examples | intent accuracy | macro-F1 |",
            "|---|---|---|---|",
        ]
        for name, s in [*sorted(self.by_lang.items()), ("all", self.overall)]:
            lines.append(f"| {name} | {s.count} | {s.accuracy:.3f} | {s.macro_f1:.3f} |")
        lines += [
            "",
            f"Complaint-type accuracy (on complaint examples): **{self.complaint_type_accuracy:.3f}** "
            + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(self.complaint_type_by_lang.items())),
            f"Fallback rate at the configured thresholds: {self.fallback_rate:.3f}",
            "",
            "## Per intent",
            "",
            "| intent | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for intent, (p, r, f, n) in sorted(self.overall.per_intent.items()):
            lines.append(f"| {intent} | {p:.3f} | {r:.3f} | {f:.3f} | {n} |")
        lines += ["", "## Most confused (gold → predicted)", "", "| gold | predicted | count |", "|---|---|---|"]
        lines += [f"| {g} | {p} | {n} |" for g, p, n in self.confused]
        lines += ["", "## Some errors", "", "| text | gold | predicted |", "|---|---|---|"]
        for err in self.errors[:40]:
            text = err.example.text.replace("|", "\\|")
            lines.append(f"| {text} | {err.example.intent} | {err.intent} |")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        parts = [
            f"{k}: acc {s.accuracy:.3f} macro-F1 {s.macro_f1:.3f} (n={s.count})"
            for k, s in sorted(self.by_lang.items())
        ]
        return "; ".join(parts) + f"; complaint-type acc {self.complaint_type_accuracy:.3f}"


def _scores(preds: Sequence[Prediction]) -> Scores:
    gold = Counter(p.example.intent for p in preds)
    predicted = Counter(p.intent for p in preds)
    correct = Counter(p.intent for p in preds if p.intent == p.example.intent)
    per_intent: dict[str, tuple[float, float, float, int]] = {}
    for intent in gold:
        prec = correct[intent] / predicted[intent] if predicted[intent] else 0.0
        rec = correct[intent] / gold[intent]
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_intent[intent] = (prec, rec, f1, gold[intent])
    accuracy = sum(correct.values()) / len(preds) if preds else 0.0
    macro = sum(v[2] for v in per_intent.values()) / len(per_intent) if per_intent else 0.0
    return Scores(accuracy, macro, len(preds), per_intent)


def _predict(nlu: NLU, examples: Sequence[Example]) -> list[Prediction]:
    out = []
    for ex in examples:
        result = nlu.parse(ex.text)
        ctype = nlu.complaint_type(normalise(ex.text).model)[0] if ex.complaint_type else None
        out.append(Prediction(ex, result.top_intent, result.intent == "nlu_fallback", ctype))
    return out


def build_report(method: str, preds: Sequence[Prediction]) -> Report:
    by_lang = {
        lang: _scores([p for p in preds if p.example.lang == lang]) for lang in sorted({p.example.lang for p in preds})
    }
    complaints = [p for p in preds if p.example.complaint_type]
    type_acc = (
        sum(p.complaint_type == p.example.complaint_type for p in complaints) / len(complaints) if complaints else 0.0
    )
    type_by_lang = {}
    for lang in by_lang:
        subset = [p for p in complaints if p.example.lang == lang]
        if subset:
            type_by_lang[lang] = sum(p.complaint_type == p.example.complaint_type for p in subset) / len(subset)
    confusion = Counter((p.example.intent, p.intent) for p in preds if p.intent != p.example.intent)
    return Report(
        method=method,
        by_lang=by_lang,
        overall=_scores(preds),
        complaint_type_accuracy=type_acc,
        complaint_type_by_lang=type_by_lang,
        fallback_rate=sum(p.fallback for p in preds) / len(preds) if preds else 0.0,
        confused=[(g, p, n) for (g, p), n in confusion.most_common(15)],
        errors=[p for p in preds if p.intent != p.example.intent],
    )


def cross_validate(
    examples: Sequence[Example], config: NLUConfig, folds: int = 5, seed: int = 13,
    progress: Callable[[int], None] | None = None,
) -> Report:  # fmt: skip
    from sklearn.model_selection import StratifiedKFold

    # Stratify by intent, complaint type and language so every fold sees every kind of example.
    strata = [f"{e.intent}/{e.complaint_type or ''}/{e.lang}" for e in examples]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    preds: list[Prediction] = []
    for fold, (train_idx, test_idx) in enumerate(splitter.split(examples, strata), 1):
        intent_model, type_model = train_models([examples[i] for i in train_idx], config)
        preds += _predict(NLU(intent_model, type_model, config), [examples[i] for i in test_idx])
        if progress:
            progress(fold)
    return build_report(f"stratified {folds}-fold cross-validation, {len(examples)} examples", preds)


def evaluate_on(nlu: NLU, examples: Sequence[Example], name: str) -> Report:
    return build_report(f"test set {name}, {len(examples)} examples", _predict(nlu, examples))


# ---- the held-out "real language" table (issue 15) ----
HELDOUT_DIR = Path(__file__).parent / "heldout"
UNKNOWN = {"out_of_scope", "nlu_fallback"}


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    hits: int
    count: int
    target: float

    @property
    def score(self) -> float:
        return self.hits / self.count if self.count else 0.0


@dataclass
class Table:
    rows: list[Row]
    false_complaints: tuple[int, int]  # non-complaints taken for complaints, of all non-complaints
    misses: dict[str, list[tuple[str, str]]]  # row name → (text, what it was taken for)

    @property
    def met(self) -> bool:
        return all(r.score >= r.target for r in self.rows)

    def render(self) -> str:
        lines = ["| | score | n | target |", "|---|---|---|---|"]
        for r in self.rows:
            mark = "" if r.score >= r.target else " (below)"
            lines.append(f"| {r.name} | {r.score:.2f}{mark} | {r.hits}/{r.count} | ≥ {r.target:.2f} |")
        wrong, total = self.false_complaints
        lines.append(f"| non-complaints taken for complaints | {wrong / max(total, 1):.3f} | {wrong}/{total} | |")
        return "\n".join(lines)


def real_table(nlu: NLU, examples: Sequence[Example]) -> Table:
    """Score ``examples`` the way issue 15 does: out-of-scope is recognised when the answer is
    ``out_of_scope`` or ``nlu_fallback``; small talk and self-service must get their own intent (a
    fallback counts as a miss); complaint posts must be ``complaint``; the type is scored on the
    posts detected as complaints."""
    tally: dict[str, list[int]] = {}
    misses: dict[str, list[tuple[str, str]]] = {}
    false_complaints = [0, 0]

    def score(row: str, ok: bool, text: str, got: str) -> None:
        hits = tally.setdefault(row, [0, 0])
        hits[0] += ok
        hits[1] += 1
        if not ok:
            misses.setdefault(row, []).append((text, got))

    for ex in examples:
        result = nlu.parse(ex.text)
        if ex.intent == "out_of_scope":
            score(f"out-of-scope recognised, {ex.lang}", result.intent in UNKNOWN, ex.text, result.intent)
        elif ex.intent == "complaint":
            detected = result.intent == "complaint"
            score("complaint detected in complaint posts", detected, ex.text, result.intent)
            if detected:
                got = result.complaint_type or ""
                score("complaint type given detection", got == ex.complaint_type, ex.text, got)
        else:
            score(f"small talk / self-service, {ex.lang}", result.intent == ex.intent, ex.text, result.intent)
        if ex.intent != "complaint":
            false_complaints[0] += result.intent == "complaint"
            false_complaints[1] += 1
    order = [
        ("out-of-scope recognised, zh", 0.90), ("out-of-scope recognised, en", 0.85),
        ("small talk / self-service, en", 0.85), ("small talk / self-service, zh", 0.88),
        ("complaint detected in complaint posts", 0.80), ("complaint type given detection", 0.75),
    ]  # fmt: skip
    rows = [Row(name, *tally[name], target) for name, target in order if name in tally]
    return Table(rows, (false_complaints[0], false_complaints[1]), misses)
