"""Training a language model: truncated back-propagation through time over the corpus as ``batch_size``
contiguous streams.

The recurrent state is carried from each window to the next and detached, so gradients flow back
``bptt`` steps while the state sees the whole stream. Each epoch starts the streams at a seeded offset
below ``bptt``, so that windows do not always cut the text at the same places.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from seqtext.batching import LMStreams
from seqtext.checkpoint import Checkpoint
from seqtext.data import data_root
from seqtext.distributed import Shard
from seqtext.errors import ConfigError
from seqtext.language_model.data import prepare_corpus
from seqtext.language_model.evaluation import evaluate_language_model
from seqtext.language_model.model import RecurrentLanguageModel, detach_state
from seqtext.nn import IGNORE_INDEX
from seqtext.recipe import Recipe
from seqtext.vectors import WordVectors, matching_rows, read_vectors


@torch.no_grad()
def start_from_vectors(weight: torch.Tensor, tokenizer, vectors: WordVectors, log: Callable[[str], None]) -> None:
    """The embedding (V, E)'s first D dimensions from ``vectors`` for the words they have; E may be wider."""
    if weight.shape[1] < vectors.dim:
        raise ConfigError(f"model.embedding_size is {weight.shape[1]}, but the vectors are {vectors.dim} wide: "
                          f"give {vectors.dim}, or more to learn extra dimensions")  # fmt: skip
    ids, rows = matching_rows(tokenizer, vectors)
    weight[ids, : vectors.dim] = vectors.vectors[rows]
    log(f"seqtext: word vectors {vectors.source} start {len(ids):,} of the {tokenizer.vocab_size:,} tokens' embeddings")


class LanguageModelTask:
    kind = "language_model"
    score_name = "loss"
    higher_is_better = False

    def __init__(self, recipe: Recipe, saved: Checkpoint | None, log: Callable[[str], None], data=None):
        prepared = prepare_corpus(recipe, tokenizer=saved.tokenizer if saved is not None else None, data=data)
        self.recipe = recipe
        if saved is not None:
            self.model = saved.model
        else:
            torch.manual_seed(recipe.seed)
            self.model = RecurrentLanguageModel(recipe.model, prepared.tokenizer.vocab_size)
            if recipe.model.vectors:
                start_from_vectors(self.model.embedding.weight, prepared.tokenizer, read_vectors(recipe.model.vectors), log)
        self.tokenizer, self.label_map = prepared.tokenizer, None
        self.unit = "char" if self.tokenizer.kind == "char" else "token"
        self.model_args = {"vocab_size": self.tokenizer.vocab_size}
        self.source = prepared.source
        self.train_ids, self.validation_ids = prepared.train_ids, prepared.validation_ids
        self.bptt = recipe.batching.bptt
        self.usable = len(self.train_ids) - (self.bptt - 1)  # the same stream length whatever the offset
        self.streams = LMStreams(self.train_ids[: self.usable], recipe.batching.batch_size, self.bptt)
        self.state = None  # this process's streams' state
        self.runner, self.shard = self.model, Shard()

    def steps_per_epoch(self) -> int:
        return len(self.streams)

    def epoch(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + epoch)
        offset = int(torch.randint(self.bptt, (1,), generator=generator)) if epoch > 0 else 0
        self.state = None
        return list(LMStreams(self.train_ids[offset : offset + self.usable], self.streams.batch_size, self.bptt))

    def step(self, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        inputs, targets = self.shard.take(batch[0]).to(device), self.shard.take(batch[1]).to(device)  # (B, T)
        valid = targets != IGNORE_INDEX
        reduction = "mean" if self.shard.world == 1 else "sum"  # across processes: their sums over all their targets
        loss, predicted, state = self.runner(inputs, self.state, targets=targets, reduction=reduction)  # the model's loss
        self.state = detach_state(state)
        if self.shard.world > 1:
            loss = self.shard.mean(loss, float((batch[1] != IGNORE_INDEX).sum()))
        n = int(valid.sum())
        if predicted is None:
            return loss, loss, {"n": n, "tokens": n}
        return loss, loss, {"correct": int((predicted == targets)[valid].sum()), "n": n, "tokens": n}

    def validate(self, device: torch.device) -> dict:
        report = evaluate_language_model(self.model, self.validation_ids, device=device, unit=self.unit)
        return {key: value for key, value in report.items() if key != "n_unknown"}

    def carried(self) -> dict[str, torch.Tensor]:
        """The state of every stream (L, B, H), gathered from all processes (a collective under torchrun)."""
        state = None if self.state is None else [s.float().cpu() for s in self.state]  # float32 under bf16 too
        if self.shard.world > 1:
            parts = [None] * self.shard.world
            dist.all_gather_object(parts, state)
            if parts[0] is not None:
                state = [torch.empty(s.shape[0], self.streams.batch_size, s.shape[2]) for s in parts[0]]
                for rank, part in enumerate(parts):
                    for whole, mine in zip(state, part):
                        whole[:, rank :: self.shard.world] = mine
        return {} if state is None else {f"state.{i}": s for i, s in enumerate(state)}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        states = [tensors[k] for k in sorted(tensors) if k.startswith("state.")]
        self.state = tuple(s[:, self.shard.rank :: self.shard.world].contiguous() for s in states) if states else None

    def data_summary(self) -> dict:
        tokens = {"train": len(self.train_ids), "validation": len(self.validation_ids)}
        return {"source": self.source, "tokens": tokens, "data_dir": data_root(self.recipe)}

    @staticmethod
    def describe(result: dict) -> str:
        if "bpc" not in result:  # a word or BPE model
            return f"best validation loss {result['loss']:.4f} nats/token, perplexity {result['perplexity']:.2f}"
        return (
            f"best validation loss {result['loss']:.4f} nats/char, {result['bpc']:.4f} bits/char, "
            f"perplexity {result['perplexity']:.2f}"
        )
