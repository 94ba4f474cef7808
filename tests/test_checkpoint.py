import json
import math
import pickle
import shutil

import pytest
import torch

from seqtext import checkpoint
from seqtext.errors import DataError
from seqtext.optim import make_optimizer
from seqtext.recipe import TrainConfig


def test_a_checkpoint_rebuilds_the_same_model(trained_run):
    loaded = checkpoint.load(trained_run)  # a run directory means its best/
    assert loaded.path == trained_run / "best" and loaded.kind == "classifier"
    assert loaded.label_map.names == ("negative", "positive")
    files = {"config.json", "model.safetensors", "tokenizer.json", "labels.json", "card.json", "README.md"}
    assert {p.name for p in loaded.path.iterdir()} == files
    ids = torch.tensor([[5, 6, 7, 8]])
    again = checkpoint.load(trained_run / "best")
    assert torch.equal(loaded.model(ids, torch.tensor([4]), ids > 0).logits, again.model(ids, torch.tensor([4]), ids > 0).logits)
    assert loaded.recipe["model"]["hidden_size"] == 16


def _safetensors_tensors(path) -> dict:
    """The tensors a safetensors file describes, checked against the format: an 8-byte little-endian header
    length, that many bytes of JSON, then the tensors' bytes, which the header's offsets tile exactly."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    assert 8 + size <= len(data), f"{path.name}: header length {size} runs past the file's {len(data)} bytes"
    header = json.loads(data[8 : 8 + size])
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    spans = sorted(tuple(entry["data_offsets"]) for entry in tensors.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(data) - 8 - size, f"{path.name}: offsets do not cover the data"
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), f"{path.name}: offsets leave gaps or overlap"
    for name, entry in tensors.items():
        begin, end = entry["data_offsets"]
        width = {"F32": 4, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}[entry["dtype"]]
        assert end - begin == width * math.prod(entry["shape"]), f"{path.name}: {name} has the wrong byte count"
    return tensors


def test_nothing_in_a_checkpoint_is_a_pickle(trained_run, monkeypatch):
    last = trained_run / "last"
    names = {p.name for p in last.iterdir()}
    assert names == {
        "config.json",
        "labels.json",
        "tokenizer.json",
        "model.safetensors",
        "trainer.json",
        "trainer.safetensors",
    } | {
        "card.json",
        "README.md",
    }
    for name in names - {"model.safetensors", "trainer.safetensors", "README.md"}:
        json.loads((last / name).read_text())  # plain JSON, or this raises
    weights = _safetensors_tensors(last / "model.safetensors")
    assert set(weights) == set(checkpoint.load(last).model.state_dict())
    assert "rng.torch" in _safetensors_tensors(last / "trainer.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    model = checkpoint.load(last).model  # reading the whole run back needs no unpickling
    assert checkpoint.load_trainer_state(last, make_optimizer(model, TrainConfig()))["step"] == 12


def test_trainer_state_restores_optimizer_and_rng(trained_run):
    model = checkpoint.load(trained_run / "last").model
    optimizer = make_optimizer(model, TrainConfig())
    trainer = checkpoint.load_trainer_state(trained_run / "last", optimizer)
    assert trainer["step"] == 12
    for parameter in model.parameters():  # every parameter gets back moments of its own shape, already stepped
        assert optimizer.state[parameter]["exp_avg"].shape == parameter.shape
        assert optimizer.state[parameter]["step"].item() == 12
    first = torch.rand(3)
    checkpoint.load_trainer_state(trained_run / "last", None)
    assert torch.equal(torch.rand(3), first)


@pytest.fixture
def copy(trained_run, tmp_path):
    target = tmp_path / "checkpoint"
    shutil.copytree(trained_run / "best", target)
    return target


def _edit_config(path, **changes):
    import json

    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def test_bad_checkpoints_are_one_line_errors(copy, tmp_path):
    with pytest.raises(DataError, match="nowhere: no such checkpoint"):
        checkpoint.load(tmp_path / "nowhere")
    with pytest.raises(DataError, match="not a checkpoint \\(no config.json\\)"):
        checkpoint.load(tmp_path)
    with pytest.raises(DataError, match="a classifier checkpoint, not a language_model"):
        checkpoint.load(copy, kind="language_model")
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="model.safetensors: unreadable or not matching config.json"):
        checkpoint.load(copy)


def test_a_newer_format_is_refused(copy):
    _edit_config(copy, format_version=checkpoint.FORMAT_VERSION + 1)
    with pytest.raises(DataError, match="newer than this seqtext reads"):
        checkpoint.load(copy)


def test_a_format_1_classifier_reads_its_attention_under_the_names_of_today(copy):
    """Format 1 kept the attention pooling's weights under attention.*; format 2 under pooling.attention.*."""
    from safetensors.torch import load_file, save_file

    today = checkpoint.load(copy).model
    weights = load_file(str(copy / "model.safetensors"))
    assert {"pooling.attention.w.weight", "pooling.attention.v.weight"} <= weights.keys()
    save_file({k.replace("pooling.attention.", "attention."): v for k, v in weights.items()}, str(copy / "model.safetensors"))
    with pytest.raises(DataError, match="'attention.v.weight' is in the file, not in the model"):
        checkpoint.load(copy)  # the old names under today's format number are refused
    _edit_config(copy, format_version=1)
    older = checkpoint.load(copy).model
    assert all(torch.equal(a, b) for a, b in zip(today.state_dict().values(), older.state_dict().values(), strict=True))
    del weights["pooling.attention.w.bias"]  # the renamed file must still hold every weight
    save_file({k.replace("pooling.attention.", "attention."): v for k, v in weights.items()}, str(copy / "model.safetensors"))
    with pytest.raises(DataError, match="no pooling.attention.w.bias in the file"):
        checkpoint.load(copy)


