"""Language model over characters, words or BPE pieces: embedding -> N-layer LSTM / GRU -> an output layer.

The output layer is a full softmax (a linear layer over the vocabulary, optionally tied to the embedding
through a projection) or an adaptive softmax (Grave et al. 2017: frequent tokens in a small head, rare ones
in cheaper clusters), which is what makes a 30,000-word vocabulary affordable on a CPU.

The recurrent state is an argument and a result of ``forward``, never kept on the module, so that
training can carry it from one window of a stream to the next (truncated back-propagation through
time) and generation can prime it with a prompt and then step one character at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqtext.errors import ConfigError
from seqtext.nn import CELLS, IGNORE_INDEX, embedding_dropout, locked_dropout
from seqtext.precision import at_least_fp32, fp32

OUTPUTS = ("full", "adaptive")

State = tuple[torch.Tensor, ...]  # LSTM: (h, c), GRU: (h,); each (num_layers, B, H)


@dataclass
class LanguageModelConfig:
    embedding_size: int = 128
    hidden_size: int = 512
    num_layers: int = 2
    cell: str = "lstm"  # lstm or gru (multi-layer nn modules; the classifier also takes reference_lstm)
    dropout: float = 0.2  # on the embedding, between recurrent layers, and before the output layer
    tie_weights: bool = False  # share the embedding with the output layer (through a projection if sizes differ)
    output: str = "full"  # full softmax, or adaptive (nn.AdaptiveLogSoftmaxWithLoss)
    adaptive_cutoffs: tuple[int, ...] = (2000, 10000)  # adaptive only: the head's and each cluster's last id
    adaptive_div: float = 4.0  # adaptive only: each cluster's projection is this much narrower than the last
    embedding_dropout: float = 0.0  # AWD-LSTM: drop whole words (rows of the embedding) in training
    locked_dropout: bool = False  # AWD-LSTM: one dropout mask per sequence, the same at every step
    weight_drop: float = 0.0  # AWD-LSTM's DropConnect: drop entries of the hidden-to-hidden weights in training
    # word vectors (a file, or a catalogue name such as glove.6B.50d) that start the embedding's first
    # dimensions for the words they have (a word or BPE vocabulary); the rest is learnt, and all of it is trained
    vectors: str | None = None

    def __post_init__(self):
        if self.cell not in ("lstm", "gru"):
            raise ConfigError(f"model.cell must be one of lstm, gru, not {self.cell!r}")
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, not {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}")
        for name in ("embedding_dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1), not {getattr(self, name)}")
        if self.output not in OUTPUTS:
            raise ConfigError(f"model.output must be one of {', '.join(OUTPUTS)}, not {self.output!r}")
        self.adaptive_cutoffs = tuple(self.adaptive_cutoffs)
        if self.output == "adaptive":
            if self.tie_weights:
                raise ConfigError("model.tie_weights works with output: full only")
            cutoffs = list(self.adaptive_cutoffs)
            if not cutoffs or cutoffs != sorted(set(cutoffs)) or cutoffs[0] <= 0:
                raise ConfigError(f"model.adaptive_cutoffs must be increasing positive ids, not {list(self.adaptive_cutoffs)}")
            if self.adaptive_div < 1:
                raise ConfigError(f"model.adaptive_div must be at least 1, not {self.adaptive_div}")

    def sizes(self) -> dict[str, int]:
        """The sizes the module is built with, each some weight's dimension: a checkpoint checks them
        against its weights before building anything (seqtext/checkpoint.py)."""
        sizes = {"embedding_size": self.embedding_size, "hidden_size": self.hidden_size}
        if self.output == "adaptive":  # every cutoff is below the vocabulary size, the head's rows
            sizes["adaptive_cutoffs"] = max(self.adaptive_cutoffs)
        return sizes


class OutputLayer(nn.Module):
    """The language model's output layer, one of three: full (a linear layer over the vocabulary), tied (that
    layer's weight is the embedding's, through a projection when the widths differ), or adaptive (Grave et al.
    2017's adaptive softmax, ``nn.AdaptiveLogSoftmaxWithLoss``). ``scores`` gives logits (log-probabilities
    from the adaptive one), ``loss`` the training objective, ``token_losses`` each target's negative
    log-likelihood: the model's loss lives here alone."""

    def __init__(self, config: LanguageModelConfig, vocab_size: int, embedding: nn.Embedding):
        super().__init__()
        self.adaptive, self.projection = config.output == "adaptive", None
        if self.adaptive:
            if config.adaptive_cutoffs[-1] >= vocab_size:
                raise ConfigError(
                    f"model.adaptive_cutoffs must be below the vocabulary size {vocab_size}, not {list(config.adaptive_cutoffs)}"
                )
            self.head = nn.AdaptiveLogSoftmaxWithLoss(
                config.hidden_size, vocab_size, list(config.adaptive_cutoffs), div_value=config.adaptive_div
            )
            return
        tied_projection = config.tie_weights and config.embedding_size != config.hidden_size
        self.projection = nn.Linear(config.hidden_size, config.embedding_size) if tied_projection else None
        self.head = nn.Linear(config.embedding_size if tied_projection else config.hidden_size, vocab_size)
        if config.tie_weights:
            self.head.weight = embedding.weight

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """(..., H) -> scores over the vocabulary (..., V): logits, or log-probabilities for the adaptive softmax."""
        if self.adaptive:
            with fp32(h.device):  # its log-sum-exp over clusters, in float32 under bf16 autocast too
                return self.head.log_prob(h.reshape(-1, h.shape[-1]).to(at_least_fp32(h))).view(*h.shape[:-1], -1)
        return self.head(self.projection(h) if self.projection is not None else h)

    def loss(self, h: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> tuple[torch.Tensor, torch.Tensor | None]:
        """h (B, T, H), targets (B, T) -> the negative log-likelihood of the scored targets (not IGNORE_INDEX),
        their mean or ``reduction`` sum, and the most likely next ids (B, T) (None from an adaptive softmax)."""
        if self.adaptive:  # no logits to give: the adaptive softmax scores the targets' clusters only
            losses, predicted = self.token_losses(h, targets)  # (B, T)
            total = losses.sum()
            return (total / (targets != IGNORE_INDEX).sum() if reduction == "mean" else total), predicted
        logits = self.scores(h)  # (B, T, V)
        total = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction=reduction)
        return total, logits.argmax(-1)

    def token_losses(self, h: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h (B, T, H), targets (B, T) -> each target's negative log-likelihood (B, T) (0 where IGNORE_INDEX),
        and the most likely next id (B, T). The adaptive softmax scores only the targets' clusters and gives
        no most likely id (None): finding it would cost the full softmax it saves."""
        if not self.adaptive:
            logits = self.scores(h)  # (B, T, V)
            scores = logits.flatten(0, 1).to(at_least_fp32(logits))  # half precision scored in float32
            losses = F.cross_entropy(scores, targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
            return losses.view_as(targets), logits.argmax(-1)
        flat, wanted = h.flatten(0, 1).to(at_least_fp32(h)), targets.flatten()  # (B*T, H) in float32 or wider, (B*T,)
        valid = wanted != IGNORE_INDEX
        losses = torch.zeros(wanted.shape, dtype=flat.dtype, device=h.device)  # (B*T,)
        with fp32(h.device):  # under bf16 autocast too: the head's log-sum-exp needs float32
            if valid.any():
                losses[valid] = -self.head(flat[valid], wanted[valid]).output
            else:  # nothing to score: a loss of 0 that still reaches the weights, so backward (and DDP) work
                losses = losses + 0.0 * flat.sum()
        return losses.view_as(targets), None


class RecurrentLanguageModel(nn.Module):
    def __init__(self, config: LanguageModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        between = config.dropout if config.num_layers > 1 else 0.0
        self.rnn = CELLS[config.cell](
            config.embedding_size, config.hidden_size, config.num_layers, batch_first=True, dropout=between
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = OutputLayer(config, vocab_size, self.embedding)

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    @property
    def adaptive(self) -> bool:
        return self.output.adaptive

    def features(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids: (B, T), state: each (L, B, H) or None (zeros) -> what the output layer reads (B, T, H), the state."""
        x = self._dropout(embedding_dropout(self.embedding, ids, self.config.embedding_dropout, self.training))  # (B, T, E)
        if self.config.cell == "lstm":
            h, (h_n, c_n) = self._recurrent(x, state)  # (B, T, H)
            new_state = (h_n, c_n)
        else:
            h, h_n = self._recurrent(x, state[0] if state is not None else None)  # (B, T, H)
            new_state = (h_n,)
        return self._dropout(h), new_state

    def _recurrent(self, x: torch.Tensor, state):
        """The recurrent layers; in training with ``weight_drop``, over hidden-to-hidden weights with entries
        dropped (DropConnect, Wan et al. 2013, as AWD-LSTM): one mask for the whole batch and every step."""
        if not (self.training and self.config.weight_drop):
            return self.rnn(x, state)
        dropped = {
            name: F.dropout(weight, self.config.weight_drop)  # (G*H, H), kept entries scaled by 1 / (1 - p)
            for name, weight in self.rnn.named_parameters()
            if name.startswith("weight_hh")
        }
        return torch.func.functional_call(self.rnn, dropped, (x, state))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(..., H) -> scores over the vocabulary (..., V): logits, or log-probabilities for the adaptive softmax."""
        return self.output.scores(h)

    def forward(self, ids: torch.Tensor, state: State | None = None, targets: torch.Tensor | None = None,
                reduction: str = "mean"):  # fmt: skip
        """ids: (B, T), state: each (L, B, H) or None (zeros) -> scores (B, T, V), the state after step T.
        With ``targets`` (B, T): ``loss`` instead (one call, so DistributedDataParallel sees it)."""
        if targets is not None:
            return self.loss(ids, targets, state, reduction)
        h, new_state = self.features(ids, state)
        return self.logits(h), new_state  # (B, T, V)

    def loss(self, ids: torch.Tensor, targets: torch.Tensor, state: State | None = None, reduction: str = "mean"):
        """The training objective (``OutputLayer.loss``) over targets (B, T), the most likely next ids (B, T)
        (None from an adaptive softmax), and the state after step T."""
        h, new_state = self.features(ids, state)  # (B, T, H)
        total, predicted = self.output.loss(h, targets, reduction)
        return total, predicted, new_state

    def token_losses(
        self, ids: torch.Tensor, targets: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """ids, targets: (B, T) -> each target's negative log-likelihood (B, T) (0 where IGNORE_INDEX), the
        most likely next id (B, T) (None from an adaptive softmax), and the state (``OutputLayer.token_losses``)."""
        h, new_state = self.features(ids, state)  # (B, T, H)
        losses, predicted = self.output.token_losses(h, targets)
        return losses, predicted, new_state

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        return locked_dropout(x, self.config.dropout, self.training) if self.config.locked_dropout else self.dropout(x)


def detach_state(state: State | None) -> State | None:
    """Cut the graph between windows: gradients stop here, the values carry on."""
    return None if state is None else tuple(s.detach() for s in state)
