"""Recipes: one YAML file per (task, dataset), validated against the dataclasses below.

A recipe has a ``kind`` (of model: classifier, language_model or forecaster; seqtext/kinds.py), a ``seed``
and one section per dataclass; recipes written before kinds had one word say ``task: classification``
(or ``forecasting``), which still reads. Any field can be overridden on the
command line as ``--section.field VALUE`` (``--data.max_length 256``, ``--batching.batch_size 32``);
values are read as YAML scalars, so ``null``, ``true`` and ``3e-4`` mean what they say. Relative paths
in a recipe are relative to the recipe file.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from seqtext import kinds
from seqtext.classifier.model import ClassifierConfig
from seqtext.errors import ConfigError, DataError
from seqtext.forecaster.model import ForecasterConfig
from seqtext.language_model.model import LanguageModelConfig
from seqtext.readers import BAD_ROW_POLICIES
from seqtext.tokenizer import KINDS as TOKENIZER_KINDS


@dataclass
class DataConfig:
    dataset: str | None = "sst2"  # a named dataset, a file, a folder of split files, or a Hub id (None: given apart)
    data_dir: str | None = None  # where named datasets live; else $SEQTEXT_DATA, else the Hub
    text_column: str = "text"
    label_column: str = "label"
    on_bad_rows: str = "error"  # or "skip", which reports how many rows it skipped
    label_names: tuple[str, ...] | None = None  # names for labels given as 0, 1, 2, ...: [negative, positive]
    validation_fraction: float = 0.1  # held out from train when the dataset has no validation split
    train_fraction: float = 0.9  # language modelling: the first part of the corpus trains, the rest validates
    # language modelling on a dataset of many texts (IMDB's reviews): each text a document, ended by <eos>,
    # from these splits in this order (no other split is read), the last documents validating
    documents: bool = False
    corpus_splits: str = "train"  # comma-separated, e.g. "train,unsup"
    reverse: bool = False  # read each document (or the corpus) backwards: a backward language model
    # tokens kept per text; longer texts are truncated. The cap keeps one runaway row (a 1 MB text) from
    # costing a batch its memory; null removes it
    max_length: int | None = 4096

    def __post_init__(self):
        _check_choice("data.on_bad_rows", self.on_bad_rows, BAD_ROW_POLICIES)
        for name in ("validation_fraction", "train_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"data.{name} must be between 0 and 1, not {getattr(self, name)}")
        _check_positive("data.max_length", self.max_length)
        names = self.label_names
        if names is not None and (len(names) < 2 or not all(isinstance(n, str) and n.strip() for n in names)):
            raise ConfigError(f"data.label_names must be a list of at least two names, not {list(names)!r}")
        if names is not None and len(set(names)) != len(names):
            raise ConfigError(f"data.label_names must not repeat a name: {list(names)!r}")
        if not all(self.splits):
            raise ConfigError(f"data.corpus_splits must name splits, comma-separated, not {self.corpus_splits!r}")

    @property
    def splits(self) -> tuple[str, ...]:
        """``corpus_splits`` as a tuple of split names."""
        return tuple(split.strip() for split in self.corpus_splits.split(","))


@dataclass
class TokenizerConfig:
    kind: str = "word"  # char, word or bpe
    path: str | None = None  # a tokenizer.json: loaded if it exists, else trained on the train split
    vocab_size: int | None = 30000  # cap, special tokens included (None: no cap; bpe needs one)
    min_freq: int = 1
    lowercase: bool = True

    def __post_init__(self):
        _check_choice("tokenizer.kind", self.kind, TOKENIZER_KINDS)
        _check_positive("tokenizer.vocab_size", self.vocab_size)
        _check_positive("tokenizer.min_freq", self.min_freq)


@dataclass
class BatchingConfig:
    batch_size: int | None = 64  # texts per batch (an upper bound when max_tokens is set)
    max_tokens: int | None = None  # padded tokens per batch (B * longest), instead of a fixed batch size
    pool_size: int | None = None  # texts sorted together by length; default 100 batches' worth
    bptt: int = 128  # language modelling: steps per truncated back-propagation window

    def __post_init__(self):
        if self.batch_size is None and self.max_tokens is None:
            raise ConfigError("batching needs batch_size, max_tokens, or both")
        for name in ("batch_size", "max_tokens", "pool_size", "bptt"):
            _check_positive(f"batching.{name}", getattr(self, name))


@dataclass
class TrainConfig:
    optimizer: str = "adamw"  # adamw or sgd
    lr: float = 2e-3
    weight_decay: float = 0.01
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # constant, or cosine decay to 0, both after a linear warmup; or slanted_triangular
    warmup_steps: int = 100
    epochs: int = 5
    max_steps: int | None = None  # stop after this many steps, even within the epochs
    min_steps: int | None = None  # small data: more epochs, until the run has at least this many steps
    max_epochs: int | None = None  # ... but never more epochs than this (a few hundred labels: not 300 epochs)
    # a time budget: the steps and the schedule are fitted to it after timing a few steps (and the run
    # stops, validated and saved, when the minutes are up)
    max_minutes: float | None = None
    # fine-tuning (ULMFiT): each layer's learning rate is this times the one above's (1/2.6 in the paper),
    # and unfreeze trains only the top layer in the first epoch, one more layer below it in each next one
    layer_lr_decay: float | None = None
    unfreeze: bool = False
    ngram_lr_scale: float = 15.0  # model.ngrams: its table's rate is this times train.lr (a linear model learns faster)
    clip_norm: float = 5.0  # clip the global gradient norm to this; 0 turns clipping off
    label_smoothing: float = 0.0
    # classifiers: adversarial training on the embeddings (Miyato et al. 2016, the supervised form). Each step
    # also trains on the batch with every text's embedded sequence moved this far (L2 norm over the sequence)
    # in the direction that raises the encoder's loss most; 0 turns it off
    adversarial: float = 0.0
    class_weights: str = "none"  # none, or balanced: each class weighted by n / (classes * its count)
    eval_every: int = 500  # steps between validation runs; one also runs at the end
    patience: int | None = None  # validation runs without a better score (accuracy, loss, RMSE) before stopping early
    log_every: int = 50  # steps between training log lines in metrics.jsonl
    vectors: str | None = None  # word vectors (GloVe / word2vec text format) to initialise the embedding
    device: str = "auto"  # auto (cuda when there is one), cpu or cuda
    # fp32, or bf16: the forward pass under autocast, weights and optimizer state in fp32 (seqtext/precision.py);
    # auto: bf16 where this process measures it faster (CPUs with AMX or AVX512-BF16, most GPUs)
    precision: str = "fp32"

    def __post_init__(self):
        _check_choice("train.precision", self.precision, ("fp32", "bf16", "auto"))
        _check_choice("train.optimizer", self.optimizer, ("adamw", "sgd"))
        _check_choice("train.schedule", self.schedule, ("constant", "cosine", "slanted_triangular"))
        _check_choice("train.class_weights", self.class_weights, ("none", "balanced"))
        _check_choice("train.device", self.device, ("auto", "cpu", "cuda"))
        for name in ("epochs", "max_steps", "min_steps", "max_epochs", "eval_every", "patience", "log_every"):
            _check_positive(f"train.{name}", getattr(self, name))
        for name in ("lr", "weight_decay", "momentum", "clip_norm", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be at least 0, not {getattr(self, name)}")
        if self.lr == 0:
            raise ConfigError("train.lr must be more than 0")
        if self.layer_lr_decay is not None and not 0.0 < self.layer_lr_decay <= 1.0:
            raise ConfigError(f"train.layer_lr_decay must be in (0, 1], not {self.layer_lr_decay}")
        if self.ngram_lr_scale <= 0:
            raise ConfigError(f"train.ngram_lr_scale must be more than 0, not {self.ngram_lr_scale}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"train.max_minutes must be more than 0, not {self.max_minutes}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0.0 <= self.adversarial < float("inf"):
            raise ConfigError(f"train.adversarial must be a finite number, at least 0, not {self.adversarial}")


@dataclass
class SeriesConfig:
    """Forecasting: how the series is read, windowed and split by time (other tasks ignore it)."""

    value_column: str = "value"  # the numeric column of a series file, one row per time step, in order
    window: int = 32  # past values the model reads for each forecast
    validation_fraction: float = 0.15  # the part before the test tail that picks the best checkpoint
    test_fraction: float = 0.15  # the tail: never seen by scaling, training or model selection
    season: int | None = None  # period of the seasonal last-value baseline (12 for monthly data)
    per_step_loss: bool = False  # train every step's output on the values after it, not only the last step's
    length: int = 2000  # sine: values generated
    period: float = 50.0  # sine: values per cycle
    noise: float = 0.1  # sine: standard deviation of the added Gaussian noise
    noise_seed: int = 0  # sine: the noise's own seed, so that every training seed sees the same series

    def __post_init__(self):
        for name in ("window", "season", "length"):
            _check_positive(f"series.{name}", getattr(self, name))
        for name in ("validation_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"series.{name} must be between 0 and 1, not {getattr(self, name)}")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ConfigError("series.validation_fraction + series.test_fraction must leave a train part (sum < 1)")
        if self.period <= 0 or self.noise < 0:
            raise ConfigError(f"series.period must be > 0 and series.noise >= 0, not {self.period} and {self.noise}")


@dataclass
class Recipe:
    kind: str = "classifier"  # of model: a name in seqtext/kinds.py
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    model: ClassifierConfig | LanguageModelConfig | ForecasterConfig | None = None  # the kind's; None: its defaults
    train: TrainConfig = field(default_factory=TrainConfig)
    series: SeriesConfig = field(default_factory=SeriesConfig)

    def __post_init__(self):
        self.kind = kinds.get(self.kind).name
        expected = kinds.get(self.kind).config
        if self.model is None:
            self.model = expected()
        elif not isinstance(self.model, expected):
            raise ConfigError(f"a {self.kind} recipe needs a {expected.__name__} model, not {type(self.model).__name__}")
        if not kinds.get(self.kind).token_batches and self.batching.batch_size is None:
            raise ConfigError(f"a {self.kind} recipe needs batching.batch_size (max_tokens batches texts, not streams)")

    def to_dict(self) -> dict:
        """The recipe as plain data: its kind, its seed and the sections its kind reads (kinds.Kind.sections)."""
        sections = kinds.get(self.kind).sections
        return {name: value for name, value in dataclasses.asdict(self).items() if name in ("kind", "seed", *sections)}


def load_recipe(path: str | Path | None = None, overrides: list[str] | dict | None = None, base: dict | None = None) -> Recipe:
    """A recipe from ``path`` (or from ``base``, which is not changed, or the defaults) with overrides:
    ``["--section.field", "VALUE", ...]`` as on the command line, or a dict of ``{"section.field": value}``
    or ``{"section": {"field": value}}``."""
    where = str(path) if path is not None else "recipe"
    raw: dict = copy.deepcopy(base or {})
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such recipe file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read ({err})") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f", line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a recipe must be a mapping of sections")
        _resolve_paths(raw, path.parent)
    flags = not isinstance(overrides, dict)  # from a command line: errors name the flag
    overrides = parse_overrides(overrides or []) if flags else flatten_overrides(overrides)
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            target = raw.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{key}: {section!r} is not a section")
            target[name] = value
        else:
            raw[key] = value
    if "task" in raw:  # recipes, checkpoints and overrides from before kinds
        task = raw.pop("task")
        raw.setdefault("kind", kinds.canonical(str(task)))
    try:
        recipe = _build(Recipe, raw, "")
    except ConfigError as err:
        key, message = next((key for key in overrides if _about(str(err), key)), None), str(err)
        if key is None:  # from the file
            raise ConfigError(f"{where}: {message}") from None
        if flags and message.startswith("unknown key"):  # from the command line: name the flag
            close = re.search(r"did you mean '([\w.]+)'", message)
            known = message[message.find(" (known") :] if " (known" in message else ""
            suggestion = close and (close[1] if "." in close[1] else f"{close[1]}.{key.partition('.')[2]}".rstrip("."))
            message = f"--{key}: unknown key" + (f"; did you mean --{suggestion}?" if close else known)
        elif flags:
            message = f"--{message}"
        raise ConfigError(message, err.parameter) from None
    return recipe


def _about(message: str, key: str) -> bool:
    """Whether a recipe error's message is about the field ``key`` (``train.lr must be ...``, ``unknown key 'train.x'``)."""
    head = message.split("(")[0]
    return message.startswith(f"{key} ") or f"'{key}'" in head or f"unknown key '{key.partition('.')[0]}'" in head


