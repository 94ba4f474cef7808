"""Word vectors in a classifier, end to end on SST-2 slices and the real GloVe 6B 50d file: the open
vocabulary, the three regimes (fine-tuned, frozen, both), the card, export, and the default recipe that
`seqtext train --data` trains."""

import json
import shutil

import pytest
import torch

import seqtext
from seqtext.cli import main
from seqtext.recipe import default_recipe_path, for_data, load_recipe
from seqtext.training import train

from .conftest import RECIPES, TINY_MODEL

SMALL = [*TINY_MODEL, "--model.embedding_size", "50", "--model.vectors_vocab", "3000", "--model.ngrams", "0"]


def _train(folder, out, *overrides, steps=6):
    recipe = for_data(None, ["--train.max_steps", str(steps), "--train.eval_every", "3", *SMALL, *overrides], str(folder))
    train(recipe, out, progress=False)
    return seqtext.load(out / "last")


@pytest.fixture(scope="module")
def glove():
    from seqtext.vectors import read_vectors

    return read_vectors("glove.6B.50d")


def test_a_word_only_the_test_split_has_keeps_its_vector(sst2_slice, tmp_path, glove):
    model = _train(sst2_slice, tmp_path / "run", steps=1)
    tokenizer, weight = model.checkpoint.tokenizer, model.module.embedding.weight
    train_words = {word for line in (sst2_slice / "train.jsonl").read_text().splitlines()
                   for word in json.loads(line)["text"].lower().split()}  # fmt: skip
    word = next(w for w in glove.words[:3000] if w.isalpha() and w not in train_words)
    row = tokenizer.token_to_id(word)
    assert row is not None and row > 3  # in the vocabulary, not <unk>
    vector = glove.vectors[glove.index()[word]]
    # one step of fine-tuning cannot have reached a word no training text has: its row is the vector itself
    assert torch.equal(weight[row, :50].detach(), vector)
    assert model.predict(f"a {word} film").error is None
    closed = _train(sst2_slice, tmp_path / "closed", "--model.vectors_vocab", "0", steps=1)
    assert closed.checkpoint.tokenizer.token_to_id(word) is None  # without the open vocabulary: <unk>


def test_frozen_vector_rows_stay_bit_identical_while_the_rest_learns(sst2_slice, tmp_path, glove):
    model = _train(sst2_slice, tmp_path / "run", "--model.vectors_trainable", "false", "--model.embedding_size", "64",
                   "--train.eval_every", "100", steps=20)  # fmt: skip
    module, tokenizer = model.module, model.checkpoint.tokenizer
    rows = module.vector_rows.nonzero().squeeze(1)
    assert len(rows) > 1000
    words = [tokenizer.id_to_token(int(row)) for row in rows]
    expected = glove.vectors[[glove.index()[word] for word in words]]
    assert torch.equal(module.embedding.weight[rows, :50].detach(), expected)  # not a bit moved
    # what learns: the words the vectors lack, and the 14 dimensions past the vectors' 50 (step 1 against 20)
    early = _train(sst2_slice, tmp_path / "early", "--model.vectors_trainable", "false", "--model.embedding_size", "64", steps=1)
    assert torch.equal(early.module.embedding.weight[rows, :50], module.embedding.weight[rows, :50])
    assert not torch.equal(early.module.embedding.weight[rows, 50:], module.embedding.weight[rows, 50:])


def test_both_keeps_a_frozen_copy_beside_the_fine_tuned_one(sst2_slice, tmp_path, glove):
    model = _train(sst2_slice, tmp_path / "run", "--model.vectors_trainable", "both", "--train.lr", "0.05", steps=10)
    module, tokenizer = model.module, model.checkpoint.tokenizer
    row = tokenizer.token_to_id("film")
    assert torch.equal(module.static_vectors[row], glove.vectors[glove.index()["film"]])
    assert not torch.equal(module.embedding.weight[row].detach(), glove.vectors[glove.index()["film"]])
    assert module.encoder.forward_layers[0].input_size == 100  # the 50 fine-tuned and the 50 frozen
    assert "static_vectors" not in dict(module.named_parameters())  # no optimizer ever sees it


