"""Crafted or broken checkpoint folders: ``seqtext.load`` refuses each with one CheckpointError line that names
the file and the field, in bounded memory and time, and before allocating anything the config claims.

The cases that would exhaust memory or hang run in a child process under an address-space ceiling (what
importing torch and seqtext takes, plus 1 GiB: loading the good checkpoint needs a few MB of it) and a
timeout, so that a regression fails the test instead of the machine.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

import seqtext
from seqtext import checkpoint
from seqtext.cli import main
from seqtext.errors import CheckpointError

CEILING = """
import resource, sys
import seqtext.api, seqtext.cli  # torch, tokenizers and the models: what any load needs, imported below the ceiling
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
"""
LOAD = """
try:
    seqtext.load(sys.argv[1]).card  # the card too: `seqtext info` and the server read it
except seqtext.SeqtextError as err:
    print(f"{type(err).__name__}: {err}")
    sys.exit(3)
print("loaded")
"""
COMMAND = "sys.exit(seqtext.cli.main(sys.argv[1:]))"
TIMEOUT_S = 60


@pytest.fixture
def classifier(trained_run, tmp_path):
    """A copy of a real classifier checkpoint, to tamper with; and a JSON file beside it, outside it."""
    (tmp_path / "outside.json").write_text('{"kind": "classifier"}')
    return shutil.copytree(trained_run / "best", tmp_path / "checkpoint")


@pytest.fixture
def language_model(lm_run, tmp_path):
    return shutil.copytree(lm_run / "best", tmp_path / "checkpoint")


def _edit(path, change) -> None:
    """Rewrite a JSON file with ``change(value)`` applied (in place)."""
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _config(**fields):
    return lambda d: _edit(d / "config.json", lambda c: c.update(fields))


def _model(**fields):
    return lambda d: _edit(d / "config.json", lambda c: c["model"].update(fields))


def _model_args(**fields):
    return lambda d: _edit(d / "config.json", lambda c: c["model_args"].update(fields))


def _data(**fields):
    return lambda d: _edit(d / "config.json", lambda c: c["recipe"]["data"].update(fields))


def _without(section, field=None):
    """config.json's recipe without ``section``, or without ``section.field``."""
    if field is None:
        return lambda d: _edit(d / "config.json", lambda c: c["recipe"].pop(section))
    return lambda d: _edit(d / "config.json", lambda c: c["recipe"][section].pop(field))


def _card(**fields):
    return lambda d: _edit(d / "card.json", lambda c: c.update(fields))


def _labels(*names):
    return lambda d: (d / "labels.json").write_text(json.dumps({"names": list(names)}))


def _write(name, text):
    return lambda d: (d / name).write_text(text)


def _add_token(token_id):
    """A token at ``token_id`` in the word tokenizer's vocabulary."""
    return lambda d: _edit(d / "tokenizer.json", lambda t: t["model"]["vocab"].update({"zzzz": token_id}))


def _replace(name, make):
    """``name`` replaced by what ``make(path)`` puts there (a link, a FIFO, a folder)."""

    def damage(directory):
        (directory / name).unlink()
        make(directory / name)

    return damage


def _link(name, target):
    return _replace(name, lambda path: path.symlink_to(target))


def _sparse(name, size):
    """``name`` as a file of ``size`` zero bytes that takes no disk."""
    return lambda d: os.truncate(d / name, size)