def default_recipe_path() -> Path:
    """seqtext's default classifier, shipped in the package: what ``seqtext train --data FILE`` trains."""
    return Path(str(resources.files("seqtext").joinpath("recipes/default.yaml")))


def for_data(path: str | Path | None, overrides: list[str] | dict | None, data, keep_tokenizer: bool = False,
             log=None) -> Recipe:  # fmt: skip
    """The recipe at ``path`` (seqtext's default classifier when None) with ``overrides``, to train on ``data``
    (a file, folder or named dataset replacing the recipe's; None keeps it; data in memory is given to
    training apart and only changes the vocabulary here). A tokenizer file the recipe names was built for
    its own dataset, so with new data the vocabulary is built from the new training split unless
    ``keep_tokenizer``; ``log`` is told. The default recipe's vectors are used when found, and when not, it
    trains without them and says so."""
    log = log or (lambda message: None)
    overrides = flatten_overrides(overrides) if isinstance(overrides, dict) else parse_overrides(overrides or [])
    if isinstance(data, (str, Path)):
        overrides["data.dataset"] = str(data)
    recipe = load_recipe(default_recipe_path() if path is None else path, overrides)
    if data is not None and recipe.tokenizer.path is not None and not keep_tokenizer and "tokenizer.path" not in overrides:
        log(f"seqtext: new data: the vocabulary is built from its training split, not {recipe.tokenizer.path} "
            "(keep that file with --keep-tokenizer, or keep_tokenizer=True)")  # fmt: skip
        recipe = dataclasses.replace(recipe, tokenizer=dataclasses.replace(recipe.tokenizer, path=None))
    vectors = getattr(recipe.model, "vectors", None)
    if path is None and vectors is not None and "model.vectors" not in overrides:
        from seqtext.vectors import resolve

        try:
            resolve(vectors)
        except DataError as err:
            log(f"seqtext: training without word vectors: {err}")
            recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, vectors=None))
    return recipe


