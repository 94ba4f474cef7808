"""Pretrained word vectors (GloVe or word2vec text format) copied into an embedding matrix."""

from __future__ import annotations

from pathlib import Path

import torch

from seqtext.errors import DataError
from seqtext.readers import guard_file, guarded_lines, open_binary, utf8_problem
from seqtext.tokenizer import SPECIAL_TOKENS, Tokenizer


def load_vectors(path: str | Path, tokenizer: Tokenizer, weight: torch.Tensor) -> float:
    """Copy the vector of every vocabulary word found in ``path`` into ``weight`` (V, E), in place.

    Lines are ``word v1 v2 ... vE``; a word2vec header line (``count dim``) is skipped. Words missing from
    the file keep their random initialisation. Returns the fraction of the vocabulary (special tokens
    aside) that the file covered.
    """
    path = Path(path)
    vocab = tokenizer.backend.get_vocab()
    size = weight.shape[1]
    found = set()
    if not path.is_file():
        raise DataError(f"{path}: no such word-vector file")
    with guard_file(path, lambda: open_binary(path)) as raw, torch.no_grad():
        for number, data in enumerate(guarded_lines(path, iter(raw)), start=1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}, line {number}: {utf8_problem(data, err)}") from None
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            index = vocab.get(parts[0])
            if index is None or index in found:
                continue
            if len(parts) != size + 1:
                raise DataError(f"{path}, line {number}: {len(parts) - 1} numbers, but the embedding has {size}")
            try:
                weight[index] = torch.tensor([float(x) for x in parts[1:]])
            except ValueError:
                raise DataError(f"{path}, line {number}: not a word followed by numbers") from None
            found.add(index)
    return len(found) / max(1, len(vocab) - len(SPECIAL_TOKENS))
