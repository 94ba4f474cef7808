"""A classifier as an exported graph (ONNX, TorchScript) and the object that runs one."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from seqtext.export import ExportGraph, checked_ids, checked_lengths
from seqtext.tokenizer import Tokenizer


class ClassifierGraph(nn.Module):
    """``(ids, lengths) -> (probs, attention)`` around a ``TextClassifier``: what an export computes."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]  # (B, T)
        out = self.classifier(ids, lengths, mask)
        probs = torch.softmax(out.logits.float(), dim=-1)  # (B, C)
        if out.attention is None:
            return (probs,)
        attention = out.attention.mean(1) if out.attention.ndim == 3 else out.attention  # self-attention's heads averaged
        return probs, attention


def classifier_graph(module: nn.Module) -> ExportGraph:
    """``(ids, lengths) -> (probs[, attention])``: the batch and the time axis of the ids are free."""
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [11, 12, 13, 14, 0, 0, 0], [14, 15, 0, 0, 0, 0, 0]])  # (3, 7), padded
    lengths = torch.tensor([7, 4, 2])
    outputs = ["probs", "attention"] if module.pooling.explains else ["probs"]
    axes = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "probs": {0: "batch"}, "attention": {0: "batch", 1: "time"}}
    return ExportGraph(ClassifierGraph(module), ["ids", "lengths"], outputs, (ids, lengths), axes)


class ExportedClassifier:
    """Predictions from an exported classifier, as ``seqtext.load(...).predict`` gives them."""

    kind = "classifier"

    def __init__(self, runner, tokenizer: Tokenizer, labels: list[str], described: dict):
        self.runner, self.tokenizer, self.labels, self.described = runner, tokenizer, labels, described

    @classmethod
    def read(cls, runner, tokenizer: Tokenizer, folder: Path, described: dict) -> ExportedClassifier:
        """The export in ``folder``, whose labels.json names the classes."""
        return cls(runner, tokenizer, json.loads((folder / "labels.json").read_text()), described)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids (B, T), lengths (B,) -> probs (B, C), attention (B, T) or None; an empty batch gives empty ones."""
        ids = checked_ids(ids, self.described.get("vocab_size", self.tokenizer.vocab_size))
        lengths = checked_lengths(lengths, ids)
        if len(ids) == 0:  # ONNX Runtime aborts the process on an empty batch
            attention = torch.zeros(ids.shape) if "attention" in self.described["outputs"] else None  # (0, T)
            return torch.zeros(0, len(self.labels)), attention  # (0, C)
        found = self.runner(ids, lengths)
        return found[0], (found[1] if len(found) > 1 else None)

    def predict(self, texts: list[str], max_length: int | None = None, batch_size: int = 128):
        from seqtext.classifier.predict import predict_with

        return predict_with(self.forward, self.tokenizer, tuple(self.labels), list(texts), max_length, batch_size)
