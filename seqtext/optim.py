"""The optimizer and its schedule: AdamW (or SGD) with parameter groups, the learning rate at each step, and
ULMFiT's fine-tuning tools (Howard & Ruder 2018): discriminative learning rates by layer
(``train.layer_lr_decay``), the slanted triangular schedule, and gradual unfreezing (``train.unfreeze``).

Layers count from the bottom: the embedding is layer 0, recurrent layer k is layer k + 1, and everything
above the recurrent layers (attention, the output layer) is the top layer.
"""

from __future__ import annotations

import math
import re

import torch

from seqtext.recipe import TrainConfig

SLANTED_CUT, SLANTED_RATIO = 0.1, 32  # ULMFiT's: the rise takes a tenth of the steps, from lr / 32 to lr


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warmup over ``warmup_steps``, then constant or cosine decay to 0 at ``total_steps``; or the
    slanted triangular schedule (no warmup: its own rise over the first tenth of the steps)."""
    if config.schedule == "slanted_triangular":
        cut = max(1, math.floor(total_steps * SLANTED_CUT))
        p = step / cut if step < cut else 1 - (step - cut) / max(1, total_steps - cut)
        return config.lr * (1 + p * (SLANTED_RATIO - 1)) / SLANTED_RATIO
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


EMBEDDINGS = ("embedding.", "backward_embedding.")  # a classifier's two directions may each have one
NGRAMS = "ngrams."  # a classifier's bag of n-grams (model.ngrams): in the top layer, at train.ngram_lr_scale


def layer_of(name: str, model: torch.nn.Module) -> int:
    """The layer (from 0, the embedding) that the parameter ``name`` belongs to."""
    if name.startswith(EMBEDDINGS):
        return 0
    match = re.match(r"encoder\.(?:forward|backward)_layers\.(\d+)\.", name) or re.match(r"rnn\.\w+_l(\d+)", name)
    return int(match.group(1)) + 1 if match else top_layer(model)


def top_layer(model: torch.nn.Module) -> int:
    return model.config.num_layers + 1


def make_optimizer(model: torch.nn.Module, config: TrainConfig, fused: bool = True) -> torch.optim.Optimizer:
    """AdamW (or SGD). AdamW is the fused kernel, one pass over all the parameters: the default loop of
    small operations per tensor took a third of an SST-2 step on CPU (experiments/speed_work/speed_work.py). Each group
    carries an ``lr_scale``: with ``layer_lr_decay``, decay ** (layers above it); 1 without; and
    ``ngram_lr_scale`` for a classifier's n-gram table (AdamW only)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)

    # no weight decay on biases, the embedding or the n-gram table: decaying rare words' vectors to 0 only
    # forgets them
    def decays(name: str, parameter: torch.Tensor) -> bool:
        return parameter.ndim >= 2 and not name.startswith(EMBEDDINGS)

    def group(params: list[torch.Tensor], decayed: bool, lr_scale: float | None) -> dict:
        settings = {"params": params, "weight_decay": config.weight_decay if decayed else 0.0}
        return settings if lr_scale is None else {**settings, "lr_scale": lr_scale}

    named = list(model.named_parameters())
    ngrams = [p for n, p in named if n.startswith(NGRAMS)]
    named = [(n, p) for n, p in named if not n.startswith(NGRAMS)]
    if config.layer_lr_decay is None:
        groups = [group([p for n, p in named if decays(n, p) == decayed], decayed, None) for decayed in (True, False)]
    else:
        top, groups = top_layer(model), []
        for layer in range(top + 1):
            for decayed in (True, False):
                params = [p for n, p in named if layer_of(n, model) == layer and decays(n, p) == decayed]
                if params:
                    groups.append(group(params, decayed, config.layer_lr_decay ** (top - layer)))
    if ngrams:
        groups.append(group(ngrams, False, config.ngram_lr_scale))
    return torch.optim.AdamW(groups, lr=config.lr, fused=fused)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """``lr`` in every group, times the group's ``lr_scale`` where it has one."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"] if "lr_scale" in group else lr


def unfreeze_for_epoch(model: torch.nn.Module, epoch: int) -> None:
    """Gradual unfreezing: in epoch 0 only the top layer trains, in each later epoch one more layer below it."""
    lowest = top_layer(model) - epoch
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(layer_of(name, model) >= lowest)