def _in_child(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` with ``args`` in a child process, under the memory ceiling and the timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CEILING + script, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)


def _load_with_card(path) -> dict:
    return seqtext.load(path).card


def test_the_good_checkpoint_loads_under_the_ceiling(classifier):
    child = _in_child(LOAD, str(classifier))
    assert (child.returncode, child.stdout) == (0, "loaded\n"), child.stderr[-2000:]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_link("card.json", "/dev/zero"), "card.json: a link to /dev/zero, outside the checkpoint"),
        (_link("config.json", "/dev/zero"), "config.json: a link to /dev/zero, outside the checkpoint"),
        (_link("labels.json", "/dev/zero"), "labels.json: a link to /dev/zero, outside the checkpoint"),
        (_link("tokenizer.json", "/dev/zero"), "tokenizer.json: a link to /dev/zero, outside the checkpoint"),
        (_replace("config.json", os.mkfifo), "config.json: not a regular file"),
        (_replace("tokenizer.json", os.mkfifo), "tokenizer.json: not a regular file"),
        (_sparse("config.json", 2**31), "config.json: larger than 1 MiB (2,147,483,648 bytes)"),
        (_sparse("card.json", 2**31), "card.json: larger than 1 MiB (2,147,483,648 bytes)"),
        (_sparse("tokenizer.json", 2**31), "tokenizer.json: larger than 64 MiB (2,147,483,648 bytes)"),
        (_model(hidden_size=30_000), "config.json: model.hidden_size 30000 is larger than any dimension of the weights"),
        (_model(num_layers=10**6), "config.json: model.num_layers 1000000 needs 2000000 tensors at least; the weights have 14"),
        (_model_args(vocab_size=10**12), "config.json: model_args.vocab_size 1000000000000 is larger than any dimension"),
        (_model(ngrams=2, ngram_buckets=2**40), "config.json: model.ngram_buckets 1099511627776 is larger than any dim"),
        (_add_token(2**32 - 1), "tokenizer.json: token id 4294967295 is past the vocabulary's 13840 tokens"),
        (_model(hidden_size=13_000), "not matching config.json (encoder.backward_layers.0.bias_hh_l0 is (64,)"),
    ],
    ids=[
        "card-dev-zero", "config-dev-zero", "labels-dev-zero", "tokenizer-dev-zero", "config-fifo", "tokenizer-fifo",
        "config-2GiB", "card-2GiB", "tokenizer-2GiB", "hidden-30000", "layers-1e6", "vocab-1e12", "buckets-2**40",
        "token-id-2**32", "hidden-13000",
    ],
)  # fmt: skip
def test_a_crafted_checkpoint_is_refused_in_bounded_memory_and_time(classifier, damage, message):
    damage(classifier)
    child = _in_child(LOAD, str(classifier))
    assert child.returncode == 3, f"exit {child.returncode}: {child.stdout[-500:]}{child.stderr[-2000:]}"
    assert child.stdout.startswith("CheckpointError: ") and child.stdout.count("\n") == 1, child.stdout
    assert message in child.stdout


MUST_BE_INTEGER = "must be an integer of at least 0, not"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_model(hidden_size=1e9), "config.json: model.hidden_size must be int, not 1000000000.0"),
        (_model(num_layers=True), "config.json: model.num_layers must be int, not True"),
        (_model(cell=["lstm"]), "config.json: model.cell must be str, not ['lstm']"),
        (_model(sizes=3), "config.json: unknown key 'model.sizes'"),
        (_config(model=[16]), "config.json: model must be a mapping, not list"),
        (_model_args(vocab_size=1e12), f"config.json: model_args.vocab_size {MUST_BE_INTEGER} 1000000000000.0"),
        (_model_args(num_classes=1e9), f"config.json: model_args.num_classes {MUST_BE_INTEGER} 1000000000.0"),
        (_model_args(num_classes=-1), f"config.json: model_args.num_classes {MUST_BE_INTEGER} -1"),
        (_model_args(num_classes=0), "model.safetensors: not matching config.json (head.bias is (2,) in the file, (0,) by"),
        (_model_args(heads=2), "config.json: model_args.heads is not an argument of a classifier"),
        (_config(kind=["classifier"]), "config.json: kind must be a string, not ['classifier']"),
        (_add_token(13_839), "tokenizer.json: token id 13839 is past the model's 13839 embedding rows"),
        (_data(max_length=0), "config.json: recipe: data.max_length must be at least 1, not 0"),
        (_data(max_length=-5), "config.json: recipe: data.max_length must be at least 1, not -5"),
        (_data(max_length="all"), "config.json: recipe: data.max_length must be int or null, not 'all'"),
        (_data(max_length=2.5), "config.json: recipe: data.max_length must be int or null, not 2.5"),
        (_without("data", "max_length"), "config.json: recipe.data has no max_length"),
        (_without("data"), "config.json: recipe.data must be a mapping, not None"),
        (_config(recipe="sst2"), "config.json: recipe must be a mapping, not str"),
        (_config(recipe={"kind": "language_model", "data": {"max_length": 8}}), "recipe.kind is language_model, not classifier"),
        (_labels("positive"), "labels.json: 1 label, fewer than the 2 a classifier needs"),
        (_labels("a", "b", "c"), "labels.json: 3 labels for the model's 2 classes (model_args.num_classes)"),
        (_labels(), "labels.json: 0 labels"),
        (lambda d: (d / "labels.json").unlink(), "no labels.json (its model_args.num_classes needs one)"),
        (_write("labels.json", "[1, 2]"), "labels.json: not a label file"),
        (_link("card.json", "../outside.json"), "card.json: a link to "),
        (_link("model.safetensors", "../outside.json"), "model.safetensors: a link to "),
        (_replace("model.safetensors", os.mkdir), "model.safetensors: not a regular file"),
        (_write("card.json", "[]"), "card.json: not a model card (a list, not a mapping)"),
        (_card(labels="ab"), "card.json: labels must be a list of strings"),
        (_card(data={"splits": {"train": "many"}}), "card.json: data.splits must map names to counts"),
    ],
    ids=[
        "hidden-float", "layers-bool", "cell-list", "unknown-field", "model-list", "vocab-float", "classes-float",
        "classes-negative", "classes-0", "unknown-arg", "kind-list", "token-at-rows", "max-length-0", "max-length-negative",
        "max-length-str", "max-length-float", "max-length-missing", "no-data", "recipe-str", "recipe-other-kind",
        "one-label", "three-labels", "no-labels", "no-labels-file", "labels-list", "card-outside", "weights-outside",
        "weights-dir", "card-list", "card-labels", "card-splits",
    ],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")  # classes-0, on the meta device
def test_a_broken_checkpoint_is_one_checkpoint_error(classifier, damage, message):
    damage(classifier)
    with pytest.raises(CheckpointError) as caught:
        _load_with_card(classifier)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_language_model_with_tokens_past_its_embedding_is_refused(language_model):
    rows = json.loads((language_model / "config.json").read_text())["model_args"]["vocab_size"]
    _edit(language_model / "tokenizer.json", lambda t: t["model"]["vocab"].update({"\u2603": rows}))
    with pytest.raises(CheckpointError, match=f"tokenizer.json: token id {rows} is past the model's {rows} embedding rows"):
        seqtext.load(language_model)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_model(output="adaptive", adaptive_cutoffs=[10, 10**15]), "model.adaptive_cutoffs 1000000000000000 is larger"),
        (_model(embedding_size=2.0), "config.json: model.embedding_size must be int, not 2.0"),
        (_without("data"), "config.json: recipe.data must be a mapping, not None"),
    ],
    ids=["cutoffs-1e15", "embedding-float", "no-data"],
)
def test_a_broken_language_model_is_one_checkpoint_error(language_model, damage, message):
    damage(language_model)
    with pytest.raises(CheckpointError) as caught:
        seqtext.load(language_model)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_links_inside_the_checkpoint_are_followed(classifier, tmp_path):
    (classifier / "card.json").rename(classifier / "card-v2.json")
    (classifier / "card.json").symlink_to("card-v2.json")
    (tmp_path / "latest").symlink_to(classifier, target_is_directory=True)
    model = seqtext.load(tmp_path / "latest")
    assert model.card["kind"] == "classifier" and model.labels == ["negative", "positive"]


@pytest.mark.parametrize(
    ("command", "damage", "message"),
    [
        ("info", _config(kind=["classifier"]), "config.json: kind must be a string"),
        ("evaluate", _labels("positive"), "labels.json: 1 label, fewer than the 2 a classifier needs"),
        ("evaluate", _model_args(vocab_size=1e12), f"model_args.vocab_size {MUST_BE_INTEGER}"),
    ],
    ids=["info-kind-list", "evaluate-one-label", "evaluate-vocab-float"],
)
def test_the_command_line_reports_a_broken_checkpoint_in_one_line(classifier, capsys, command, damage, message):
    damage(classifier)
    assert main([command, str(classifier)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqtext: error: ") and err.count("\n") == 1 and message in err, err


def test_seqtext_info_refuses_a_card_linked_to_dev_zero(classifier):
    _link("card.json", "/dev/zero")(classifier)
    child = _in_child(COMMAND, "info", str(classifier))
    assert child.returncode == 2, f"exit {child.returncode}: {child.stderr[-2000:]}"
    message = "card.json: a link to /dev/zero, outside the checkpoint"
    assert child.stderr.startswith("seqtext: error: ") and child.stderr.count("\n") == 1 and message in child.stderr


def test_a_card_changed_after_loading_is_read_through_the_same_limits(classifier):
    loaded = checkpoint.load(classifier)
    _sparse("card.json", 2**21)(classifier)
    with pytest.raises(CheckpointError, match="card.json: larger than 1 MiB"):
        _ = loaded.card
