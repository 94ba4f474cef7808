"""A kind is one unit: tests/toykind defines one outside seqtext, and one ``kinds.register`` line makes the
command line train, evaluate and describe it, while the server and export, which it does not support,
say so in one line. Nothing in seqtext names it."""

import json

import pytest

from seqtext import kinds
from seqtext.cli import main
from seqtext.errors import ConfigError
from tests import toykind


@pytest.fixture
def bag_kind(monkeypatch):
    monkeypatch.setattr(kinds, "KINDS", {kind.name: kind for kind in kinds.every()})  # the registry as it was, after the test
    monkeypatch.setattr(kinds, "_ALIASES", dict(kinds._ALIASES))
    return kinds.register(toykind.KIND)  # the one registry line


def test_a_kind_from_outside_trains_evaluates_and_reports_through_the_command_line(bag_kind, sst2_slice, tmp_path, capsys):
    recipe = tmp_path / "bag.yaml"
    recipe.write_text(
        f"kind: bag\ndata:\n  dataset: {sst2_slice}\ntokenizer:\n  kind: word\n  lowercase: true\n"
        "batching:\n  batch_size: 32\nmodel:\n  embedding_size: 8\ntrain:\n  lr: 0.01\n  epochs: 2\n  eval_every: 10\n"
    )
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "best validation accuracy" in out
    card = json.loads((run / "best" / "card.json").read_text())
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["kind"] == "bag" and config["model"] == {"embedding_size": 8}
    assert main(["evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy {card['validation']['accuracy']:.4f}" in printed  # evaluate reads the best checkpoint again
    assert main(["data", str(recipe), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"] == {"train": 600, "validation": 200}
    assert main(["tokenizer", str(recipe), "--out", str(tmp_path / "tokenizer.json")]) == 0
    assert "word tokenizer" in capsys.readouterr().out
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "bag.onnx")]) == 2
    assert "a bag has no export: classifiers, language models do" in capsys.readouterr().err
    assert main(["serve", str(run)]) == 2
    assert "a bag answers no requests: the server holds classifiers, language models" in capsys.readouterr().err
    assert main(["predict", str(run), "a fine film"]) == 2
    assert "a bag checkpoint, not a classifier" in capsys.readouterr().err


def test_a_kind_is_registered_once(bag_kind):
    with pytest.raises(ConfigError, match="a kind called 'bag' is registered already"):
        kinds.register(toykind.KIND)
    with pytest.raises(ConfigError, match="kind must be one of classifier, language_model, forecaster, bag, not 'bog'"):
        kinds.get("bog")


def test_a_saved_recipe_holds_only_the_sections_its_kind_reads(trained_run):
    saved = json.loads((trained_run / "best" / "config.json").read_text())["recipe"]
    assert set(saved) == {"kind", "seed", "data", "tokenizer", "batching", "model", "train"}  # no series section
    from seqtext.recipe import load_recipe

    forecaster = load_recipe(None, base={"kind": "forecaster", "batching": {"batch_size": 8}}).to_dict()
    assert set(forecaster) == {"kind", "seed", "data", "batching", "model", "train", "series"}  # no tokenizer
