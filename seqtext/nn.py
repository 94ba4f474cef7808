"""Small layers the models share: masked softmax, a padding-exact recurrent encoder, and pooling.

Every layer here takes a mask (B, T), True on real tokens, and gives results that do not depend on how
much padding follows a sequence: a text's logits alone and in a mixed-length batch are the same.
"""

from __future__ import annotations

import torch
from torch import nn

from seqtext.cells import LSTMLayer
from seqtext.precision import at_least_fp32
from seqtext.tokenizer import PAD_ID

# reference_lstm: seqtext/cells.py's LSTM with back-propagation written by hand, for study (slow: a Python loop)
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "reference_lstm": LSTMLayer}
IGNORE_INDEX = -100  # a target that is not scored: padding, or an unknown word (cross_entropy's default)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over the positions where ``mask`` is True; exactly 0 elsewhere, and 0 for all-padding rows.
    Always in float32 (under bf16 autocast too): attention weights over hundreds of tokens need its mantissa."""
    probs = torch.softmax(scores.to(at_least_fp32(scores)).masked_fill(~mask, float("-inf")), dim=dim)
    return probs.masked_fill(~mask, 0.0)  # an all-padding row is NaN after the softmax; make it 0


def embedding_dropout(embedding: nn.Embedding, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Look up ``ids`` (B, T) -> (B, T, E), in training with whole rows of the table dropped (AWD-LSTM): a
    dropped word is zeros wherever it occurs in the batch, the kept rows scaled by 1 / (1 - p)."""
    if not training or p == 0.0:
        return embedding(ids)
    keep = torch.empty(embedding.num_embeddings, 1, device=ids.device).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return nn.functional.embedding(ids, embedding.weight * keep, embedding.padding_idx)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, the same at every step (variational dropout): x (B, T, D)."""
    if not training or p == 0.0:
        return x
    mask = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype).bernoulli_(1 - p) / (1 - p)  # (B, 1, D)
    return x * mask


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` steps and leave its padding in place. Its own inverse.

    x: (B, T, D), lengths: (B,) -> (B, T, D)
    """
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    last = lengths[:, None] - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


class RecurrentEncoder(nn.Module):
    """LSTM or GRU, one or two directions, ``num_layers`` layers with dropout between them.

    Each direction of each layer is its own one-layer ``nn.LSTM`` / ``nn.GRU``. The forward one reads the
    left-aligned batch as it is: padding comes after every real token, so it cannot reach them. The
    backward one reads each row reversed within its own length. This gives the outputs of packed
    sequences (``pack_padded_sequence``) to float rounding, near the speed of padded ones: on CPU it runs
    faster than packing, and the more so the longer the texts (bench/encoder_speed.py measures both).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        cell: str = "lstm",
        dropout: float = 0.0,
    ):
        super().__init__()
        rnn = CELLS[cell]
        directions = 2 if bidirectional else 1
        self.output_size = hidden_size * directions
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for layer in range(num_layers):
            size = input_size if layer == 0 else self.output_size
            self.forward_layers.append(rnn(size, hidden_size, batch_first=True))
            if bidirectional:
                self.backward_layers.append(rnn(size, hidden_size, batch_first=True))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor, backward_input: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, T, E), lengths: (B,), mask: (B, T) -> outputs (B, T, D), 0 on padding. ``backward_input``
        (B, T, E), if given, is what the first backward layer reads instead of ``x`` (its own embedding)."""
        for layer, forward_rnn in enumerate(self.forward_layers):
            if layer > 0:
                x = self.dropout(x)
            outputs, _ = forward_rnn(x)  # (B, T, H)
            if self.backward_layers:
                inputs = backward_input if layer == 0 and backward_input is not None else x
                backward, _ = self.backward_layers[layer](reverse_within_length(inputs, lengths))  # (B, T, H)
                outputs = torch.cat([outputs, reverse_within_length(backward, lengths)], dim=-1)  # (B, T, 2H)
            x = outputs * mask[:, :, None]  # (B, T, D)
        return x


