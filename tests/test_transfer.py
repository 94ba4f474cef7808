"""Classifiers started from pretrained language models (model.encoder_from): the tokenizer, the embedding
and each direction's recurrent layers come from a forward and a backward language model."""

import json

import pytest
import torch

import seqtext
from seqtext.recipe import load_recipe
from seqtext.tokenizer import PAD_ID
from seqtext.transfer import load_encoders, pretrained_encoders

from .conftest import RECIPES

SIZES = {"embedding_size": 16, "hidden_size": 16}


@pytest.fixture(scope="module")
def language_models(tmp_path_factory, sst2_slice):
    """A forward and a backward word-level language model, trained for a few steps on the SST-2 slice's texts."""
    folder = tmp_path_factory.mktemp("lms")
    for direction in ("forward", "backward"):
        seqtext.train(
            RECIPES / "shakespeare.yaml",
            folder / direction,
            data__dataset=str(sst2_slice),
            data__documents=True,
            data__reverse=direction == "backward",
            tokenizer={"kind": "word", "path": None, "vocab_size": None, "lowercase": True},
            model={**SIZES, "num_layers": 1},
            batching={"batch_size": 4, "bptt": 16},
            train={"max_steps": 3},
        )
    return folder


def _classifier_recipe(sst2_slice, encoder_from, **model):
    overrides = {
        "data.dataset": str(sst2_slice),
        "model": {**SIZES, "attention_size": 8, "encoder_from": str(encoder_from), "embedding_per_direction": True, **model},
    }
    return load_recipe(RECIPES / "sst2.yaml", overrides)


def test_each_direction_starts_from_its_language_model(language_models, sst2_slice):
    encoders = pretrained_encoders(language_models)
    assert list(encoders) == ["forward", "backward"]
    recipe = _classifier_recipe(sst2_slice, language_models)
    classifier = seqtext.kinds.get("classifier").module(recipe.model, encoders["forward"].tokenizer.vocab_size, 2)
    load_encoders(classifier, encoders)
    forward, backward = encoders["forward"].model, encoders["backward"].model
    assert torch.equal(classifier.embedding.weight[1:], forward.embedding.weight[1:])
    assert torch.equal(classifier.backward_embedding.weight[1:], backward.embedding.weight[1:])
    assert not torch.equal(forward.embedding.weight, backward.embedding.weight)
    assert (classifier.embedding.weight[PAD_ID] == 0).all() and (classifier.backward_embedding.weight[PAD_ID] == 0).all()
    assert torch.equal(classifier.encoder.forward_layers[0].weight_hh_l0, forward.rnn.weight_hh_l0)
    assert torch.equal(classifier.encoder.backward_layers[0].weight_ih_l0, backward.rnn.weight_ih_l0)
    assert not torch.equal(forward.rnn.weight_hh_l0, backward.rnn.weight_hh_l0)


def test_each_direction_reads_text_as_its_language_model_did(language_models, sst2_slice):
    """The classifier's forward states on a padded batch are the forward model's on each text, and its
    backward states are the backward model's on each text reversed: the same inputs, weights and order."""
    encoders = pretrained_encoders(language_models)
    recipe = _classifier_recipe(sst2_slice, language_models)
    tokenizer = encoders["forward"].tokenizer
    classifier = seqtext.kinds.get("classifier").module(recipe.model, tokenizer.vocab_size, 2).eval()
    load_encoders(classifier, encoders)
    texts = ["a gorgeous , witty , seductive movie .", "dull", "it 's a charming and often affecting journey ."]
    rows = [torch.tensor(tokenizer.encode(text)) for text in texts]
    lengths = torch.tensor([len(row) for row in rows])
    ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD_ID)
    mask = (ids != PAD_ID).float()
    with torch.no_grad():
        states = classifier.encoder(classifier.embedding(ids), lengths, mask, classifier.backward_embedding(ids))  # (B, T, 2H)
        for b, row in enumerate(rows):
            forward_states, _ = encoders["forward"].model.eval().rnn(encoders["forward"].model.embedding(row[None]))
            backward_states, _ = encoders["backward"].model.eval().rnn(encoders["backward"].model.embedding(row.flip(0)[None]))
            n, size = len(row), SIZES["hidden_size"]
            torch.testing.assert_close(states[b, :n, :size], forward_states[0])
            torch.testing.assert_close(states[b, :n, size:], backward_states[0].flip(0))


def test_a_classifier_trained_from_them_reads_their_tokenizer(language_models, sst2_slice, tmp_path):
    notes = []
    from seqtext.training import train

    train(_classifier_recipe(sst2_slice, language_models), tmp_path / "run", progress=False, log=notes.append)
    saved = json.loads((tmp_path / "run" / "best" / "tokenizer.json").read_text())
    assert saved == json.loads((language_models / "forward" / "best" / "tokenizer.json").read_text())
    assert notes == [f"seqtext: tokenizer, embedding and forward and backward layers from {language_models}"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"hidden_size": 32}, "model.hidden_size is 32, but"),
        ({"num_layers": 2}, "model.num_layers is 2, but"),
        ({"bidirectional": False, "embedding_per_direction": False}, "has a backward language model, but model.bidirectional"),
        ({"embedding_per_direction": False}, "its own embedding: set model.embedding_per_direction: true"),
    ],
)
def test_sizes_that_do_not_match_are_one_line_errors(language_models, sst2_slice, tmp_path, model, message):
    from seqtext.training import train

    with pytest.raises(seqtext.ConfigError, match=message):
        train(_classifier_recipe(sst2_slice, language_models, **model), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_backward_model_cannot_start_the_forward_direction(language_models, sst2_slice):
    with pytest.raises(seqtext.ConfigError, match="reads backwards cannot start the forward direction"):
        pretrained_encoders(language_models / "backward")