def flatten_overrides(overrides: dict, prefix: str = "") -> dict[str, object]:
    """``{"train": {"lr": 1e-3}, "data.max_length": 256}`` -> ``{"train.lr": 1e-3, "data.max_length": 256}``."""
    flat = {}
    for key, value in overrides.items():
        if isinstance(value, dict) and key in _SECTIONS and not prefix:
            flat.update(flatten_overrides(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def parse_overrides(args: list[str]) -> dict[str, object]:
    """``["--data.max_length", "256", "--seed=3"]`` -> ``{"data.max_length": 256, "seed": 3}``."""
    result, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"unexpected argument {arg!r} (overrides look like --section.field VALUE)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ConfigError(f"--{key} needs a value")
            i += 1
            value = args[i]
        try:
            result[key] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            result[key] = value
        i += 1
    return result


def _build(cls, raw: dict, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'recipe'} must be a mapping, not {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f": did you mean {prefix + close[0]!r}?" if close else f" (known: {', '.join(prefix + k for k in known)})"
            raise ConfigError(f"unknown key {prefix + str(key)!r}{hint}", prefix + str(key))
        hint = hints[key]
        if cls is Recipe and key == "model":  # the kind decides which model the section describes
            hint = kinds.KINDS.get(kinds.canonical(str(raw.get("kind", "classifier"))), kinds.get("classifier")).config
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, prefix + key)
    return cls(**kwargs)


_SECTIONS = ("data", "tokenizer", "batching", "model", "train", "series")


def _coerce(value, hint, name: str):
    """``value`` as type ``hint`` (int, float, str, bool, or one of them | None; or tuple[int, ...]), or a ConfigError."""
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(item, typing.get_args(hint)[0], f"{name}[{i}]") for i, item in enumerate(value))
        raise ConfigError(f"{name} must be a list, not {value!r}")
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{name} must not be null")
    for option in options:
        if typing.get_origin(option) is tuple and isinstance(value, (list, tuple)):
            return _coerce(value, option, name)
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(float(value), name)
        if option is float and isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return _finite(float(value), name)
            except ValueError:
                pass
        if option is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    expected = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise ConfigError(f"{name} must be {expected}, not {value!r}")


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value}")
    return value


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")


