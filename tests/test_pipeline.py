import pytest

from seqtext.classifier.data import classification_summary, prepare_classification
from seqtext.data import load_corpus
from seqtext.language_model.data import prepare_corpus
from seqtext.recipe import load_recipe

from .conftest import RECIPES, ROOT


@pytest.mark.slow
def test_classification_recipe_loads_its_shipped_tokenizer_and_encodes_labelled_splits():
    recipe = load_recipe(RECIPES / "trec.yaml", ["--data.max_length", "12"])
    prepared = prepare_classification(recipe, splits=("train", "validation", "test"))
    assert prepared.tokenizer_source == str(ROOT / "vocab" / "trec-word.json")
    assert set(prepared.encoded) == {"train", "validation", "test"}
    assert set(prepare_classification(recipe).encoded) == {"train", "validation"}
    assert {s: len(e) for s, e in prepared.encoded.items()} == {s: len(t) for s, t in prepared.data.splits.items()}
    assert int(prepared.encoded["train"].lengths.max()) == 12
    summary = classification_summary(recipe, prepared)
    assert summary["train_tokens"]["truncated"] == int((prepared.encoded["train"].lengths == 12).sum()) > 0
    assert summary["labels"]["ABBR"] + summary["labels"]["NUM"] == sum(
        1 for label in prepared.data.splits["train"]["label"] if prepared.data.label_map.names[label] in ("ABBR", "NUM")
    )


@pytest.mark.slow
def test_a_missing_tokenizer_file_is_trained_instead(tmp_path):
    recipe = load_recipe(
        RECIPES / "trec.yaml",
        ["--tokenizer.path", str(tmp_path / "none.json"), "--tokenizer.kind", "bpe", "--tokenizer.vocab_size", "300"],
    )
    prepared = prepare_classification(recipe)
    assert prepared.tokenizer.kind == "bpe" and prepared.tokenizer.vocab_size == 300
    assert prepared.tokenizer_source.startswith("trained on the train split")
    assert not (tmp_path / "none.json").exists()  # the data command never writes


@pytest.mark.slow
def test_corpus_recipe_splits_by_position_and_encodes_both_parts(data_dir):
    prepared = prepare_corpus(load_recipe(RECIPES / "shakespeare.yaml"))
    text = load_corpus("tinyshakespeare", data_directory=data_dir)[0]
    assert (len(prepared.train_ids), len(prepared.validation_ids)) == (1003854, 111540)
    decoded = prepared.tokenizer.decode(prepared.train_ids.tolist()) + prepared.tokenizer.decode(prepared.validation_ids.tolist())
    assert decoded == text
