"""Language-model corpora of many documents (IMDB's reviews): each document ended by <eos>, read from the
named splits only, forwards or backwards."""

import gzip
import json

import pytest
import torch

import seqtext
from seqtext.language_model.data import prepare_corpus
from seqtext.recipe import load_recipe
from seqtext.tokenizer import EOS_ID

from .conftest import RECIPES


@pytest.fixture(scope="module")
def reviews(tmp_path_factory, data_dir):
    """30 IMDB train reviews and 30 unsup ones as a folder, beside a test file that cannot be parsed: reading
    it at all would be an error."""
    folder = tmp_path_factory.mktemp("imdb_slice")
    for split in ("train", "unsup"):
        with gzip.open(data_dir / "imdb" / f"{split}.jsonl.gz", "rt") as f:
            (folder / f"{split}.jsonl").write_text("".join(next(f) for _ in range(30)))
    (folder / "test.jsonl").write_text("{this is not json\n")
    return folder


def _recipe(folder, *overrides):
    base = ["--data.dataset", str(folder), "--data.documents", "true", "--data.corpus_splits", "train,unsup"]
    tokenizer = ["--tokenizer.kind", "word", "--tokenizer.path", "null", "--tokenizer.vocab_size", "null"]
    return load_recipe(RECIPES / "shakespeare.yaml", [*base, *tokenizer, *overrides])


def _documents(folder, split):
    return [json.loads(line)["text"] for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def test_each_document_ends_with_eos_and_the_last_ones_validate(reviews):
    prepared = prepare_corpus(_recipe(reviews, "--data.train_fraction", "0.9"))
    documents = _documents(reviews, "train") + _documents(reviews, "unsup")  # in the order of corpus_splits
    assert int((prepared.train_ids == EOS_ID).sum()) == 54 and int((prepared.validation_ids == EOS_ID).sum()) == 6
    expected = [i for ids in prepared.tokenizer.encode_batch(documents[:54]) for i in [*ids, EOS_ID]]
    assert prepared.train_ids.tolist() == expected
    assert prepared.source.endswith("train + unsup (60 documents)")


def test_a_backward_corpus_reads_each_document_backwards(reviews):
    forward = prepare_corpus(_recipe(reviews))
    backward = prepare_corpus(_recipe(reviews, "--data.reverse", "true"), tokenizer=forward.tokenizer)
    ends = torch.nonzero(forward.train_ids == EOS_ID).flatten().tolist()
    start = 0
    for end in ends:
        assert backward.train_ids[start:end].tolist() == forward.train_ids[start:end].flip(0).tolist()
        assert backward.train_ids[end] == EOS_ID
        start = end + 1


def test_a_split_that_is_not_there_is_named(reviews):
    with pytest.raises(seqtext.DataError, match="no split 'extra'"):
        prepare_corpus(_recipe(reviews, "--data.corpus_splits", "train,extra"))


def test_a_document_model_trains_and_evaluates_per_token(reviews, tmp_path):
    overrides = ["--model.embedding_size", "8", "--model.hidden_size", "16", "--batching.batch_size", "4"]
    overrides += ["--batching.bptt", "16", "--train.max_steps", "3", "--data.reverse", "true"]
    recipe = _recipe(reviews, *overrides)
    model = seqtext.train(recipe, tmp_path / "run")
    result = model.evaluate()
    assert result["data"].endswith("validation split (last 10% of the documents)") and "bpc" not in result
    assert result["perplexity"] == pytest.approx(model.validation["perplexity"])
    with pytest.raises(seqtext.ConfigError, match="backward model"):
        model.generate("this movie")