def test_the_card_names_the_vectors_and_their_coverage(sst2_slice, tmp_path, glove):
    model = _train(sst2_slice, tmp_path / "run", steps=1)
    vectors = model.card["data"]["vectors"]
    assert vectors["source"] == "glove.6B.50d" and vectors["sha256"] == glove.sha256 and vectors["dim"] == 50
    assert 0.95 < vectors["coverage"]["tokens"] <= 1 and 0.9 < vectors["coverage"]["types"] <= 1
    assert vectors["trainable"] == "true" and vectors["vectors_vocab"] == 3000


def test_a_narrower_embedding_than_the_vectors_is_one_line(sst2_slice, tmp_path):
    with pytest.raises(seqtext.SeqtextError, match="model.embedding_size is 16, but the vectors are 50 wide"):
        _train(sst2_slice, tmp_path / "run", "--model.embedding_size", "16")


@pytest.mark.parametrize("regime", ["true", "both"])
def test_an_exported_model_with_vectors_matches_pytorch(sst2_slice, tmp_path, regime):
    from seqtext.export import export, load_exported

    model = _train(sst2_slice, tmp_path / "run", "--model.vectors_trainable", regime, steps=3)
    export(model, tmp_path / "export" / "model.onnx", "onnx")
    exported = load_exported(tmp_path / "export" / "model.onnx")
    texts = ["a gorgeous , witty film", "dull", "it 's a charming and often affecting journey about a zyzzyva ."]
    ours, theirs = model.predict(texts), exported.predict(texts, max_length=400)
    for a, b in zip(ours, theirs):
        for label in a.probs:
            assert a.probs[label] == pytest.approx(b.probs[label], abs=1e-4)


def test_new_data_builds_its_own_vocabulary_unless_asked(sst2_slice):
    messages = []
    recipe = for_data(RECIPES / "sst2.yaml", [], str(sst2_slice), log=messages.append)
    assert recipe.tokenizer.path is None and "vocabulary is built from its training split" in messages[0]
    kept = for_data(RECIPES / "sst2.yaml", [], str(sst2_slice), keep_tokenizer=True)
    assert kept.tokenizer.path.endswith("vocab/sst2-word.json")
    assert for_data(RECIPES / "sst2.yaml", [], None).tokenizer.path.endswith("vocab/sst2-word.json")


def test_train_with_data_and_no_recipe_runs_the_default_classifier(sst2_slice, tmp_path, capsys):
    out = tmp_path / "mine"
    with_bag = [*SMALL[:-2], "--model.ngram_buckets", "1024"]  # the default's model.ngrams: auto
    code = main(["train", "--data", str(sst2_slice), "--out", str(out), "--max-steps", "4", *with_bag, "--train.eval_every", "2"])
    assert code == 0
    err = capsys.readouterr().err
    assert "word vectors glove.6B.50d" in err and "more words from the vectors' 3,000 most frequent" in err
    assert "model.ngrams auto -> 2: 600 training texts" in err
    model = seqtext.load(out)
    assert model.card["recipe"]["model"]["vectors"] == "glove.6B.50d"
    assert model.recipe.model.ngrams == 2 and model.module.ngrams is not None  # the checkpoint holds the choice
    assert main(["recipe", "default"]) == 0
    printed = capsys.readouterr().out
    assert printed == default_recipe_path().read_text() and "vectors: glove.6B.50d" in printed
    recipe = load_recipe(default_recipe_path(), {"data.dataset": "trec"})  # the shipped recipe validates
    assert recipe.model.vectors == "glove.6B.50d" and recipe.model.ngrams == "auto"


