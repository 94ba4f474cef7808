"""A kind defined outside seqtext, to show what adding one takes: this package and one ``kinds.register`` line.

The bag: the mean of a text's word embeddings, then a linear layer (no recurrence). Its recipe reads
labelled text like a classifier's; it trains, evaluates and reports through seqtext's own command line.
It has no server route and no export, and the command line says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqtext import api, kinds
from seqtext.batching import collate
from seqtext.classifier.data import prepare_classification
from seqtext.distributed import Shard
from seqtext.pipeline import bucket_sampler


@dataclass
class BagConfig:
    embedding_size: int = 16

    def sizes(self) -> dict[str, int]:
        return {"embedding_size": self.embedding_size}


class MeanBag(nn.Module):
    def __init__(self, config: BagConfig, vocab_size: int, num_classes: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=0)
        self.head = nn.Linear(config.embedding_size, num_classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, T) -> logits (B, C)."""
        summed = (self.embedding(ids) * mask[:, :, None]).sum(1)  # (B, E)
        return self.head(summed / mask.sum(1, keepdim=True).clamp(min=1))


class BagTask:
    kind = "bag"
    score_name = "accuracy"
    higher_is_better = True

    def __init__(self, recipe, saved, log, data=None):
        self.recipe = recipe
        prepared = prepare_classification(recipe, tokenizer=saved.tokenizer if saved else None, data=data)
        self.tokenizer, self.label_map = prepared.tokenizer, prepared.data.label_map
        self.model_args = {"vocab_size": self.tokenizer.vocab_size, "num_classes": len(self.label_map)}
        if saved is not None:
            self.model = saved.model
        else:
            torch.manual_seed(recipe.seed)
            self.model = MeanBag(recipe.model, **self.model_args)
        self.runner, self.shard = self.model, Shard()
        self.source = prepared.data.source
        self.train_set, self.validation_set = prepared.encoded["train"], prepared.encoded["validation"]
        self.sampler = bucket_sampler(self.train_set, recipe.batching, recipe.seed)

    def steps_per_epoch(self) -> int:
        return len(self.sampler.batches())

    def epoch(self, epoch: int):
        self.sampler.set_epoch(epoch)
        return self.sampler.batches()

    def step(self, batch, device):
        texts = collate([self.train_set[i] for i in batch])
        logits = self.runner(texts.ids.to(device), texts.mask.to(device))
        labels = texts.labels.to(device)
        loss = F.cross_entropy(logits, labels)
        counts = {"n": len(labels), "tokens": int(texts.lengths.sum()), "correct": int((logits.argmax(1) == labels).sum())}
        return loss, loss, counts

    @torch.no_grad()
    def validate(self, device) -> dict:
        texts = collate([self.validation_set[i] for i in range(len(self.validation_set))])
        logits = self.model(texts.ids.to(device), texts.mask.to(device))
        loss = F.cross_entropy(logits, texts.labels.to(device))
        accuracy = float((logits.argmax(1).cpu() == texts.labels).float().mean())
        return {"loss": float(loss), "accuracy": accuracy, "n": len(texts.labels)}

    def carried(self) -> dict:
        return {}

    def restore(self, tensors: dict) -> None:
        pass

    def data_summary(self) -> dict:
        return {"source": self.source, "train": len(self.train_set), "validation": len(self.validation_set)}

    @staticmethod
    def describe(result: dict) -> str:
        return f"best validation accuracy {result['accuracy']:.4f}"


class Bag(api.Model):
    kind = "bag"

    def _evaluate(self, data, split, **options):
        task = BagTask(self.recipe, self.checkpoint, print, None)
        return task.validate(self.device), f"{task.source} validation"


def print_report(result: dict, data: str) -> None:
    print(f"{data}: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f} ({result['n']:,} texts)")


KIND = kinds.Kind("bag", BagConfig, MeanBag, task=f"{__name__}:BagTask", api=f"{__name__}:Bag",
                  report=f"{__name__}:print_report", summary="seqtext.classifier.data:classification_summary",
                  texts="seqtext.classifier.data:labelled_texts", token_batches=True)  # fmt: skip