class AdditiveAttention(nn.Module):
    """score_t = v^T tanh(W h_t + b); alpha = softmax over real tokens; context = sum_t alpha_t h_t."""

    def __init__(self, input_size: int, attention_size: int):
        super().__init__()
        self.w = nn.Linear(input_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: (B, T, D), mask: (B, T) -> context (B, D), weights (B, T)."""
        scores = self.v(torch.tanh(self.w(h))).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        context = torch.bmm(weights[:, None, :], h).squeeze(1)  # (B, D)
        return context, weights


class SelfAttentivePooling(nn.Module):
    """Lin et al. (2017): A = softmax(W2 tanh(W1 H^T)) with r heads; M = A H, flattened to (B, r * D).

    ``penalty(A)`` = ||A A^T - I||_F^2, averaged over the batch, pushes the heads to look at different words.
    """

    def __init__(self, input_size: int, attention_size: int, heads: int):
        super().__init__()
        self.w1 = nn.Linear(input_size, attention_size, bias=False)
        self.w2 = nn.Linear(attention_size, heads, bias=False)
        self.output_size = input_size * heads

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: (B, T, D), mask: (B, T) -> context (B, r * D), weights (B, r, T)."""
        scores = self.w2(torch.tanh(self.w1(h))).transpose(1, 2)  # (B, r, T)
        weights = masked_softmax(scores, mask[:, None, :])  # (B, r, T)
        context = torch.bmm(weights, h)  # (B, r, D)
        return context.flatten(1), weights

    @staticmethod
    def penalty(weights: torch.Tensor) -> torch.Tensor:
        """weights: (B, r, T) -> scalar."""
        gram = torch.bmm(weights, weights.transpose(1, 2))  # (B, r, r)
        identity = torch.eye(gram.shape[1], device=gram.device)
        return ((gram - identity) ** 2).sum(dim=(1, 2)).mean()


class NgramBag(nn.Module):
    """A linear model over the text's words and hashed word pairs, whose class scores the classifier adds to
    its own (a bag of n-grams beside the recurrent encoder, as fastText's are beside nothing; the "wide"
    half of Cheng et al. 2016's wide and deep model). Each token id is a feature, and with ``n = 2`` each
    adjacent pair hashed into one of ``buckets``; the scores are the mean of their weights, which start at 0.

    ids, mask: (B, T) -> scores (B, C)
    """

    PRIME = 1_000_003  # pairs (a, b) hash to (a * PRIME + b) mod buckets: spread, and exact in int64

    def __init__(self, vocab_size: int, num_classes: int, n: int, buckets: int):
        super().__init__()
        self.vocab_size, self.n, self.buckets = vocab_size, n, buckets
        rows = vocab_size + (buckets if n == 2 else 0)
        # zeros given, not drawn and then zeroed: building it leaves the random stream as it was
        self.weight = nn.Embedding(rows, num_classes, padding_idx=PAD_ID, _weight=torch.zeros(rows, num_classes))

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, F) feature ids, PAD_ID where there is none."""
        ids = ids.masked_fill(~mask, PAD_ID)  # (B, T)
        if self.n == 1:
            return ids
        pairs = self.vocab_size + (ids[:, :-1] * self.PRIME + ids[:, 1:]) % self.buckets  # (B, T - 1)
        pairs = pairs.masked_fill(~mask[:, 1:], PAD_ID)  # (B, T - 1)
        return torch.cat([ids, pairs], dim=1)  # (B, 2T - 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        features = self.features(ids, mask)  # (B, F)
        present = features != PAD_ID  # (B, F)
        total = self.weight(features).sum(1)  # (B, C): the padding row is 0
        return total / present.sum(1, keepdim=True).clamp(min=1)  # (B, C)


def mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """h: (B, T, D) -> (B, D), the mean over real tokens."""
    return (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


def max_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """h: (B, T, D) -> (B, D), the maximum over real tokens."""
    return h.masked_fill(~mask[:, :, None], float("-inf")).amax(1)


def last_pool(h: torch.Tensor, lengths: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """The final state of each direction: forward at the last real token, backward at the first.

    h: (B, T, D), lengths: (B,) -> (B, D)
    """
    rows = torch.arange(h.shape[0], device=h.device)
    forward = h[rows, lengths - 1]  # (B, D)
    if not bidirectional:
        return forward
    half = h.shape[2] // 2
    return torch.cat([forward[:, :half], h[:, 0, half:]], dim=-1)  # (B, D)


class Pooling(nn.Module):
    """One vector a text from the encoder's states, the signature every pooling shares (AllenNLP's seq2vec
    encoders): h (B, T, D), mask (B, T), lengths (B,) -> context (B, output_size), and the weights it pooled
    with ((B, T), (B, r, T)) where it has them, else None. Built as ``POOLINGS[name](D, model_config)``."""

    explains = False  # its weights say which tokens a prediction looked at (predict --explain, exports)

    def __init__(self, input_size: int, config):
        super().__init__()
        self.output_size = input_size

    @staticmethod
    def sizes(config) -> dict[str, int]:
        """The config's sizes that some weight of this pooling has (checked against a checkpoint's weights)."""
        return {}

    def penalty(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        """A term for the loss, or None."""
        return None


class AttentionPooling(Pooling):
    explains = True

    def __init__(self, input_size: int, config):
        super().__init__(input_size, config)
        self.attention = AdditiveAttention(input_size, config.attention_size)

    @staticmethod
    def sizes(config) -> dict[str, int]:
        return {"attention_size": config.attention_size}

    def forward(self, h, mask, lengths):
        return self.attention(h, mask)  # (B, D), (B, T)


class SelfAttentionPooling(Pooling):
    explains = True

    def __init__(self, input_size: int, config):
        super().__init__(input_size, config)
        self.attention = SelfAttentivePooling(input_size, config.attention_size, config.attention_heads)
        self.output_size = self.attention.output_size
        self.penalty_weight = config.attention_penalty

    @staticmethod
    def sizes(config) -> dict[str, int]:
        return {"attention_size": config.attention_size, "attention_heads": config.attention_heads}

    def forward(self, h, mask, lengths):
        return self.attention(h, mask)  # (B, r * D), (B, r, T)

    def penalty(self, weights):
        return SelfAttentivePooling.penalty(weights) if self.penalty_weight > 0 else None


class MeanPooling(Pooling):
    def forward(self, h, mask, lengths):
        return mean_pool(h, mask), None  # (B, D)


class MaxPooling(Pooling):
    def forward(self, h, mask, lengths):
        return max_pool(h, mask), None  # (B, D)


class LastPooling(Pooling):
    def __init__(self, input_size: int, config):
        super().__init__(input_size, config)
        self.bidirectional = config.bidirectional

    def forward(self, h, mask, lengths):
        return last_pool(h, lengths, self.bidirectional), None  # (B, D)


class ConcatPooling(LastPooling):
    """ULMFiT's concat pooling: the last state, the maximum and the mean."""

    def __init__(self, input_size: int, config):
        super().__init__(input_size, config)
        self.output_size = 3 * input_size

    def forward(self, h, mask, lengths):
        last = last_pool(h, lengths, self.bidirectional)  # (B, D)
        return torch.cat([last, max_pool(h, mask), mean_pool(h, mask)], dim=1), None  # (B, 3D)


# model.pooling's names; a new pooling is a Pooling subclass and one line here
POOLINGS: dict[str, type[Pooling]] = {
    "attention": AttentionPooling,
    "self_attention": SelfAttentionPooling,
    "mean": MeanPooling,
    "max": MaxPooling,
    "last": LastPooling,
    "concat": ConcatPooling,
}
