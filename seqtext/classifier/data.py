"""A classifier's data: labelled splits loaded, a tokenizer (with the vectors' words, when asked) and the texts encoded."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import tokenizers

from seqtext.batching import BucketBatchSampler, EncodedTexts, collate, padding_efficiency
from seqtext.data import TextData, load_splits
from seqtext.errors import ConfigError
from seqtext.pipeline import bucket_sampler, get_tokenizer
from seqtext.recipe import Recipe
from seqtext.tokenizer import Tokenizer
from seqtext.vectors import WordVectors


@dataclass
class ClassificationData:
    """A labelled dataset, its tokenizer, and the splits that were asked for, encoded."""

    data: TextData
    tokenizer: Tokenizer
    tokenizer_source: str
    encoded: dict[str, EncodedTexts]
    seconds: dict[str, float] = field(default_factory=dict)  # load, tokenizer, encode


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