def test_the_default_recipe_says_when_it_trains_without_vectors(sst2_slice, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQTEXT_VECTORS", str(tmp_path))  # an empty folder
    monkeypatch.setenv("SEQTEXT_OFFLINE", "1")
    messages = []
    recipe = for_data(None, [], str(sst2_slice), log=messages.append)
    assert recipe.model.vectors is None and messages[0].startswith("seqtext: training without word vectors: ")
    assert "glove.6B.50d" in messages[0] and "SEQTEXT_VECTORS" in messages[0]
    named = load_recipe(RECIPES / "sst2.yaml", ["--model.vectors", "glove.6B.50d", "--data.dataset", str(sst2_slice),
                                                 "--train.max_steps", "1", "--model.embedding_size", "50"])  # fmt: skip
    with pytest.raises(seqtext.SeqtextError, match="glove.6B.50d"):  # a recipe that names them needs them
        train(named, tmp_path / "run", progress=False)


def test_recipe_overrides_after_data_are_never_read_as_a_recipe(sst2_slice, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", str(sst2_slice), "--out", str(out), *SMALL, "--train.max_steps", "2"]) == 0
    assert seqtext.load(out).recipe.train.max_steps == 2
    shutil.rmtree(out)


def test_a_model_with_vectors_serves(sst2_slice, tmp_path):
    from fastapi.testclient import TestClient

    from seqtext.serve import create_app

    model = _train(sst2_slice, tmp_path / "run", "--model.vectors_trainable", "both", steps=2)
    texts = ["a gorgeous , witty film", "dull"]
    with TestClient(create_app(tmp_path / "run" / "last")) as client:
        answer = client.post("/v1/classify", json={"texts": texts}).json()
        card = client.get("/v1/model").json()["card"]
    for served, local in zip(answer["predictions"], model.predict(texts)):
        assert served["label"] == local.label and served["probs"] == pytest.approx(local.probs, abs=1e-6)
    assert card["data"]["vectors"]["source"] == "glove.6B.50d"


def test_a_language_models_embedding_can_start_from_vectors(shakespeare_slice, tmp_path, glove):
    from .conftest import TINY_LM

    overrides = ["--data.dataset", str(shakespeare_slice), "--train.max_steps", "1", "--train.lr", "1e-12", *TINY_LM,
                 "--tokenizer.kind", "word", "--tokenizer.path", "null", "--model.vectors", "glove.6B.50d",
                 "--model.embedding_size", "60"]  # fmt: skip
    notes = []
    train(load_recipe(RECIPES / "shakespeare.yaml", overrides), tmp_path / "lm", progress=False, log=notes.append)
    model = seqtext.load(tmp_path / "lm" / "last")
    row = model.checkpoint.tokenizer.token_to_id("Citizen")  # the vectors are lowercased: looked up as "citizen"
    assert torch.allclose(model.module.embedding.weight[row, :50], glove.vectors[glove.index()["citizen"]], atol=1e-9)
    assert any(note.startswith("seqtext: word vectors glove.6B.50d start ") for note in notes)


@pytest.mark.parametrize(
    ("texts", "tokens", "bag"),
    [(49_999, 10, 2), (50_000, 49, 0), (50_000, 50, 2), (67_349, 9, 0)],  # SST-2's train split: 67,349 phrases
)
def test_model_ngrams_auto_keeps_the_bag_for_few_or_long_texts(texts, tokens, bag):
    from seqtext.batching import EncodedTexts
    from seqtext.classifier.task import choose_ngrams

    train_set = EncodedTexts([[5] * tokens] * texts, [0] * texts)
    chosen, why = choose_ngrams(train_set)
    assert chosen == bag and f"{texts:,} training texts, {tokens:.1f} tokens on average" in why


def test_a_model_cannot_be_built_with_ngrams_auto():
    from seqtext.classifier.model import ClassifierConfig, TextClassifier

    with pytest.raises(seqtext.SeqtextError, match="model.ngrams auto is chosen from the training data"):
        TextClassifier(ClassifierConfig(ngrams="auto"), vocab_size=10, num_classes=2)
    with pytest.raises(seqtext.SeqtextError, match="model.ngrams must be 0, 1, 2 or auto, not True"):
        ClassifierConfig(ngrams=True)
