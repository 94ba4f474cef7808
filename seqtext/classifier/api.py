"""``seqtext.load`` of a classifier: ``predict``, ``predict_proba``, ``predict_stream``, ``evaluate``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from seqtext.api import CHUNK_SIZE, Model, text_list
from seqtext.errors import ConfigError


class Classifier(Model):
    """A text classifier: ``predict`` labels, ``predict_proba`` probabilities, attention over the words."""

    kind = "classifier"
    evaluate_options = ("data_dir", "on_bad_rows", "baselines")

    @property
    def labels(self) -> list[str]:
        return list(self.checkpoint.label_map.names)

    def predict(self, texts: str | Iterable[str], batch_size: int = 128):
        """A ``Prediction`` (``label``, ``probs`` as {label: probability}, ``attention`` as (token, weight)
        pairs) for one text, or a list of them for a list. A text the model cannot read gets a Prediction
        with ``error`` set and no label, rather than failing the others: one with nothing visible (empty,
        whitespace, zero-width characters), one with no tokens, or one holding a lone surrogate ('\\ud800'),
        which is no character (``seqtext.classifier.predict.readable_problem`` says which)."""
        from seqtext.classifier.predict import predict

        single = isinstance(texts, str)
        batch = text_list(texts)
        with self._autocast():
            found = predict(self.module, self.checkpoint.tokenizer, tuple(self.labels), batch, self._max_length(), batch_size)
        return found[0] if single else found

    def predict_stream(self, texts: Iterable[str], chunk_size: int = CHUNK_SIZE) -> Iterator:
        """Predictions for texts as they come (the lines of a long file), in order, ``chunk_size`` at a time,
        in memory bounded by the chunk."""
        from seqtext.batching import release_freed_memory

        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, not {chunk_size!r}", "chunk_size")
        texts = iter([texts] if isinstance(texts, str) else texts)
        while chunk := list(itertools.islice(texts, chunk_size)):
            yield from self.predict(chunk)
            release_freed_memory()

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """Probabilities (N, C), columns in ``labels`` order; a row of NaN for a text the model cannot read."""
        predictions = self.predict(text_list(texts))
        return np.array(
            [[p.probs[label] for label in self.labels] if p.error is None else [np.nan] * len(self.labels) for p in predictions]
        ).reshape(-1, len(self.labels))

    def plot(self, result: dict, path: str | Path) -> None:
        from seqtext.plots import plot_confusion

        plot_confusion(result["confusion"], result["labels"], path, title=result["data"])

    def _max_length(self) -> int | None:
        return self.checkpoint.recipe["data"]["max_length"]

    def _evaluate(self, data, split, data_dir=None, on_bad_rows=None, baselines=False) -> tuple[dict, str]:
        from seqtext.classifier.evaluation import evaluate_checkpoint
        from seqtext.data import is_dataframe

        options = {"data_dir": data_dir, "on_bad_rows": on_bad_rows}
        if is_dataframe(data) and "split" not in data.columns:  # one table of held-out rows: the split evaluated
            data = {split or "test": data}
        return evaluate_checkpoint(self.checkpoint, data, split or "test", baselines=baselines, **options)
