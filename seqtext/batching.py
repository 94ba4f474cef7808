"""Batches: length-bucketed batches for classification, contiguous streams for language modelling.

Classification: ``EncodedTexts`` holds a split's token ids once, in one flat buffer;
``BucketBatchSampler`` draws batches of texts of similar length (seeded: shuffle, sort within large
pools, cut into batches, shuffle the batches); ``collate`` pads them into ids (B, T), lengths (B,) and a
mask (B, T). Language modelling: ``LMStreams`` cuts one id stream into B contiguous rows and reads them
in windows of T steps, for truncated back-propagation through time.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, Sampler

from seqtext.errors import ConfigError
from seqtext.nn import IGNORE_INDEX
from seqtext.tokenizer import PAD_ID, UNK_ID, Tokenizer

# Texts sorted together by length: 100 batches' worth. Batches cut by max_tokens alone have no count of
# texts to scale by; they take the pool of 100 batches of 64 (changing it would change their epochs).
POOL_SIZE_BY_TOKENS = 6400

MAX_TOKENS = 8192  # padded tokens per evaluation batch: bounds the activations, whatever the text lengths
# Evaluation batches are padded to a multiple of this many tokens. oneDNN keeps a cached kernel, and the
# heap keeps the memory, for every batch shape it has seen: over a long file with every length from 1 to
# 2,000 that grows without end. A few dozen shapes keep it bounded (bench/memory.py measures both).
SHAPE_MULTIPLE = 32


@functools.cache
def _malloc_trim():
    return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system between chunks of a long file (glibc's
    ``malloc_trim``; nothing where there is none), so that a streamed pass does not creep upwards."""
    if (trim := _malloc_trim()) is not None:
        trim(0)


class EncodedTexts(Dataset):
    """Token ids of many texts in one flat buffer, with optional integer labels.

    A text that encodes to no tokens at all gets one ``<unk>``, so every sequence has length >= 1.
    """

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int] | None = None):
        if labels is not None and len(labels) != len(ids):
            raise ValueError(f"{len(ids)} texts but {len(labels)} labels")
        ids = [seq if len(seq) else [UNK_ID] for seq in ids]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        # numpy reads a chained iterator 4x faster than torch.tensor reads a flattened list
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        self.lengths = torch.from_numpy(lengths)  # (N,)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])  # (N + 1,)
        self.flat = torch.from_numpy(flat)  # (sum of lengths,)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)  # (N,)

    @classmethod
    def from_texts(
        cls, tokenizer: Tokenizer, texts: Sequence[str], labels: Sequence[int] | None = None, max_length: int | None = None
    ) -> EncodedTexts:
        return cls(tokenizer.encode_batch(list(texts), max_length), labels)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | None]:
        start, end = self.offsets[index].item(), self.offsets[index + 1].item()
        label = None if self.labels is None else self.labels[index].item()
        return self.flat[start:end], label


@dataclass
class Batch:
    """Padded token ids and what is needed to ignore the padding."""

    ids: torch.Tensor  # (B, T) int64, PAD_ID after each sequence's end
    lengths: torch.Tensor  # (B,) int64, real tokens per row
    mask: torch.Tensor  # (B, T) bool, True on real tokens
    labels: torch.Tensor | None = None  # (B,) int64

    def to(self, device: torch.device | str) -> Batch:
        labels = None if self.labels is None else self.labels.to(device)
        return Batch(self.ids.to(device), self.lengths.to(device), self.mask.to(device), labels)


