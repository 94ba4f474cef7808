"""Training tasks: what the training loop (seqtext/training.py) needs to know about one kind of model.

Each kind in seqtext/kinds.py names its task class; ``Task`` below is the interface they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from seqtext.distributed import Shard


class Task(Protocol):
    """A kind of model's data, batches, loss and validation, as the training loop uses them.

    Built as ``Task(recipe, saved, log, data)``: ``saved`` is the checkpoint a resumed run continues
    from (its model and tokenizer are reused), ``log`` prints a note for the user, ``data`` is in-memory
    data that replaces the recipe's dataset (or None).
    """

    kind: str  # the name in seqtext/kinds.py
    score_name: str  # the validation figure that picks the best checkpoint
    higher_is_better: bool
    model: nn.Module
    runner: nn.Module  # the model, or its DistributedDataParallel wrapper under torchrun
    shard: Shard  # this process's part of each batch
    tokenizer: Any  # saved with the checkpoint (None for models that read numbers)
    label_map: Any  # saved with the checkpoint (classifiers; None otherwise)
    model_args: dict  # the sizes the model is built with besides its config (vocab_size, ...)

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training data."""
        ...

    def epoch(self, epoch: int) -> Sequence:
        """The batches of epoch ``epoch``, in order: the same for the same (seed, epoch)."""
        ...

    def step(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(loss to log, objective to minimise, counts) for one global batch: counts has ``n`` and ``tokens``,
        and ``correct`` where accuracy means something."""
        ...

    def validate(self, device: torch.device) -> dict:
        """Validation figures, ``score_name`` among them."""
        ...

    def carried(self) -> dict[str, torch.Tensor]:
        """State that outlives a step (a language model's recurrent state), saved with ``last/``."""
        ...

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what ``carried`` saved, when a run resumes within an epoch."""
        ...

    def data_summary(self) -> dict:
        """Where the training data came from and how large each part is, for the model card."""
        ...

    @staticmethod
    def describe(result: dict) -> str:
        """One line for people about a finished run's best validation figures."""
        ...
