"""Character-level language model: embedding -> N-layer LSTM / GRU -> linear layer over the vocabulary.

The recurrent state is an argument and a result of ``forward``, never kept on the module, so that
training can carry it from one window of a stream to the next (truncated back-propagation through
time) and generation can prime it with a prompt and then step one character at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqtext.errors import ConfigError
from seqtext.nn import CELLS

State = tuple[torch.Tensor, ...]  # LSTM: (h, c), GRU: (h,); each (num_layers, B, H)


@dataclass
class LanguageModelConfig:
    embedding_size: int = 128
    hidden_size: int = 512
    num_layers: int = 2
    cell: str = "lstm"  # lstm or gru (multi-layer nn modules; the classifier also takes reference_lstm)
    dropout: float = 0.2  # on the embedding, between recurrent layers, and before the output layer
    tie_weights: bool = False  # share the embedding with the output layer (needs embedding_size == hidden_size)

    def __post_init__(self):
        if self.cell not in ("lstm", "gru"):
            raise ConfigError(f"model.cell must be one of lstm, gru, not {self.cell!r}")
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, not {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}")
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise ConfigError(
                f"model.tie_weights needs embedding_size == hidden_size, not {self.embedding_size} and {self.hidden_size}"
            )


class CharLM(nn.Module):
    def __init__(self, config: LanguageModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        between = config.dropout if config.num_layers > 1 else 0.0
        self.rnn = CELLS[config.cell](
            config.embedding_size, config.hidden_size, config.num_layers, batch_first=True, dropout=between
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, vocab_size)
        if config.tie_weights:
            self.head.weight = self.embedding.weight

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids: (B, T), state: each (L, B, H) or None (zeros) -> logits (B, T, V), the state after step T."""
        x = self.dropout(self.embedding(ids))  # (B, T, E)
        if self.config.cell == "lstm":
            h, (h_n, c_n) = self.rnn(x, state)  # (B, T, H)
            new_state = (h_n, c_n)
        else:
            h, h_n = self.rnn(x, state[0] if state is not None else None)  # (B, T, H)
            new_state = (h_n,)
        return self.head(self.dropout(h)), new_state  # (B, T, V)


def detach_state(state: State | None) -> State | None:
    """Cut the graph between windows: gradients stop here, the values carry on."""
    return None if state is None else tuple(s.detach() for s in state)
