"""A classifier started from pretrained language models: their tokenizer, embedding and recurrent layers.

``model.encoder_from`` names a language-model run (or checkpoint), which starts the classifier's forward
direction, or a folder holding ``forward/`` and ``backward/`` runs, the second trained on reversed
documents (``data.reverse``), which start the two directions of a bidirectional classifier. Each language
model was trained with its own embedding, so the classifier keeps one per direction
(``model.embedding_per_direction``): the backward LSTM fed the forward model's vectors predicted IMDB test
text at perplexity 272 instead of its own 122. Each layer of a direction is a one-layer LSTM / GRU
(seqtext/nn.py), so the language model's layer k gives its weights to the classifier's layer k of that
direction. The upper layers of a bidirectional classifier read both
directions (2H inputs), which no one-way language model has, so a bidirectional classifier takes one layer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqtext import checkpoint
from seqtext.classifier.model import ClassifierConfig, TextClassifier
from seqtext.errors import ConfigError
from seqtext.tokenizer import PAD_ID

WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def pretrained_encoders(source: str | Path) -> dict[str, checkpoint.Checkpoint]:
    """{"forward": checkpoint[, "backward": checkpoint]} from a run, a checkpoint, or a folder of both."""
    source = Path(source)
    if (source / "forward").is_dir():
        found = {direction: checkpoint.load(source / direction, kind="language_model") for direction in ("forward", "backward")
                 if (source / direction).is_dir()}  # fmt: skip
    else:
        found = {"forward": checkpoint.load(source, kind="language_model")}
    for direction, saved in found.items():
        if bool(saved.recipe["data"].get("reverse")) != (direction == "backward"):
            reads = "backwards" if saved.recipe["data"].get("reverse") else "forwards"
            raise ConfigError(f"{saved.path}: a language model that reads {reads} cannot start the {direction} direction")
    return found


def check_sizes(config: ClassifierConfig, encoders: dict[str, checkpoint.Checkpoint]) -> None:
    """A one-line error for each size the classifier and its language models do not share."""
    for saved in encoders.values():
        lm = saved.config["model"]
        for name in ("embedding_size", "hidden_size", "cell"):
            if config.__dict__[name] != lm[name]:
                raise ConfigError(
                    f"model.{name} is {config.__dict__[name]!r}, but {saved.path} has {lm[name]!r} (model.encoder_from)"
                )
        if config.num_layers > lm["num_layers"]:
            raise ConfigError(
                f"model.num_layers is {config.num_layers}, but {saved.path} has {lm['num_layers']} (model.encoder_from)"
            )
    if config.bidirectional and config.num_layers > 1:
        raise ConfigError(
            "model.encoder_from starts a bidirectional classifier of one layer: its upper layers read both directions"
        )
    if "backward" in encoders and not config.bidirectional:
        raise ConfigError("model.encoder_from has a backward language model, but model.bidirectional is false")
    if "backward" in encoders and not config.embedding_per_direction:
        raise ConfigError(
            "model.encoder_from has a backward language model with its own embedding: set model.embedding_per_direction: true"
        )
    tokenizers = {saved.tokenizer.backend.to_str() for saved in encoders.values()}
    if len(tokenizers) > 1:
        raise ConfigError("model.encoder_from: the forward and backward language models have different tokenizers")


@torch.no_grad()
def load_encoders(classifier: TextClassifier, encoders: dict[str, checkpoint.Checkpoint]) -> None:
    """Copy each direction's embedding and recurrent layers into ``classifier`` (a classifier with one
    embedding, started from a forward model alone, takes the forward model's)."""
    embeddings = {"forward": classifier.embedding, "backward": classifier.backward_embedding}
    for direction, saved in encoders.items():
        embeddings[direction].weight.copy_(saved.model.embedding.weight)
        embeddings[direction].weight[PAD_ID] = 0.0  # the classifier's padding row stays 0, as nn.Embedding keeps it
    layers = {"forward": classifier.encoder.forward_layers, "backward": classifier.encoder.backward_layers}
    for direction, saved in encoders.items():
        rnn = saved.model.rnn
        for k, layer in enumerate(layers[direction]):
            for name in WEIGHTS:
                getattr(layer, f"{name}_l0").copy_(getattr(rnn, f"{name}_l{k}"))
