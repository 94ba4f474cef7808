import os
import re
from pathlib import Path

import pytest
import yaml

from seqtext.data import NAMED_DATASETS
from seqtext.errors import ConfigError
from seqtext.forecaster.model import ForecasterConfig
from seqtext.forecaster.series import SERIES
from seqtext.recipe import default_recipe_path, load_recipe, parse_overrides

from .conftest import RECIPES

SHIPPED = sorted(RECIPES.glob("*.yaml"))


KINDS = {"imdb": "classifier", "shakespeare": "language_model", "sine": "forecaster", "sst2": "classifier"}
KINDS |= {"sunspots": "forecaster", "trec": "classifier", "reviews-lm": "language_model"}
KINDS |= {"imdb-pretrained": "classifier", "sst2-pretrained": "classifier"}


def test_the_shipped_recipes_are_these():
    assert sorted(p.stem for p in SHIPPED) == sorted(KINDS)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_recipe_loads_and_validates(path):
    recipe = load_recipe(path)
    assert recipe.kind == KINDS[path.stem]
    loaded, written = recipe.to_dict(), yaml.safe_load(path.read_text())
    for section, values in written.items():  # every value the file sets is the value loaded
        for key, value in values.items() if isinstance(values, dict) else [(None, values)]:
            got = loaded[section] if key is None else loaded[section][key]
            if (section, key) in (("tokenizer", "path"), ("model", "encoder_from")):
                value = os.path.normpath(path.parent / value)
            got = list(got) if isinstance(got, tuple) else got  # a list in YAML, a tuple in the dataclass
            assert got == value, f"{path.name}: {section}.{key} is {got!r}, the file says {value!r}"
    if recipe.kind == "forecaster":
        assert recipe.data.dataset in SERIES
        assert recipe.model == ForecasterConfig(**written["model"])  # the file's model, the rest its defaults
    else:
        assert recipe.data.dataset in NAMED_DATASETS
        assert Path(recipe.tokenizer.path).is_file(), "run `make vocab`"


def test_overrides_are_typed_by_the_dataclasses():
    recipe = load_recipe(
        RECIPES / "imdb.yaml",
        ["--data.max_length", "256", "--seed=7", "--batching.max_tokens", "4096", "--tokenizer.vocab_size", "null"],
    )
    assert recipe.data.max_length == 256 and recipe.seed == 7 and recipe.batching.max_tokens == 4096
    assert recipe.tokenizer.vocab_size is None


