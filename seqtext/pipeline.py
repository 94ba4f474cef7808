"""From a recipe to batches: load the dataset, build or load its tokenizer, encode the splits, bucket them.

``seqtext data`` runs this and prints a summary; training and evaluation start from the same functions,
so what the summary reports is what a model is trained on.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import tokenizers
import torch

from seqtext.batching import BucketBatchSampler, EncodedTexts, LMStreams, collate, padding_efficiency
from seqtext.data import TextData, load_corpus, load_documents, load_splits, split_corpus
from seqtext.errors import ConfigError, DataError
from seqtext.recipe import BatchingConfig, Recipe, TokenizerConfig
from seqtext.tokenizer import EOS_ID, Tokenizer
from seqtext.vectors import WordVectors


@dataclass
class ClassificationData:
    """A labelled dataset, its tokenizer, and the splits that were asked for, encoded."""

    data: TextData
    tokenizer: Tokenizer
    tokenizer_source: str
    encoded: dict[str, EncodedTexts]
    seconds: dict[str, float] = field(default_factory=dict)  # load, tokenizer, encode


@dataclass
class CorpusData:
    """A language-modelling corpus split by position, its tokenizer, and both parts as id streams."""

    source: str
    tokenizer: Tokenizer
    tokenizer_source: str
    train_ids: torch.Tensor  # (N_train,)
    validation_ids: torch.Tensor  # (N_validation,)
    seconds: dict[str, float] = field(default_factory=dict)


def train_tokenizer(config: TokenizerConfig, train_texts: list[str]) -> Tokenizer:
    return Tokenizer.train(
        config.kind, train_texts, vocab_size=config.vocab_size, min_freq=config.min_freq, lowercase=config.lowercase
    )


def corpus_texts(config: TokenizerConfig, part: str | list[str]) -> list[str]:
    """A corpus part as a tokenizer trains on it: documents as they are; a text whole for characters, a
    line at a time for words and BPE."""
    if isinstance(part, list):
        return part
    return [part] if config.kind == "char" else part.splitlines()


def get_tokenizer(config: TokenizerConfig, train_texts: list[str]) -> tuple[Tokenizer, str]:
    """The tokenizer at ``config.path`` if that file exists, else one trained on ``train_texts``.

    Returns it and a note of where it came from.
    """
    if config.path is not None and Path(config.path).exists():
        return Tokenizer.load(config.path), str(config.path)
    return train_tokenizer(config, train_texts), f"trained on the train split ({sum(map(len, train_texts)):,} characters)"


def open_vocabulary(tokenizer: Tokenizer, vectors: WordVectors, count: int) -> tuple[Tokenizer, int]:
    """``tokenizer`` with those of ``vectors``' first ``count`` words that it lacks, appended after its own
    ids (which do not change), and how many: a test word that the training split never had then keeps
    its pretrained vector instead of becoming ``<unk>``. Only words that the word tokenizer can produce
    whole are added (GloVe's ``don't`` never comes out of it: it reads ``don ' t``)."""
    if tokenizer.kind != "word":
        raise ConfigError(f"model.vectors_vocab adds words to a word tokenizer, not a {tokenizer.kind} one", "vectors_vocab")
    spec = json.loads(tokenizer.backend.to_str())
    vocab = spec["model"]["vocab"]
    before = len(vocab)
    for word in vectors.words[:count]:
        if word not in vocab and _WHOLE_WORD.fullmatch(word):
            vocab[word] = len(vocab)
    return Tokenizer(tokenizers.Tokenizer.from_str(json.dumps(spec))), len(vocab) - before


_WHOLE_WORD = re.compile(r"\w+|[^\w\s]+")  # what the word tokenizer's pre-tokenizer (Whitespace) cuts text into


def labelled_texts(recipe: Recipe) -> list[str]:
    """The texts a classifier's tokenizer trains on: its training split's."""
    return list(load_labelled(recipe).splits["train"]["text"])


def corpus_tokenizer_texts(recipe: Recipe) -> list[str]:
    """The texts a language model's tokenizer trains on: its training corpus, as the tokenizer reads it."""
    return corpus_texts(recipe.tokenizer, load_corpus_parts(recipe)[0])


def load_labelled(recipe: Recipe, source=None) -> TextData:
    """The recipe's labelled dataset (or ``source``: data in memory), every split encoded with the training
    split's label map."""
    data = recipe.data
    if source is None and data.dataset is None:
        raise ConfigError("data.dataset is not set: give the data to train on (--data FILE, or data=)", "data")
    return load_splits(
        data.dataset if source is None else source,
        data_directory=data.data_dir,
        text_column=data.text_column,
        label_column=data.label_column,
        on_bad_rows=data.on_bad_rows,
        validation_fraction=data.validation_fraction,
        seed=recipe.seed,
        label_names=data.label_names,
    )


def corpus_ids(tokenizer: Tokenizer, part: str | list[str], reverse: bool = False) -> torch.Tensor:
    """One id stream (N,) of a corpus part: a text, or documents each followed by ``<eos>``; each document
    (or the text) backwards with ``reverse``, its end-of-document token still after it."""
    if isinstance(part, str):
        ids = tokenizer.encode_corpus(part)
        return ids.flip(0) if reverse else ids
    stream = []
    for ids in tokenizer.encode_batch(part):
        stream.extend(ids[::-1] if reverse else ids)
        stream.append(EOS_ID)
    return torch.tensor(stream, dtype=torch.long)


def load_corpus_parts(recipe: Recipe, source=None) -> tuple[str | list[str], str | list[str], str]:
    """(training part, validation part, a description of the source): the corpus (or ``source``, data in
    memory) split by position; with ``data.documents``, lists of documents, the last ones validating."""
    data = recipe.data
    source = data.dataset if source is None else source
    if data.documents:
        documents, source = load_documents(source, data.splits, data_directory=data.data_dir, text_column=data.text_column)
        cut = int(len(documents) * data.train_fraction)
        if cut == 0 or cut == len(documents):
            raise DataError(f"{source}: too few documents to hold out {1 - data.train_fraction:.0%} for validation")
        return documents[:cut], documents[cut:], source
    text, source = load_corpus(source, data_directory=data.data_dir, text_column=data.text_column)
    return (*split_corpus(text, data.train_fraction), source)


def prepare_classification(
    recipe: Recipe,
    splits: tuple[str, ...] = ("train", "validation"),
    tokenizer: Tokenizer | None = None,
    data=None,
    vectors: WordVectors | None = None,
) -> ClassificationData:
    """Load the recipe's dataset (or ``data`` in memory) and its tokenizer (or use ``tokenizer``), and encode
    ``splits``. A tokenizer trained here takes ``vectors``' most frequent words too (``model.vectors_vocab``)."""
    clock = time.perf_counter()
    data = load_labelled(recipe, data)
    seconds = {"load": time.perf_counter() - clock}
    clock = time.perf_counter()
    if tokenizer is not None:
        tokenizer_source = "the checkpoint's"
    else:
        tokenizer, tokenizer_source = get_tokenizer(recipe.tokenizer, data.splits["train"]["text"])
        count = getattr(recipe.model, "vectors_vocab", 0)
        if vectors is not None and count and tokenizer_source.startswith("trained"):
            tokenizer, added = open_vocabulary(tokenizer, vectors, count)
            tokenizer_source += f", and {added:,} more words from the vectors' {count:,} most frequent"
    seconds["tokenizer"] = time.perf_counter() - clock
    clock = time.perf_counter()
    encoded = {
        split: EncodedTexts.from_texts(tokenizer, data.splits[split]["text"], data.splits[split]["label"], recipe.data.max_length)
        for split in splits
    }
    seconds["encode"] = time.perf_counter() - clock
    return ClassificationData(data, tokenizer, tokenizer_source, encoded, seconds)


def prepare_corpus(recipe: Recipe, tokenizer: Tokenizer | None = None, data=None) -> CorpusData:
    """Load the recipe's corpus (or ``data`` in memory), split it by position, and encode both parts with its
    tokenizer (or ``tokenizer``)."""
    clock = time.perf_counter()
    train_part, validation_part, source = load_corpus_parts(recipe, data)
    seconds = {"load": time.perf_counter() - clock}
    clock = time.perf_counter()
    if tokenizer is not None:
        tokenizer_source = "the checkpoint's"
    else:
        tokenizer, tokenizer_source = get_tokenizer(recipe.tokenizer, corpus_texts(recipe.tokenizer, train_part))
    seconds["tokenizer"] = time.perf_counter() - clock
    clock = time.perf_counter()
    train_ids, validation_ids = (corpus_ids(tokenizer, part, recipe.data.reverse) for part in (train_part, validation_part))
    seconds["encode"] = time.perf_counter() - clock
    return CorpusData(source, tokenizer, tokenizer_source, train_ids, validation_ids, seconds)


def bucket_sampler(encoded: EncodedTexts, batching: BatchingConfig, seed: int, shuffle: bool = True) -> BucketBatchSampler:
    return BucketBatchSampler(
        encoded.lengths,
        batching.batch_size,
        max_tokens=batching.max_tokens,
        pool_size=batching.pool_size,
        shuffle=shuffle,
        seed=seed,
    )


def classification_summary(recipe: Recipe, prepared: ClassificationData | None = None) -> dict:
    """What ``seqtext data`` reports: splits, labels, tokens, batches and how long each stage took."""
    prepared = prepared or prepare_classification(recipe)
    data, train = prepared.data, prepared.encoded["train"]
    clock = time.perf_counter()
    sampler = bucket_sampler(train, recipe.batching, recipe.seed)
    batches = sampler.batches()
    for batch in batches:  # time the collate too: this is the work an epoch's data loading does
        collate([train[i] for i in batch])
    seconds = {**prepared.seconds, "batch": time.perf_counter() - clock}
    # Sorting within pools of one batch changes nothing: the same sampler then gives random batches (of the
    # bucketed batches' mean size, when batches are cut by max_tokens rather than a count of texts).
    size = recipe.batching.batch_size or max(1, round(len(train) / max(1, len(batches))))
    random_batches = BucketBatchSampler(train.lengths, size, pool_size=size, seed=recipe.seed).batches()
    counts = Counter(data.splits["train"]["label"])
    max_length = recipe.data.max_length
    return {
        "dataset": data.source,
        "splits": {split: len(table) for split, table in data.splits.items()},
        "skipped_rows": {split: n for split, n in data.skipped.items() if n},
        "labels": {name: counts.get(i, 0) for i, name in enumerate(data.label_map.names)},
        "tokenizer": {
            "kind": prepared.tokenizer.kind,
            "vocab_size": prepared.tokenizer.vocab_size,
            "source": prepared.tokenizer_source,
        },
        "train_tokens": {
            "total": int(train.lengths.sum()),
            "mean": round(float(train.lengths.float().mean()), 2),
            "max": int(train.lengths.max()),
            "truncated": int((train.lengths == max_length).sum()) if max_length else 0,
        },
        "batches": {
            "count": len(batches),
            "batch_size": recipe.batching.batch_size,
            "max_tokens": recipe.batching.max_tokens,
            "padding_efficiency": round(padding_efficiency(train.lengths, batches), 4),
            "random_batches_padding_efficiency": round(padding_efficiency(train.lengths, random_batches), 4),
        },
        "seconds": {stage: round(value, 3) for stage, value in seconds.items()},
    }


def corpus_summary(recipe: Recipe, prepared: CorpusData | None = None) -> dict:
    """What ``seqtext data`` reports for a language model: tokens, tokenizer, streams and timings."""
    prepared = prepared or prepare_corpus(recipe)
    bptt = recipe.batching.bptt
    usable = len(prepared.train_ids) - (bptt - 1)  # as training reads it: each epoch from an offset below bptt
    streams = LMStreams(prepared.train_ids[:usable], recipe.batching.batch_size, bptt)
    return {
        "dataset": prepared.source,
        "tokens": {"train": len(prepared.train_ids), "validation": len(prepared.validation_ids)},
        "tokenizer": {
            "kind": prepared.tokenizer.kind,
            "vocab_size": prepared.tokenizer.vocab_size,
            "source": prepared.tokenizer_source,
        },
        "streams": {"count": streams.batch_size, "length": streams.row_length, "bptt": streams.bptt, "windows": len(streams)},
        "seconds": {stage: round(value, 3) for stage, value in prepared.seconds.items()},
    }
