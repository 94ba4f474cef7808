"""Training a text classifier: bucketed batches of a labelled split, cross-entropy (optionally weighted
by class and smoothed), and validation accuracy to pick the best checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from seqtext.batching import collate
from seqtext.checkpoint import Checkpoint
from seqtext.data import data_root
from seqtext.distributed import Shard
from seqtext.errors import ConfigError, DataError
from seqtext.evaluation import evaluate_classifier
from seqtext.models.classifier import TextClassifier
from seqtext.pipeline import bucket_sampler, prepare_classification
from seqtext.recipe import Recipe
from seqtext.transfer import check_sizes, load_encoders, pretrained_encoders
from seqtext.vectors import load_vectors


def _pretrained(recipe: Recipe) -> dict | None:
    """The language models ``model.encoder_from`` names, checked against the classifier, or None."""
    if recipe.model.encoder_from is None:
        return None
    if recipe.train.vectors:
        raise ConfigError("give model.encoder_from or train.vectors, not both: each sets the embedding")
    encoders = pretrained_encoders(recipe.model.encoder_from)
    check_sizes(recipe.model, encoders)
    return encoders


class ClassifierTask:
    kind = "classifier"
    score_name = "accuracy"
    higher_is_better = True

    def __init__(self, recipe: Recipe, saved: Checkpoint | None, log: Callable[[str], None], data=None):
        self.recipe = recipe
        if saved is not None:
            prepared = prepare_classification(recipe, tokenizer=saved.tokenizer, data=data)
            if saved.label_map != prepared.data.label_map:
                ours, theirs = prepared.data.label_map.names, saved.label_map.names
                raise DataError(f"{saved.path}: the data's labels {ours} differ from the run's {theirs}")
            self.model = saved.model
        else:
            encoders = _pretrained(recipe)
            tokenizer = encoders["forward"].tokenizer if encoders else None
            prepared = prepare_classification(recipe, tokenizer=tokenizer, data=data)
            torch.manual_seed(recipe.seed)
            self.model = TextClassifier(recipe.model, prepared.tokenizer.vocab_size, len(prepared.data.label_map))
            if encoders:
                load_encoders(self.model, encoders)
                log(f"seqtext: tokenizer, embedding and {' and '.join(encoders)} layers from {recipe.model.encoder_from}")
            if recipe.train.vectors:
                coverage = load_vectors(recipe.train.vectors, prepared.tokenizer, self.model.embedding.weight)
                if self.model.backward_embedding is not None:
                    with torch.no_grad():
                        self.model.backward_embedding.weight.copy_(self.model.embedding.weight)
                log(f"seqtext: word vectors from {recipe.train.vectors} cover {coverage:.1%} of the vocabulary")
        self.runner, self.shard = self.model, Shard()
        self.tokenizer, self.label_map = prepared.tokenizer, prepared.data.label_map
        self.model_args = {"vocab_size": self.tokenizer.vocab_size, "num_classes": len(self.label_map)}
        self.source = prepared.data.source
        self.split_sizes = {split: len(table) for split, table in prepared.data.splits.items()}
        self.train_set, self.validation_set = prepared.encoded["train"], prepared.encoded["validation"]
        self.sampler = bucket_sampler(self.train_set, recipe.batching, recipe.seed)
        self.class_weight = None
        if recipe.train.class_weights == "balanced":
            counts = torch.bincount(self.train_set.labels, minlength=len(self.label_map)).double()
            self.class_weight = (counts.sum() / (len(self.label_map) * counts.clamp(min=1))).float()

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        return self.sampler.batches()

    def step(self, batch: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        indices = batch
        batch = collate([self.train_set[i] for i in self.shard.take(indices)]).to(device)
        out = self.runner(batch.ids, batch.lengths, batch.mask)
        weight = None if self.class_weight is None else self.class_weight.to(device)
        smoothing = self.recipe.train.label_smoothing

        def cross_entropy(logits: torch.Tensor) -> torch.Tensor:
            if self.shard.world == 1:
                return F.cross_entropy(logits, batch.labels, weight=weight, label_smoothing=smoothing)
            losses = F.cross_entropy(logits, batch.labels, weight=weight, label_smoothing=smoothing, reduction="none")
            labels = self.train_set.labels[indices]
            count = float(len(indices) if weight is None else self.class_weight[labels].sum())
            return self.shard.mean(losses.sum(), count)

        loss = cross_entropy(out.logits)
        objective = loss
        if out.parts is not None and self.recipe.model.ngram_loss == "separate":
            objective = sum(cross_entropy(part) for part in out.parts)
        if out.penalty is not None:
            objective = objective + self.recipe.model.attention_penalty * out.penalty
        correct = int((out.logits.argmax(1) == batch.labels).sum())
        return loss, objective, {"correct": correct, "n": len(batch.labels), "tokens": int(batch.lengths.sum())}

    def validate(self, device: torch.device) -> dict:
        report = evaluate_classifier(self.model, self.validation_set, self.label_map.names, device=device)
        return {key: report[key] for key in ("loss", "accuracy", "macro_f1", "n")}

    def carried(self) -> dict[str, torch.Tensor]:
        return {}  # nothing outlives a step

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def data_summary(self) -> dict:
        return {"source": self.source, "splits": self.split_sizes, "data_dir": data_root(self.recipe)}

    @staticmethod
    def describe(result: dict) -> str:
        return f"best validation accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}"
