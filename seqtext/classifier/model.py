"""Text classifier: embedding -> LSTM / GRU encoder (uni- or bidirectional) -> pooling -> dropout -> linear,
optionally plus a linear bag of n-grams (``model.ngrams``).

Pooling (seqtext/nn.py's POOLINGS) is additive attention, multi-head self-attentive pooling (Lin et al.
2017), or mean, max, last-state or ULMFiT's concat pooling for comparison. The attention weights come back
with the logits, so that a prediction can show which words it looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqtext.errors import ConfigError
from seqtext.nn import CELLS, POOLINGS, NgramBag, RecurrentEncoder
from seqtext.tokenizer import PAD_ID


@dataclass
class ClassifierConfig:
    embedding_size: int = 128
    hidden_size: int = 128  # per direction
    num_layers: int = 1
    cell: str = "lstm"  # lstm, gru, or reference_lstm (seqtext/cells.py, hand-written BPTT; for study)
    bidirectional: bool = True
    pooling: str = "attention"  # attention, self_attention, mean, max, last, or concat (last + max + mean)
    attention_size: int = 128
    attention_heads: int = 4  # self_attention only
    attention_penalty: float = 0.0  # self_attention only: weight of ||A A^T - I||_F^2 in the loss
    embedding_dropout: float = 0.2
    dropout: float = 0.5  # between recurrent layers and before the output layer
    # the backward direction reads its own embedding: a backward language model (encoder_from) was trained
    # with one, and the forward model's vectors are not the inputs its LSTM learnt
    embedding_per_direction: bool = False
    # a pretrained language model (a run or checkpoint; or a folder of forward/ and backward/ runs) whose
    # tokenizer, embedding and recurrent layers start the classifier (seqtext/transfer.py)
    encoder_from: str | None = None
    # a linear model over words (1) or words and hashed word pairs (2) whose class scores are added to the
    # encoder's: the bag of n-grams that linear baselines win with, trained with the rest (0: none). auto: 2
    # or 0, chosen from the training split's size and text length once it is read (seqtext/classifier/task.py)
    ngrams: int | str = 0
    ngram_buckets: int = 2**21  # the hashed pairs' table (with ngrams: 2)
    # joint: one loss on the summed scores; separate: each half learns alone (the encoder's scores, then the
    # n-grams', each with its own loss, as two models would) and their scores are summed to predict
    ngram_loss: str = "joint"
    # pretrained word vectors (a file, or a catalogue name such as glove.6B.50d: seqtext/vectors.py) whose rows
    # start the embedding's first dimensions; a wider embedding_size learns the rest from the data
    vectors: str | None = None
    vectors_vocab: int = 0  # the vectors' most frequent words that join the vocabulary built from the training split
    # true: the vectors are fine-tuned; false: their rows stay as they are (the words the vectors lack, and any
    # extra dimensions, still learn); both: a frozen copy beside the fine-tuned one, concatenated (Kim 2014)
    vectors_trainable: bool | str = True

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"model.cell must be one of {', '.join(CELLS)}, not {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"model.pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        for name in ("embedding_size", "hidden_size", "num_layers", "attention_size", "attention_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, not {getattr(self, name)}")
        for name in ("embedding_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1), not {getattr(self, name)}")
        if self.attention_penalty < 0:
            raise ConfigError(f"model.attention_penalty must be at least 0, not {self.attention_penalty}")
        if isinstance(self.ngrams, bool) or self.ngrams not in (0, 1, 2, "auto"):
            raise ConfigError(f"model.ngrams must be 0, 1, 2 or auto, not {self.ngrams!r}")
        if self.ngram_loss not in ("joint", "separate"):
            raise ConfigError(f"model.ngram_loss must be joint or separate, not {self.ngram_loss!r}")
        if self.ngram_buckets < 1:
            raise ConfigError(f"model.ngram_buckets must be at least 1, not {self.ngram_buckets}")
        if self.embedding_per_direction and not self.bidirectional:
            raise ConfigError("model.embedding_per_direction needs model.bidirectional: true")
        regimes = {True: "true", False: "false", "true": "true", "false": "false", "both": "both"}
        if not isinstance(self.vectors_trainable, (bool, str)) or self.vectors_trainable not in regimes:
            raise ConfigError(f"model.vectors_trainable must be true, false or both, not {self.vectors_trainable!r}")
        self.vectors_trainable = regimes[self.vectors_trainable]
        if self.vectors_vocab < 0:
            raise ConfigError(f"model.vectors_vocab must be at least 0, not {self.vectors_vocab}")

    def sizes(self) -> dict[str, int]:
        """The sizes the module is built with, each some weight's dimension: a checkpoint checks them
        against its weights before building anything (seqtext/checkpoint.py)."""
        sizes = {"embedding_size": self.embedding_size, "hidden_size": self.hidden_size}
        sizes |= POOLINGS[self.pooling].sizes(self)
        if self.ngrams == 2:
            sizes["ngram_buckets"] = self.ngram_buckets
        return sizes


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, C)
    attention: torch.Tensor | None  # (B, T) for attention, (B, r, T) for self_attention, else None
    penalty: torch.Tensor | None = None  # scalar, self_attention only
    parts: tuple[torch.Tensor, torch.Tensor] | None = None  # with model.ngrams: the encoder's and the n-grams' (B, C)
    embedded: torch.Tensor | None = None  # (B, T, E): the encoder's inputs before dropout (adversarial training)


class TextClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig, vocab_size: int, num_classes: int, vectors_size: int = 0):
        """``vectors_size``: the width of the pretrained vectors the embedding starts from (0: none)."""
        super().__init__()
        if config.ngrams == "auto":
            raise ConfigError("model.ngrams auto is chosen from the training data: give 0, 1 or 2 to build a model alone")
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.backward_embedding = None
        if config.embedding_per_direction:
            self.backward_embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.vectors_size = vectors_size
        self.register_buffer("static_vectors", None)
        if vectors_size:
            if config.embedding_size < vectors_size:
                raise ConfigError(f"model.embedding_size is {config.embedding_size}, but the vectors are {vectors_size} wide: "
                                  f"give {vectors_size}, or more to learn extra dimensions")  # fmt: skip
            # the rows that hold a pretrained vector (set when they are copied in; saved with the weights)
            self.register_buffer("vector_rows", torch.zeros(vocab_size, dtype=torch.bool))
            if config.vectors_trainable == "both":  # the frozen channel: a buffer, so no optimizer ever sees it
                self.register_buffer("static_vectors", torch.zeros(vocab_size, vectors_size))
            elif config.vectors_trainable == "false":
                self.embedding.weight.register_hook(self._freeze_vector_rows)
        inputs = config.embedding_size + (vectors_size if self.static_vectors is not None else 0)
        self.encoder = RecurrentEncoder(
            inputs, config.hidden_size, config.num_layers, config.bidirectional, config.cell, config.dropout
        )
        self.pooling = POOLINGS[config.pooling](self.encoder.output_size, config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.pooling.output_size, num_classes)
        self.ngrams = NgramBag(vocab_size, num_classes, config.ngrams, config.ngram_buckets) if config.ngrams else None

    def _freeze_vector_rows(self, grad: torch.Tensor) -> torch.Tensor:
        """The embedding's gradient with the pretrained part of each vector row zeroed: AdamW then moves those
        entries by exactly 0 (its moments stay 0), and the embedding takes no weight decay."""
        frozen = self.vector_rows[:, None] & (torch.arange(grad.shape[1], device=grad.device) < self.vectors_size)  # (V, E)
        return grad.masked_fill(frozen, 0.0)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> the encoder's inputs (B, T, E), or (B, T, E + D) beside a frozen copy of the vectors."""
        x = self.embedding(ids)  # (B, T, E)
        if self.static_vectors is not None:
            x = torch.cat([x, nn.functional.embedding(ids, self.static_vectors)], dim=-1)  # (B, T, E + D)
        return x

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor, perturbation: torch.Tensor | None = None
    ) -> ClassifierOutput:
        """ids, mask: (B, T); lengths: (B,) -> logits (B, C) and the attention weights. ``perturbation``
        (B, T, E) is added to the embedded inputs (adversarial training)."""
        embedded = self.embed(ids)  # (B, T, E)
        if perturbation is not None:
            embedded = embedded + perturbation
        x = self.embedding_dropout(embedded)
        backward = None if self.backward_embedding is None else self.embedding_dropout(self.backward_embedding(ids))
        h = self.encoder(x, lengths, mask, backward)  # (B, T, D)
        context, attention = self.pooling(h, mask, lengths)  # (B, P); weights (B, T), (B, r, T) or None
        penalty = self.pooling.penalty(attention)
        logits = self.head(self.dropout(context))  # (B, C)
        if self.ngrams is None:
            return ClassifierOutput(logits, attention, penalty, embedded=embedded)
        ngrams = self.ngrams(ids, mask)  # (B, C)
        return ClassifierOutput(logits + ngrams, attention, penalty, parts=(logits, ngrams), embedded=embedded)