def test_recipe_paths_are_relative_to_the_recipe_and_override_paths_to_the_working_directory():
    recipe = load_recipe(RECIPES / "sst2.yaml")
    assert Path(recipe.tokenizer.path) == RECIPES.parent / "vocab" / "sst2-word.json"
    assert load_recipe(RECIPES / "sst2.yaml", ["--tokenizer.path", "mine.json"]).tokenizer.path == "mine.json"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--data.colour", "red"], "--data.colour: unknown key (known: data.dataset, data.data_dir"),
        (["--modle.hidden_size", "8"], "--modle.hidden_size: unknown key; did you mean --model.hidden_size?"),
        (["--train.epoch", "3"], "--train.epoch: unknown key; did you mean --train.epochs?"),
        (["--model.pooling", "sum"], "model.pooling must be one of attention, self_attention, mean, max, last, concat"),
        (["--train.lr", "0"], "train.lr must be more than 0"),
        (["--train.optimizer", "adam"], "train.optimizer must be one of adamw, sgd, not 'adam'"),
        (["--batching.batch_size", "big"], "batching.batch_size must be int or null, not 'big'"),
        (["--batching.batch_size", "0"], "batching.batch_size must be at least 1, not 0"),
        (["--data.validation_fraction", "1.5"], "data.validation_fraction must be between 0 and 1, not 1.5"),
        (["--tokenizer.kind", "wordpiece"], "tokenizer.kind must be one of char, word, bpe, not 'wordpiece'"),
        (["--kind", "translation"], "kind must be one of classifier, language_model, forecaster, not 'translation'"),
        (["--series.window", "0"], "series.window must be at least 1, not 0"),
        (["--series.test_fraction", "0.5", "--series.validation_fraction", "0.5"], "must leave a train part"),
        (["--seed", "true"], "seed must be int, not True"),
        (["--batching.batch_size", "null"], "batching needs batch_size, max_tokens, or both"),
        (["--data.on_bad_rows", "ignore"], "data.on_bad_rows must be one of error, skip"),
        (["--seed"], "--seed needs a value"),
        (["stray"], "unexpected argument 'stray'"),
    ],
)
def test_bad_values_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_recipe(RECIPES / "sst2.yaml", overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_key_in_a_file_names_the_file_and_a_close_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("kind: classifier\ntrain:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key 'train.epoch': did you mean 'train.epochs'\?$"):
        load_recipe(path)
    with pytest.raises(ConfigError, match=r"^unknown key 'train.epoch': did you mean 'train.epochs'\?$"):
        load_recipe(None, {"train": {"epoch": 3}})  # from Python: neither a file nor a flag
    # a bad value given on the command line names the flag, one in the file names the file
    good = tmp_path / "good.yaml"
    good.write_text("kind: classifier\n")
    with pytest.raises(ConfigError, match=r"^--train.lr must be more than 0"):
        load_recipe(good, ["--train.lr", "0"])
    path.write_text("kind: classifier\ntrain:\n  lr: 0\n")
    with pytest.raises(ConfigError, match=rf"^{path}: train.lr must be more than 0"):
        load_recipe(path)


def test_broken_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: classification\ndata:\n  dataset: [sst2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+: not valid YAML"):
        load_recipe(path)
    with pytest.raises(ConfigError, match="missing.yaml: no such recipe file"):
        load_recipe(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: a recipe must be a mapping of sections"):
        load_recipe(tmp_path / "list.yaml")


def test_recipes_from_before_kinds_still_read(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("task: forecasting\ndata:\n  dataset: sine\nmodel:\n  horizon: 3\n")
    recipe = load_recipe(path)
    assert recipe.kind == "forecaster" and recipe.model.horizon == 3
    assert load_recipe(None, base={"task": "classification"}).kind == "classifier"


def test_a_base_recipe_is_not_changed_and_overrides_may_be_nested():
    base = {"kind": "classifier", "train": {"lr": 0.1}}
    recipe = load_recipe(None, {"train": {"epochs": 2}, "model.hidden_size": 8}, base=base)
    assert (recipe.train.lr, recipe.train.epochs, recipe.model.hidden_size) == (0.1, 2, 8)
    assert base == {"kind": "classifier", "train": {"lr": 0.1}}
    with pytest.raises(ConfigError, match="a language_model recipe needs batching.batch_size"):
        load_recipe(None, ["--kind", "language_model", "--tokenizer.kind", "char", "--batching.batch_size", "null",
                           "--batching.max_tokens", "100"])  # fmt: skip


def test_parse_overrides_reads_yaml_scalars():
    assert parse_overrides(["--a.b", "3", "--c=true", "--d", "text with spaces", "--e", "null"]) == {
        "a.b": 3,
        "c": True,
        "d": "text with spaces",
        "e": None,
    }


def test_float_fields_take_exponents_that_yaml_reads_as_strings():
    # PyYAML follows YAML 1.1, where 3e-4 (no dot) is a string: the classic learning-rate trap.
    assert load_recipe(None, ["--data.train_fraction", "9e-1"]).data.train_fraction == 0.9


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")) + [default_recipe_path()], ids=lambda p: p.name)
def test_a_fields_comment_holds_for_any_data_a_copied_recipe_trains_on(path):
    # figures true only of the recipe's own dataset (steps an epoch, minutes, validation scores) belong in
    # the header, which names that dataset; a field's comment says what the field does, whatever the data
    lines = path.read_text().splitlines()
    inline = [line.partition("#")[2] for line in lines if "#" in line and not line.lstrip().startswith("#")]
    dataset_facts = re.compile(r"an epoch|minutes|\b0\.\d{3,}\b|\d+ steps of|validation \d")
    assert [comment for comment in inline if dataset_facts.search(comment)] == []