def test_weights_that_do_not_match_the_config_are_refused(copy):
    model = checkpoint.load(copy).config["model"]
    _edit_config(copy, model={**model, "hidden_size": 32})
    with pytest.raises(DataError, match="not matching config.json"):
        checkpoint.load(copy)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "config.json").write_text('{"kind": "classifier", '), "config.json: unreadable"),
        (lambda d: _edit_config(d, kind="regressor"), "unknown model kind 'regressor'"),
        (lambda d: _edit_config(d, format_version="1"), "checkpoint format 1 is newer than this seqtext reads"),
        (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors: unreadable or not matching config.json"),
        (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
        (lambda d: _flip_header(d / "model.safetensors"), "model.safetensors: unreadable or not matching config.json"),
        (lambda d: (d / "model.safetensors").write_bytes(_pickle_bomb(d / "unpickled")), "model.safetensors: unreadable"),
    ],
    ids=["config-cut", "unknown-kind", "version-not-int", "empty-weights", "no-weights", "tampered-header", "pickle"],
)
def test_a_damaged_checkpoint_is_a_one_line_error_and_never_unpickled(copy, damage, message):
    damage(copy)
    with pytest.raises(DataError) as caught:
        checkpoint.load(copy)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (copy / "unpickled").exists()


def test_a_truncated_trainer_state_cannot_be_resumed(trained_run, tmp_path):
    last = tmp_path / "last"
    shutil.copytree(trained_run / "last", last)
    data = (last / "trainer.safetensors").read_bytes()
    (last / "trainer.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="no readable trainer state, cannot resume"):
        checkpoint.load_trainer_state(last, None)


def _flip_header(path):
    """Change a tensor's recorded shape in the safetensors header, keeping the file's length."""
    data = bytearray(path.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    header = data[8:header_end].decode()
    data[8:header_end] = header.replace('"shape":[', '"shape":[9,', 1)[: header_end - 8].encode()
    path.write_bytes(bytes(data))


def _pickle_bomb(marker) -> bytes:
    """A pickle that would create ``marker`` if anything unpickled it."""
    import pickle

    class Bomb:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    return pickle.dumps(Bomb())


def test_a_format_1_language_model_reads_its_output_layer_under_the_names_of_today(lm_run, tmp_path):
    """Format 1 kept the output layer's weights under head.*; format 2 under output.head.*."""
    from safetensors.torch import load_file, save_file

    old = tmp_path / "old"
    shutil.copytree(lm_run / "best", old)
    today = checkpoint.load(old).model
    weights = load_file(str(old / "model.safetensors"))
    assert "output.head.weight" in weights and not any(name.startswith("head.") for name in weights)
    save_file({k.replace("output.head.", "head."): v for k, v in weights.items()}, str(old / "model.safetensors"))
    _edit_config(old, format_version=1)
    older = checkpoint.load(old).model
    assert all(torch.equal(a, b) for a, b in zip(today.state_dict().values(), older.state_dict().values(), strict=True))