def collate(items: Sequence[tuple[torch.Tensor, int | None]], multiple: int = 1) -> Batch:
    """Pad a list of (ids, label) pairs into one ``Batch``, its length T rounded up to a ``multiple``."""
    ids = pad_sequence([seq for seq, _ in items], batch_first=True, padding_value=PAD_ID)  # (B, T)
    if ids.shape[1] % multiple:
        ids = F.pad(ids, (0, multiple - ids.shape[1] % multiple), value=PAD_ID)  # (B, T rounded up)
    lengths = torch.tensor([len(seq) for seq, _ in items], dtype=torch.long)  # (B,)
    mask = torch.arange(ids.shape[1]) < lengths[:, None]  # (B, T)
    labels = [label for _, label in items]
    label_tensor = None if None in labels else torch.tensor(labels, dtype=torch.long)  # (B,)
    return Batch(ids, lengths, mask, label_tensor)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose texts have similar lengths, so that little of a batch is padding.

    Each epoch: shuffle all indices, cut them into pools of ``pool_size``, sort each pool by length,
    cut each pool into batches of ``batch_size`` texts, or of at most ``max_tokens`` padded tokens
    (B * longest), and shuffle the batches. The order depends only on (seed, epoch): a run that
    restarts at an epoch sees the same batches.
    """

    def __init__(
        self,
        lengths: torch.Tensor | Sequence[int],
        batch_size: int | None = 64,
        *,
        max_tokens: int | None = None,
        pool_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        if batch_size is None and max_tokens is None:
            raise ConfigError("give batch_size, max_tokens, or both")
        for name, value in (("batch_size", batch_size), ("max_tokens", max_tokens), ("pool_size", pool_size)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, not {value}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.pool_size = pool_size or (100 * batch_size if batch_size else POOL_SIZE_BY_TOKENS)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        if self.max_tokens is None and self.pool_size % self.batch_size == 0:
            n = len(self.lengths)  # only the last pool can end in a short batch
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return len(self.batches())

    def batches(self) -> list[list[int]]:
        """This epoch's batches, as lists of dataset indices."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.lengths)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        batches: list[list[int]] = []
        for start in range(0, n, self.pool_size):
            pool = order[start : start + self.pool_size]
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]  # ties keep their random order
            batches.extend(self._cut(pool.tolist()))
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def _cut(self, pool: list[int]) -> list[list[int]]:
        if self.max_tokens is None:
            batches = [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        else:
            batches, batch, longest = [], [], 0
            for index in pool:  # ascending length, so the newest text is the longest
                length = int(self.lengths[index])
                full = self.batch_size is not None and len(batch) == self.batch_size
                if batch and (full or (len(batch) + 1) * max(longest, length) > self.max_tokens):
                    batches.append(batch)
                    batch, longest = [], 0
                batch.append(index)
                longest = max(longest, length)
            if batch:
                batches.append(batch)
        if self.drop_last and self.max_tokens is None and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches


def padding_efficiency(lengths: torch.Tensor, batches: Sequence[Sequence[int]]) -> float:
    """Real tokens over padded tokens (B * longest, summed over batches): 1.0 means no padding."""
    real = padded = 0
    for batch in batches:
        batch_lengths = lengths[torch.as_tensor(batch)]
        real += int(batch_lengths.sum())
        padded += len(batch) * int(batch_lengths.max())
    return real / padded if padded else 1.0


class LMStreams:
    """One id stream as ``batch_size`` contiguous rows, read in windows of ``bptt`` steps.

    Every pair (ids[k] -> ids[k + 1]) of the corpus is read exactly once, in order: row b holds pairs
    b*L .. (b+1)*L - 1, so a recurrent state carried from one window to the next always continues the
    text it was reading. The last row is padded with ``PAD_ID`` inputs and ``IGNORE_INDEX`` targets.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, bptt: int):
        if batch_size < 1 or bptt < 1:
            raise ConfigError(f"batch_size and bptt must be at least 1, not {batch_size} and {bptt}")
        n_pairs = len(ids) - 1
        if n_pairs < batch_size:
            raise ConfigError(f"a corpus of {len(ids)} tokens is too short for {batch_size} streams")
        self.batch_size = batch_size
        self.bptt = bptt
        self.n_targets = n_pairs
        self.row_length = math.ceil(n_pairs / batch_size)  # L
        inputs = torch.full((batch_size * self.row_length,), PAD_ID, dtype=torch.long)
        targets = torch.full((batch_size * self.row_length,), IGNORE_INDEX, dtype=torch.long)
        inputs[:n_pairs] = ids[:-1]
        targets[:n_pairs] = ids[1:]
        self.inputs = inputs.view(batch_size, self.row_length)  # (B, L)
        self.targets = targets.view(batch_size, self.row_length)  # (B, L)

    def __len__(self) -> int:
        return math.ceil(self.row_length / self.bptt)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, targets), each (B, T); the last window may be shorter than ``bptt``."""
        for start in range(0, self.row_length, self.bptt):
            yield self.inputs[:, start : start + self.bptt], self.targets[:, start : start + self.bptt]
