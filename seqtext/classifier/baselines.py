"""NBSVM-bi (Wang & Manning 2012), the linear baseline a text classifier should be shown beside.

Binary unigram + bigram features, each scaled by its naive-Bayes log-count ratio, then a logistic
regression on them (the logistic form of NBSVM); one such model per class (one against the rest) for
more than two classes. It fits IMDB's 22,500 reviews in about a minute on two cores, and matches or
beats an LSTM trained from scratch on several sets, which is why ``seqtext evaluate --baselines`` shows it.

scikit-learn is an optional dependency: ``pip install 'seqtext[baselines]'``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqtext.errors import ConfigError

TOKEN_PATTERN = r"(?u)\w+|[^\w\s]"  # words and single punctuation marks ("!" says something about sentiment)
C_GRID = (0.1, 0.3, 1.0, 3.0)  # the regularisation tried on validation (or one fixed value without it)


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("baselines need scikit-learn: pip install 'seqtext[baselines]'") from None


@dataclass
class NBSVM:
    """A fitted NBSVM-bi: ``scores(texts)`` gives (N, C) log-odds per class, ``predict`` the class ids."""

    vectorizer: object
    ratios: list  # per class (one for two classes): the log-count ratios (d,)
    models: list  # per class: a LogisticRegression on the scaled features
    num_classes: int
    c: float
    seconds: float
    source: str = ""  # what it was fitted on, for reports

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        features = self.vectorizer.transform(texts)  # (N, d), binary
        columns = [model.decision_function(features.multiply(r).tocsr()) for r, model in zip(self.ratios, self.models)]
        if self.num_classes == 2:
            return np.stack([-columns[0] / 2, columns[0] / 2], axis=1)  # (N, 2): the log-odds, split evenly
        return np.stack(columns, axis=1)  # (N, C)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.scores(texts).argmax(1)


def fit_nbsvm(
    texts: Sequence[str],
    labels: Sequence[int],
    num_classes: int,
    validation: tuple[Sequence[str], Sequence[int]] | None = None,
    c: float | None = None,
    alpha: float = 1.0,
) -> NBSVM:
    """Fit NBSVM-bi on ``texts`` and integer ``labels``; ``c`` from C_GRID by accuracy on ``validation``
    where it is given, else ``c`` (default 1)."""
    _sklearn()
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or len(y) != len(texts) or not ((0 <= y) & (y < num_classes)).all():
        raise ConfigError(f"labels must be {len(texts):,} class ids from 0 to {num_classes - 1}", "labels")
    start = time.perf_counter()
    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True, lowercase=True, token_pattern=TOKEN_PATTERN)
    features = vectorizer.fit_transform(texts).tocsr()  # (N, d)
    classes = [1] if num_classes == 2 else list(range(num_classes))
    ratios = []
    for k in classes:
        p = alpha + np.asarray(features[y == k].sum(0)).ravel()  # (d,)
        q = alpha + np.asarray(features[y != k].sum(0)).ravel()
        ratios.append(np.log((p / p.sum()) / (q / q.sum())))

    prepared = time.perf_counter() - start
    fit_seconds = {}

    def fit(c_value: float) -> list:
        clock, fitted = time.perf_counter(), []
        for k, r in zip(classes, ratios):
            model = LogisticRegression(C=c_value, solver="liblinear", dual=True, max_iter=1000)
            fitted.append(model.fit(features.multiply(r).tocsr(), (y == k).astype(int)))
        fit_seconds[c_value] = time.perf_counter() - clock
        return fitted

    if validation is not None and c is None:
        best = None
        for c_value in C_GRID:
            candidate = NBSVM(vectorizer, ratios, fit(c_value), num_classes, c_value, 0.0)
            accuracy = float((candidate.predict(validation[0]) == np.asarray(validation[1])).mean())
            if best is None or accuracy > best[0]:
                best = (accuracy, candidate)
        model = best[1]
    else:
        model = NBSVM(vectorizer, ratios, fit(c or 1.0), num_classes, c or 1.0, 0.0)
    model.seconds = prepared + fit_seconds[model.c]  # features, ratios and the chosen C's fit; not the search
    return model
