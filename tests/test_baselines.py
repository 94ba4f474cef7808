"""NBSVM-bi (seqtext/classifier/baselines.py) and `seqtext evaluate --baselines`, which fits it on a model's own
train split and scores it on the same texts as the model."""

import json

import numpy as np
import pytest

import seqtext
from seqtext.classifier.baselines import fit_nbsvm
from seqtext.cli import main

from .conftest import read_jsonl

IDS = {"negative": 0, "positive": 1}  # SST-2's labels in the order seqtext's label map gives them


def _split(path):
    rows = read_jsonl(path)
    return [r["text"] for r in rows], [IDS[r["label"]] for r in rows]


def test_the_log_count_ratios_are_those_counted_by_hand():
    model = fit_nbsvm(["good film", "bad film", "good good"], [1, 0, 1], num_classes=2, c=1.0)
    vocabulary = model.vectorizer.vocabulary_
    r = model.ratios[0]
    # binary counts + 1, positive / negative: good 3/1, film 2/2, bad 1/2, and the bigrams "good film" 2/1,
    # "bad film" 1/2, "good good" 2/1; the positive column sums to 11, the negative to 9
    expected = {"good": np.log((3 / 11) / (1 / 9)), "film": np.log((2 / 11) / (2 / 9)), "bad": np.log((1 / 11) / (2 / 9))}
    for word, value in expected.items():
        assert r[vocabulary[word]] == pytest.approx(value)
    assert model.predict(["good", "bad"]).tolist() == [1, 0]
    with pytest.raises(seqtext.ConfigError, match="labels must be 3 class ids from 0 to 1"):
        fit_nbsvm(["good film", "bad film", "good good"], ["positive", "negative", "positive"], num_classes=2)


def test_several_classes_get_one_model_each_and_scores_per_class():
    texts = ["where is paris", "who wrote it", "where is rome", "who sang it", "how many cats", "how many dogs"]
    model = fit_nbsvm(texts, [0, 1, 0, 1, 2, 2], num_classes=3, c=10.0)
    assert len(model.models) == 3 and model.scores(texts).shape == (6, 3)
    assert model.predict(["where is oslo", "who made it", "how many birds"]).tolist() == [0, 1, 2]


def test_c_is_chosen_on_validation(sst2_slice):
    train, validation = _split(sst2_slice / "train.jsonl"), _split(sst2_slice / "validation.jsonl")
    model = fit_nbsvm(*train, 2, validation=validation)
    accuracies = {}
    for c in (0.1, 0.3, 1.0, 3.0):
        fixed = fit_nbsvm(*train, 2, c=c)
        accuracies[c] = float((fixed.predict(validation[0]) == np.asarray(validation[1])).mean())
    assert model.c == max(accuracies, key=accuracies.get)  # the first of the best, as the grid is tried in order


def test_evaluate_baselines_fits_on_the_models_train_split(trained_run, sst2_slice, capsys):
    result = seqtext.evaluate(trained_run, split="validation", baselines=True)
    baseline = result["baselines"]["NBSVM-bi"]
    assert seqtext.load(trained_run).labels == list(IDS)
    validation = _split(sst2_slice / "validation.jsonl")
    model = fit_nbsvm(*_split(sst2_slice / "train.jsonl"), 2, validation=validation)
    expected = float((model.predict(validation[0]) == np.asarray(validation[1])).mean())
    assert baseline["accuracy"] == pytest.approx(expected) and baseline["C"] == model.c
    assert baseline["fitted_on"].endswith("train split (600 texts)")
    assert sum(map(sum, baseline["confusion"])) == result["n"] == 200
    assert main(["evaluate", str(trained_run), "--split", "validation", "--baselines"]) == 0
    out = capsys.readouterr().out
    assert f"NBSVM-bi (fitted on {baseline['fitted_on']}" in out and f"accuracy {expected:.4f}" in out
    gap = result["macro_f1"] - baseline["macro_f1"]  # imbalanced data is judged by macro-F1 too, beside accuracy
    assert f"macro-F1 {baseline['macro_f1']:.4f}" in out and f"{gap:+.4f} macro-F1" in out
    assert main(["evaluate", str(trained_run), "--split", "validation", "--json", "--baselines"]) == 0
    assert json.loads(capsys.readouterr().out)["baselines"]["NBSVM-bi"]["accuracy"] == pytest.approx(expected)


def test_baselines_are_for_classifiers(tmp_path, shakespeare_slice, capsys):
    run = seqtext.train(
        "recipes/shakespeare.yaml",
        tmp_path / "lm",
        data__dataset=str(shakespeare_slice),
        model={"embedding_size": 8, "hidden_size": 8},
        batching={"batch_size": 4, "bptt": 8},
        train={"max_steps": 1},
    ).run_dir
    assert main(["evaluate", str(run), "--baselines"]) == 2
    assert "seqtext: error: --baselines fits NBSVM-bi beside a classifier; not a language model" in capsys.readouterr().err
