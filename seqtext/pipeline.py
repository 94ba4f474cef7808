"""From a recipe to batches, the parts every text kind shares: build or load a tokenizer, bucket encoded
texts. Each kind's own data module (seqtext/classifier/data.py, seqtext/language_model/data.py) loads its
dataset and encodes it with these; ``seqtext data`` prints the same summary that training starts from.
"""

from __future__ import annotations

from pathlib import Path

from seqtext.batching import BucketBatchSampler, EncodedTexts
from seqtext.recipe import BatchingConfig, TokenizerConfig
from seqtext.tokenizer import Tokenizer


def train_tokenizer(config: TokenizerConfig, train_texts: list[str]) -> Tokenizer:
    return Tokenizer.train(
        config.kind, train_texts, vocab_size=config.vocab_size, min_freq=config.min_freq, lowercase=config.lowercase
    )


def get_tokenizer(config: TokenizerConfig, train_texts: list[str]) -> tuple[Tokenizer, str]:
    """The tokenizer at ``config.path`` if that file exists, else one trained on ``train_texts``.

    Returns it and a note of where it came from.
    """
    if config.path is not None and Path(config.path).exists():
        return Tokenizer.load(config.path), str(config.path)
    return train_tokenizer(config, train_texts), f"trained on the train split ({sum(map(len, train_texts)):,} characters)"


def bucket_sampler(encoded: EncodedTexts, batching: BatchingConfig, seed: int, shuffle: bool = True) -> BucketBatchSampler:
    return BucketBatchSampler(
        encoded.lengths,
        batching.batch_size,
        max_tokens=batching.max_tokens,
        pool_size=batching.pool_size,
        shuffle=shuffle,
        seed=seed,
    )
