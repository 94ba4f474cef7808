"""seqtext export: ONNX and TorchScript graphs equal the PyTorch model on real texts, padding included; an
exported language model generates the same text for the same seed; int8 keeps a trained model's accuracy."""

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import seqtext
from seqtext.cli import main
from seqtext.errors import ConfigError, DataError
from seqtext.export import load_exported
from seqtext.recipe import load_recipe
from seqtext.training import train

from .conftest import RECIPES, TINY_MODEL

SUFFIX = {"onnx": "onnx", "torchscript": "pt"}


def _sentences(data_dir, n: int) -> tuple[list[str], list[str]]:
    with gzip.open(data_dir / "sst2" / "validation.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f][:n]
    return [row["text"] for row in rows], [row["label"] for row in rows]


def _padded(model, texts):
    rows = [torch.tensor(model.tokenizer.encode(text)) for text in texts]
    lengths = torch.tensor([len(row) for row in rows])
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), lengths


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory, sst2_slice) -> Path:
    """The tiny SST-2 classifier with a bag of words and hashed pairs (model.ngrams: 2) beside its encoder."""
    run = tmp_path_factory.mktemp("runs") / "sst2-ngrams"
    overrides = ["--data.dataset", str(sst2_slice), "--train.max_steps", "12", "--train.eval_every", "6", *TINY_MODEL,
                 "--model.ngrams", "2", "--model.ngram_buckets", "5000"]  # fmt: skip
    train(load_recipe(RECIPES / "sst2.yaml", overrides), run, progress=False)
    return run


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("run", ["trained_run", "ngram_run"])
def test_an_exported_classifier_equals_pytorch_on_a_padded_batch(run, data_dir, tmp_path, format, request):
    trained_run = request.getfixturevalue(run)
    model = seqtext.load(trained_run)
    if run == "ngram_run":
        assert model.module.ngrams.weight.weight.abs().sum() > 0  # trained away from the zeros it starts with
    texts, _ = _sentences(data_dir, 40)
    assert len({len(model.tokenizer.encode(text)) for text in texts}) > 10  # mixed lengths: most rows are padded
    path = tmp_path / f"model.{SUFFIX[format]}"
    assert main(["export", str(trained_run), "--format", format, "--out", str(path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["card.json", "labels.json", path.name, "tokenizer.json"])
    assert json.loads((tmp_path / "labels.json").read_text()) == model.labels
    exported = load_exported(path)
    ids, lengths = _padded(model, texts)
    probs, attention = exported.forward(ids, lengths)  # inputs ids, lengths; outputs probs, then attention
    with torch.no_grad():
        out = model.module(ids, lengths, torch.arange(ids.shape[1]) < lengths[:, None])
    torch.testing.assert_close(probs, torch.softmax(out.logits, -1), atol=1e-4, rtol=0)
    torch.testing.assert_close(attention, out.attention, atol=1e-4, rtol=0)
    assert (attention[torch.arange(ids.shape[1]) >= lengths[:, None]] == 0).all()  # nothing on the padding
    ours, theirs = model.predict(texts), exported.predict(texts)
    assert [p.label for p in theirs] == [p.label for p in ours]
    for a, b in zip(ours, theirs):
        assert max(abs(a.probs[k] - b.probs[k]) for k in a.probs) < 1e-4


def test_the_onnx_graph_names_its_inputs_and_outputs_in_order(trained_run, tmp_path):
    import onnxruntime

    path = tmp_path / "model.onnx"
    assert main(["export", str(trained_run), "--out", str(path)]) == 0
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [("ids", "tensor(int64)"), ("lengths", "tensor(int64)")]
    assert [o.name for o in session.get_outputs()] == ["probs", "attention"]
    assert json.loads((tmp_path / "card.json").read_text())["export"]["outputs"] == ["probs", "attention"]


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_exported_language_model_generates_what_pytorch_generates(lm_run, tmp_path, format):
    model = seqtext.load(lm_run)
    path = tmp_path / f"model.{SUFFIX[format]}"
    assert main(["export", str(lm_run), "--format", format, "--out", str(path)]) == 0
    exported = load_exported(path)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["ids", "h", "c"]
        assert [o.name for o in session.get_outputs()] == ["logits", "h_next", "c_next"]
    for options in ({"temperature": 0.8, "seed": 7}, {"temperature": 1.0, "top_k": 5, "seed": 1}, {"temperature": 0}):
        expected = model.generate("ROMEO:", length=120, **options)
        assert exported.generate("ROMEO:", length=120, **options) == expected
    state = exported._zeros(2)
    logits, *after = exported.runner(torch.tensor([[5, 6, 7], [8, 9, 10]]), *state)  # (ids, h, c) -> (logits, h, c)
    with torch.no_grad():
        scores, (h, c) = model.module(torch.tensor([[5, 6, 7], [8, 9, 10]]))
    torch.testing.assert_close(logits, scores[:, -1], atol=1e-4, rtol=0)
    torch.testing.assert_close(after[0], h, atol=1e-5, rtol=0)
    torch.testing.assert_close(after[1], c, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_int8_keeps_a_trained_classifiers_accuracy(sst2_model, data_dir, tmp_path):
    texts, labels = _sentences(data_dir, 872)
    model = seqtext.load(sst2_model)
    accuracy = {"fp32": np.mean([p.label == y for p, y in zip(model.predict(texts), labels)])}
    assert accuracy["fp32"] > 0.62  # a model that learnt something: int8 has something to lose
    runs = {"pytorch int8": seqtext.load(sst2_model, int8=True)}
    for format in ("onnx", "torchscript"):
        path = tmp_path / format / f"model.{SUFFIX[format]}"
        assert main(["export", str(sst2_model), "--format", format, "--out", str(path), "--int8"]) == 0
        runs[f"{format} int8"] = load_exported(path)
    graph = onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph
    assert "DynamicQuantizeLSTM" in {node.op_type for node in graph.node}
    for name, run in runs.items():
        predicted = run.predict(texts)
        accuracy[name] = np.mean([p.label == y for p, y in zip(predicted, labels)])
        agree = np.mean([a.label == b.label for a, b in zip(predicted, model.predict(texts))])
        assert abs(accuracy[name] - accuracy["fp32"]) <= 0.01 and agree >= 0.97, (name, accuracy, agree)


def test_predict_and_generate_take_int8(trained_run, lm_run, capsys):
    assert main(["predict", str(trained_run), "--int8", "--json", "a gorgeous , witty movie ."]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("negative", "positive")
    assert main(["generate", str(lm_run), "--int8", "--length", "20", "--seed", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"][0]) == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite"], "argument --format: invalid choice"),
        (["--out", "{tmp}"], "is a directory; give the file to write"),
        (["--out", "{run}/best/model.onnx"], "is a checkpoint; write the export to a folder of its own"),
    ],
)
def test_bad_export_arguments_are_one_line_errors(trained_run, tmp_path, capsys, args, message):
    argv = ["export", str(trained_run), "--out", str(tmp_path / "m.onnx")]
    argv += [arg.format(tmp=tmp_path, run=trained_run) for arg in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_failed_export_leaves_the_older_file_whole(trained_run, tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    assert main(["export", str(trained_run), "--out", str(path)]) == 0
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(RuntimeError, match="the exporter broke"):
        seqtext.export.export(seqtext.load(trained_run), path, "onnx")
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


@pytest.fixture(scope="module")
def exports(tmp_path_factory, trained_run, lm_run) -> dict[tuple[str, str], Path]:
    """(kind, format) -> the exported model file, for the tiny classifier and language model."""
    found = {}
    for kind, run in (("classifier", trained_run), ("language_model", lm_run)):
        for format, suffix in SUFFIX.items():
            path = tmp_path_factory.mktemp(f"{kind}-{format}") / f"model.{suffix}"
            assert main(["export", str(run), "--format", format, "--out", str(path)]) == 0
            found[kind, format] = path
    return found


# Inputs on which a runtime aborts the whole process (SIGABRT, heap corruption), run apart from pytest.
ABORTS = """
import sys, torch
from seqtext.errors import DataError
from seqtext.export import load_exported

classifier, language_model = load_exported(sys.argv[1]), load_exported(sys.argv[2])
probs, attention = classifier.forward(torch.zeros(0, 7, dtype=torch.long), torch.zeros(0, dtype=torch.long))
print("classifier", tuple(probs.shape), tuple(attention.shape), [p.label for p in classifier.predict([])])
ids = torch.tensor([[5, 6, 7], [8, 9, 10], [11, 12, 13]])
for name, call in (
    ("empty", lambda: language_model.step(torch.zeros(0, 3, dtype=torch.long), None)),
    ("empty with state", lambda: language_model.step(torch.zeros(0, 3, dtype=torch.long), language_model._zeros(0))),
    ("state of another batch", lambda: language_model.step(ids, language_model._zeros(2))),
):
    try:
        language_model.step(ids[:1], None)  # still fine after each
        call()
        print(name, "answered")
    except DataError as err:
        print(name, err.parameter, str(err).count(chr(10)))
"""


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_empty_batch_or_a_mismatched_state_is_an_answer_not_an_abort(exports, format):
    paths = [str(exports["classifier", format]), str(exports["language_model", format])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", ABORTS, *paths], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.splitlines() == [
        "classifier (0, 2) (0, 7) []",
        "empty ids 0",
        "empty with state ids 0",
        "state of another batch state 0",
    ]


IDS = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])  # (2, 4), the second row padded


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize(
    ("ids", "lengths", "parameter", "message"),
    [  # ids as a function of the vocabulary's size V
        (lambda V: IDS * torch.tensor([1, -1, 1, 1]), [4, 2], "ids", "ids must be in 0..{last} (the vocabulary), not -6"),
        (lambda V: IDS.masked_fill(IDS == 7, V), [4, 2], "ids", "ids must be in 0..{last} (the vocabulary), not {V}"),
        (lambda V: IDS.masked_fill(IDS == 0, 2**40), [4, 2], "ids", "ids must be in 0..{last} (the vocabulary), not 2**40"),
        (lambda V: IDS.float(), [4, 2], "ids", "{integers}, not a torch.float32 tensor of shape (2, 4)"),
        (lambda V: IDS[0], [4], "ids", "{integers}, not a torch.int64 tensor of shape (4,)"),
        (lambda V: [[5, 6]], [2], "ids", "{integers}, not a list"),
        (lambda V: IDS, [4, 0], "lengths", "lengths must be in 1..4 (the width of ids), not 0"),
        (lambda V: IDS, [4, -2], "lengths", "lengths must be in 1..4 (the width of ids), not -2"),
        (lambda V: IDS, [5, 2], "lengths", "lengths must be in 1..4 (the width of ids), not 5"),
        (lambda V: IDS, [4], "lengths", "lengths must be a (B,) tensor of integers, one a row of ids (2)"),
        (lambda V: IDS, [4.0, 2.0], "lengths", "lengths must be a (B,) tensor of integers, one a row of ids (2)"),
        (lambda V: IDS[:, :0], [0, 0], "lengths", "lengths must be in 1..0 (the width of ids), not 0"),
    ],
)
def test_an_exported_classifier_refuses_ids_and_lengths_it_cannot_read(exports, format, ids, lengths, parameter, message):
    exported = load_exported(exports["classifier", format])
    V = exported.tokenizer.vocab_size
    with pytest.raises(DataError) as caught:
        exported.forward(ids(V), torch.tensor(lengths))
    assert caught.value.parameter == parameter
    message = message.format(last=V - 1, V=V, integers="ids must be a (B, T) tensor of integers").replace("2**40", str(2**40))
    assert str(caught.value).startswith(message), caught.value
    probs, attention = exported.forward(IDS, torch.tensor([4, 2]))  # the right ones still give an answer
    assert probs.shape == (2, 2) and attention[1, 2:].eq(0).all() and attention.sum(-1).allclose(torch.ones(2))


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_exported_language_model_refuses_ids_it_cannot_read(exports, format):
    exported = load_exported(exports["language_model", format])
    last = exported.tokenizer.vocab_size - 1
    for ids, message in (
        (torch.tensor([[5, -1, 7]]), f"ids must be in 0..{last} (the vocabulary), not -1"),
        (torch.tensor([[5, last + 1]]), f"ids must be in 0..{last} (the vocabulary), not {last + 1}"),
        (torch.zeros(2, 0, dtype=torch.long), "ids must hold at least one row and one token a row, not shape (2, 0)"),
        (torch.tensor([5.0, 6.0]), "ids must be a (B, T) tensor of integers"),
    ):
        with pytest.raises(DataError, match=f"^{re.escape(message)}") as caught:
            exported.step(ids, None)
        assert caught.value.parameter == "ids"
    logits, state = exported.step(torch.tensor([[5, last]], dtype=torch.int32), None)  # any integer type
    assert logits.shape == (1, last + 1) and torch.isfinite(logits).all()
    with pytest.raises(DataError, match=r"^state must be 2 tensors of shape \(2, 1, 16\)") as caught:
        exported.step(torch.tensor([[5]]), (state[0],))
    assert caught.value.parameter == "state"


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_exported_language_model_takes_sampling_settings_as_pytorch_does(exports, lm_run, format):
    exported, model = load_exported(exports["language_model", format]), seqtext.load(lm_run)
    assert exported.generate("ROMEO:", length=30, temperature=1e-50) == model.generate("ROMEO:", length=30, temperature=0)
    for options in ({"temperature": 1e39}, {"temperature": 1e308}, {"temperature": 10**400}, {"top_p": 1e-320}):
        with pytest.raises(ConfigError) as caught:
            exported.generate("ROMEO:", length=5, **options)
        assert caught.value.parameter == next(iter(options))
    with pytest.raises(DataError, match=r"^prompt holds '\\ud800' at character 2, which is not a Unicode character"):
        exported.generate("RO\ud800", length=5)
