"""A language model's data: a corpus (one text or documents) split by position and encoded as id streams."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from seqtext.batching import LMStreams
from seqtext.data import load_corpus, load_documents, split_corpus
from seqtext.errors import DataError
from seqtext.pipeline import get_tokenizer
from seqtext.recipe import Recipe, TokenizerConfig
from seqtext.tokenizer import EOS_ID, Tokenizer


@dataclass
class CorpusData:
    """A language-modelling corpus split by position, its tokenizer, and both parts as id streams."""

    source: str
    tokenizer: Tokenizer
    tokenizer_source: str
    train_ids: torch.Tensor  # (N_train,)
    validation_ids: torch.Tensor  # (N_validation,)
    seconds: dict[str, float] = field(default_factory=dict)


def corpus_texts(config: TokenizerConfig, part: str | list[str]) -> list[str]:
    """A corpus part as a tokenizer trains on it: documents as they are; a text whole for characters, a
    line at a time for words and BPE."""
    if isinstance(part, list):
        return part
    return [part] if config.kind == "char" else part.splitlines()


def corpus_tokenizer_texts(recipe: Recipe) -> list[str]:
    """The texts a language model's tokenizer trains on: its training corpus, as the tokenizer reads it."""
    return corpus_texts(recipe.tokenizer, load_corpus_parts(recipe)[0])


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
