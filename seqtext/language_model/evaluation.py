"""A language model's evaluation: loss, perplexity and bits per character (or per token) over an id stream."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from seqtext.batching import (
    LMStreams,
)
from seqtext.checkpoint import Checkpoint
from seqtext.data import read_text_file, split_corpus
from seqtext.errors import DataError
from seqtext.language_model.model import RecurrentLanguageModel
from seqtext.nn import IGNORE_INDEX
from seqtext.recipe import load_recipe
from seqtext.tokenizer import UNK_ID


@torch.no_grad()
def evaluate_language_model(
    model: RecurrentLanguageModel,
    ids: torch.Tensor,
    batch_size: int = 16,
    bptt: int = 256,
    device: str | torch.device | None = None,
    unit: str = "char",
) -> dict:
    """Loss (nats per token), perplexity and next-token accuracy over ``ids``; for a character model
    (``unit`` char) also bits per character, and the count is ``n_chars`` rather than ``n_tokens``.

    The stream is read as ``batch_size`` contiguous rows, each with its state carried from window to
    window, so only the first tokens of each row are predicted without context. Tokens outside the
    model's vocabulary (``<unk>``) are not scored; ``n_unknown`` counts them.
    """
    model.eval()
    device = device or next(model.parameters()).device
    streams = LMStreams(ids, max(1, min(batch_size, len(ids) - 1)), bptt)
    total, correct, scored, state = 0.0, 0, 0, None
    for inputs, targets in streams:
        targets = targets.masked_fill(targets == UNK_ID, IGNORE_INDEX).to(device)  # (B, T)
        losses, predicted, state = model.token_losses(inputs.to(device), targets, state)  # (B, T), (B, T)
        total += losses.sum().item()
        valid = targets != IGNORE_INDEX  # (B, T)
        correct = None if predicted is None else correct + int((predicted == targets)[valid].sum())
        scored += int(valid.sum())
    if scored == 0:
        raise DataError("nothing to evaluate: the text has no tokens the model knows after its first")
    loss = total / scored
    accuracy = {} if correct is None else {"accuracy": correct / scored}  # none from an adaptive softmax
    if unit == "char":
        return {
            "loss": loss,
            "bpc": loss / math.log(2),
            "perplexity": math.exp(loss),
            **accuracy,
            "n_chars": scored,
            "n_unknown": int((ids[1:] == UNK_ID).sum()),
        }
    figures = {"loss": loss, "perplexity": math.exp(loss), **accuracy, "n_tokens": scored}
    return {**figures, "n_unknown": int((ids[1:] == UNK_ID).sum())}


def corpus_evaluation_set(
    checkpoint: Checkpoint, data=None, split: str | None = None, data_dir: str | None = None
) -> tuple[torch.Tensor, str]:
    """The ids to evaluate a language model on, encoded with its own tokenizer, and a description.

    Without ``data``: ``split`` (default validation) of the corpus the model was trained on, cut at the
    same position. With ``data``: a plain-text file is evaluated whole, unless ``split`` asks for its
    train or validation part; a named corpus, a folder or data in memory is cut as in training (default
    validation).
    """
    from seqtext.language_model.data import corpus_ids, load_corpus_parts

    recipe = load_recipe(None, base=checkpoint.recipe)
    fraction, reverse = recipe.data.train_fraction, recipe.data.reverse
    is_file = isinstance(data, (str, Path)) and Path(data).is_file()
    if is_file and split is None:
        return corpus_ids(checkpoint.tokenizer, read_text_file(data), reverse), f"{data} (whole)"
    split = split or "validation"
    if split not in ("train", "validation"):
        raise DataError(
            f"a language model's corpus is cut into train and validation by position (train_fraction {fraction}); "
            f"there is no {split!r} part: use split validation, or data FILE for other text",
            "split",
        )
    if is_file:
        text, source = read_text_file(data), data
        part = split_corpus(text, fraction)[0 if split == "train" else 1]
    else:
        if data_dir is not None:
            recipe.data.data_dir = data_dir
        parts = load_corpus_parts(recipe, recipe.data.dataset if data is None else data)
        part, source = parts[0 if split == "train" else 1], parts[2]
    described = "first" if split == "train" else "last"
    share = fraction if split == "train" else 1 - fraction
    units = "documents" if isinstance(part, list) else "characters"
    return corpus_ids(checkpoint.tokenizer, part, reverse), f"{source}, {split} split ({described} {share:.0%} of the {units})"
