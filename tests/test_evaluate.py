import pytest
import torch

from seqtext import checkpoint
from seqtext.classifier.evaluation import (
    classification_report,
    classify,
    evaluate_checkpoint,
    evaluate_classifier,
    evaluation_set,
)
from seqtext.errors import DataError
from seqtext.readers import iter_rows


def test_report_figures_match_a_hand_count():
    # truth:      a a a b b c ; predicted: a a b b c c
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1, 2, 2]), 3).float()
    report = classification_report(logits, labels, ["a", "b", "c"])
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert report["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert report["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["n"] == 6 and report["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())


def test_a_class_never_predicted_has_zero_precision_not_nan():
    report = classification_report(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1]), ["x", "y"])
    assert report["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_classify_returns_logits_in_the_split_order(trained_run, sst2_slice):
    model = checkpoint.load(trained_run)
    encoded, _ = evaluation_set(model, str(sst2_slice), split="validation")
    logits = classify(model.model, encoded, batch_size=7)
    for i in (0, 17, 199):
        ids = encoded[i][0][None]
        alone = model.model(ids, torch.tensor([ids.shape[1]]), torch.ones_like(ids, dtype=torch.bool)).logits[0]
        assert torch.allclose(logits[i], alone, atol=1e-5)


def test_evaluation_defaults_to_the_models_own_dataset(trained_run, sst2_slice):
    model = checkpoint.load(trained_run)
    encoded, description = evaluation_set(model, split="validation")
    assert description == f"{sst2_slice}, validation split" and len(encoded) == 200
    with pytest.raises(DataError, match="no split 'test' \\(splits: train, validation\\)"):
        evaluation_set(model)


def test_an_unknown_label_in_evaluation_data_names_label_and_line(trained_run, tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text('{"text": "fine", "label": "positive"}\n{"text": "meh", "label": "neutral"}\n')
    with pytest.raises(DataError, match=r"eval.jsonl, line 2: unknown label 'neutral' \(the model knows: negative, positive\)"):
        evaluation_set(checkpoint.load(trained_run), str(path))


def test_a_file_scored_in_chunks_gives_the_report_of_the_whole(trained_run, sst2_slice):
    model = checkpoint.load(trained_run)
    encoded, _ = evaluation_set(model, str(sst2_slice), split="validation")
    whole = evaluate_classifier(model.model, encoded, model.label_map.names)
    for chunk_size in (7, 64, 10_000):  # the slice's validation.jsonl has its own file: it is streamed
        report, description = evaluate_checkpoint(model, str(sst2_slice), "validation", chunk_size=chunk_size)
        assert description == f"{sst2_slice}, validation split"
        assert report["confusion"] == whole["confusion"] and report["n"] == 200
        assert report["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    report, _ = evaluate_checkpoint(model, str(sst2_slice / "validation.jsonl"), chunk_size=13)
    assert report["confusion"] == whole["confusion"]


def test_rows_are_read_lazily_a_chunk_at_a_time(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"text": "t{i}", "label": "x"}}\n' for i in range(10)) + "not json\n")
    chunks = iter_rows(path, chunk_size=4)
    assert [len(next(chunks).texts) for _ in range(2)] == [4, 4]  # the bad line 11 is not read yet
    with pytest.raises(DataError, match="rows.jsonl, line 11: malformed JSON"):
        next(chunks)
