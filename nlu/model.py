"""A linear classifier over TF-IDF features, trained with scikit-learn, served with numpy alone.

Training uses ``TfidfVectorizer`` + ``LinearSVC`` (one-vs-rest, liblinear: about 1 s for 9,000
examples, where a multinomial ``LogisticRegression`` took 20–40 s on this machine); the margins,
multiplied by ``temperature``, go through a softmax, so confidences behave like a logistic
regression's. The learnt vocabulary, idf weights, coefficients and intercepts are saved as plain
``.npz`` arrays + JSON (no pickle), and inference is a handful of numpy operations on the few rows
the message touches. scikit-learn is imported only to train.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from nlu.features import features

FORMAT_VERSION = 2


@dataclass(frozen=True, slots=True)
class ModelParams:
    C: float = 2.0
    max_iter: int = 2000
    min_df: int = 1
    class_weight: str | None = "balanced"
    temperature: float = 3.0  # margins × temperature → softmax


class LinearModel:
    """A linear model over binary TF-IDF features (L2-normalised) with softmax confidences."""

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
        np.savez(  # uncompressed: written and read faster (about 4 MB)
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


@dataclass(frozen=True, slots=True)
class Matrix:
    """Binary TF-IDF rows (L2-normalised), as scikit-learn's ``TfidfVectorizer(binary=True)`` makes them."""

    rows: Any  # scipy.sparse.csr_matrix
    vocab: dict[str, int]
    idf: np.ndarray

    def subset(self, rows: Sequence[int]) -> Matrix:
        """These rows, over only the columns they use (the norms stay what they were)."""
        part = self.rows[np.asarray(rows, dtype=np.intp)]
        used = np.unique(part.indices)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        return Matrix(part[:, used], {terms[c]: i for i, c in enumerate(used.tolist())}, self.idf[used])


def vectorise(texts: Sequence[str], min_df: int = 1) -> Matrix:
    from scipy.sparse import csr_matrix

    grams = [list(dict.fromkeys(features(t))) for t in texts]  # binary: each gram once per text
    df = Counter(chain.from_iterable(grams))
    terms = sorted(g for g, n in df.items() if n >= min_df)
    vocab = {g: i for i, g in enumerate(terms)}
    counts = np.fromiter((df[g] for g in terms), dtype=np.float64, count=len(terms))
    idf = np.log((1 + len(texts)) / (1 + counts)) + 1.0
    if min_df > 1:
        grams = [[g for g in row if g in vocab] for row in grams]
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    cols = np.fromiter(map(vocab.__getitem__, chain.from_iterable(grams)), dtype=np.int32, count=int(lengths.sum()))
    ptr = np.concatenate([[0], np.cumsum(lengths)])
    data = idf[cols]
    sums = np.add.reduceat(data**2, ptr[:-1][lengths > 0]) if len(data) else np.zeros(0)
    norms = np.ones(len(grams))
    norms[lengths > 0] = np.sqrt(sums)
    rows = csr_matrix((data / np.repeat(norms, lengths), cols, ptr), shape=(len(texts), len(terms)))
    rows.sort_indices()
    return Matrix(rows, vocab, idf)


def fit(matrix: Matrix, labels: Sequence[str], params: ModelParams) -> LinearModel:
    """A one-vs-rest linear SVM (liblinear); margins × ``temperature`` become the softmax logits."""
    from sklearn.svm import LinearSVC

    clf = LinearSVC(C=params.C, max_iter=params.max_iter, class_weight=params.class_weight)
    clf.fit(matrix.rows, labels)
    coef = clf.coef_.T * params.temperature
    intercept = np.atleast_1d(clf.intercept_) * params.temperature
    if coef.shape[1] == 1:  # binary problem: sklearn keeps one row; expand to two for softmax
        coef = np.hstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return LinearModel([str(c) for c in clf.classes_], matrix.vocab, matrix.idf, coef, intercept)


def train(
    texts: Sequence[str], labels: Sequence[str], params: ModelParams, progress: Callable[[str], None] | None = None
) -> LinearModel:
    matrix = vectorise(texts, params.min_df)
    if progress:
        progress(f"{matrix.rows.shape[0]} examples, {matrix.rows.shape[1]} features")
    return fit(matrix, labels, params)