def _looks_like_path(dataset: str, base: Path) -> bool:
    """A recipe's dataset that is meant as a path (seqtext.data.looks_like_path), its first part looked for
    beside the recipe."""
    from seqtext.data import looks_like_path

    return looks_like_path(dataset) or ("/" in dataset and (base / dataset.split("/", 1)[0]).is_dir())


def _resolve_paths(raw: dict, base: Path) -> None:
    """Make a recipe file's relative paths relative to that file (command-line values stay relative to
    the working directory)."""
    tokenizer, data, train, model = raw.get("tokenizer"), raw.get("data"), raw.get("train"), raw.get("model")
    if isinstance(tokenizer, dict) and isinstance(tokenizer.get("path"), str):
        tokenizer["path"] = os.path.normpath(base / tokenizer["path"])
    for section in (train, model):  # a path beside the recipe; a catalogue name (glove.6B.50d) stays as it is
        if isinstance(section, dict) and isinstance(section.get("vectors"), str) and (base / section["vectors"]).exists():
            section["vectors"] = os.path.normpath(base / section["vectors"])
    if isinstance(model, dict) and isinstance(model.get("encoder_from"), str):
        model["encoder_from"] = os.path.normpath(base / model["encoder_from"])
    if isinstance(data, dict) and isinstance(data.get("data_dir"), str):
        data["data_dir"] = os.path.normpath(base / data["data_dir"])
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if isinstance(dataset, str) and ((base / dataset).exists() or _looks_like_path(dataset, base)):
        data["dataset"] = os.path.normpath(base / os.path.expanduser(dataset))
