"""A linear classifier over TF-IDF features, trained with scikit-learn, served with numpy alone.

Training uses ``TfidfVectorizer`` + ``LogisticRegression``; the learnt vocabulary, idf weights,
coefficients and intercepts are then saved as plain ``.npz`` arrays + JSON (no pickle), and
inference reproduces ``predict_proba`` with a handful of numpy operations on the few rows the
message touches. scikit-learn is imported only to train.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlu.features import features

FORMAT_VERSION = 2


@dataclass(frozen=True, slots=True)
class ModelParams:
    C: float = 100.0
    max_iter: int = 2000
    min_df: int = 1
    class_weight: str | None = "balanced"  # complaints outnumber each other intent 4:1


class LinearModel:
    """Multinomial logistic regression over binary TF-IDF features (L2-normalised)."""

    __slots__ = ("_packed", "classes", "coef", "idf", "intercept", "vocab")

    def __init__(
        self, classes: Sequence[str], vocab: dict[str, int], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray
    ) -> None:
        self.classes = tuple(classes)
        self.vocab = vocab
        self.idf = idf.astype(np.float64)
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)  # (n_features, n_classes)
        self.intercept = intercept.astype(np.float64)
        # One gather + one sum per message: rows are idf-weighted coefficients with idf² appended,
        # so the row sum holds both the unnormalised logits and the squared L2 norm.
        self._packed = np.ascontiguousarray(
            np.hstack([self.coef * self.idf[:, None], (self.idf**2)[:, None]]), dtype=np.float64
        )

    def indices(self, grams: Sequence[str]) -> np.ndarray:
        found = set(map(self.vocab.get, grams))
        found.discard(None)
        return np.fromiter(found, dtype=np.intp, count=len(found))

    def proba(self, idx: np.ndarray) -> np.ndarray:
        if not len(idx):
            logits = self.intercept.copy()
        else:
            row = self._packed.take(idx, axis=0).sum(axis=0)
            logits = row[:-1] * (1.0 / math.sqrt(row[-1]))
            logits += self.intercept
        logits -= logits.max()
        np.exp(logits, out=logits)
        logits /= logits.sum()
        return logits

    def predict_texts(self, model_texts: Sequence[str]) -> list[str]:
        return [self.classes[int(np.argmax(self.proba(self.indices(features(t)))))] for t in model_texts]

    # ---- persistence: plain arrays + JSON, never pickle ----
    def save(self, stem: Path, meta: dict[str, Any]) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(
            stem.with_suffix(".npz"), idf=self.idf.astype(np.float32), coef=self.coef.astype(np.float32),
            intercept=self.intercept,
        )  # fmt: skip
        payload = {"format": FORMAT_VERSION, "classes": list(self.classes), "terms": terms, "meta": meta}
        stem.with_suffix(".json").write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, stem: Path) -> LinearModel:
        payload = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        if payload.get("format") != FORMAT_VERSION:
            raise ValueError(f"{stem}: model format {payload.get('format')} is not {FORMAT_VERSION}")
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as arrays:
            idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        vocab = {term: i for i, term in enumerate(payload["terms"])}
        if coef.shape != (len(vocab), len(payload["classes"])):
            raise ValueError(f"{stem}: coefficient shape {coef.shape} does not match the vocabulary")
        return cls(payload["classes"], vocab, idf, coef, intercept)

    def to_sklearn(self) -> tuple[Any, Any]:
        """The same model as scikit-learn objects (the benchmark's baseline)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        vectorizer = TfidfVectorizer(analyzer=features, vocabulary=terms, binary=True)
        vectorizer.idf_ = self.idf
        clf = LogisticRegression()
        clf.classes_ = np.array(self.classes)
        clf.coef_ = self.coef.T.copy()
        clf.intercept_ = self.intercept.copy()
        return vectorizer, clf


def train(
    texts: Sequence[str], labels: Sequence[str], params: ModelParams, progress: Callable[[str], None] | None = None
) -> LinearModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=features, binary=True, min_df=params.min_df, sublinear_tf=False)
    matrix = vectorizer.fit_transform(texts)
    if progress:
        progress(f"{matrix.shape[0]} examples, {matrix.shape[1]} features")
    clf = LogisticRegression(C=params.C, max_iter=params.max_iter, class_weight=params.class_weight)
    clf.fit(matrix, labels)
    vocab = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    coef = clf.coef_.T
    intercept = clf.intercept_
    if coef.shape[1] == 1:  # binary problem: sklearn keeps one row; expand to two for softmax
        coef = np.hstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return LinearModel([str(c) for c in clf.classes_], vocab, vectorizer.idf_, coef, intercept)
