"""The Python API: ``seqtext.load``, ``seqtext.train`` and ``seqtext.evaluate``, and the model objects they
return, each from its kind's package (``Classifier`` in seqtext/classifier/api.py, and so on).

    import seqtext
    model = seqtext.load("runs/sst2")              # a run directory (its best/) or a checkpoint
    model.predict("A gorgeous movie.")             # one text -> one Prediction; a list -> a list
    seqtext.evaluate(model)                        # the figures `seqtext evaluate --json` prints

The command line (seqtext/cli.py) is a thin layer over these objects.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import torch

from seqtext import checkpoint, kinds
from seqtext.errors import ConfigError, DataError
from seqtext.recipe import Recipe, load_recipe

CHUNK_SIZE = 512  # texts a stream of predictions encodes and labels at a time: bounds the memory of a long file


def load(path: str | Path, device: str | torch.device = "cpu", int8: bool = False, precision: str = "fp32") -> Model:
    """The model saved at ``path`` (a run directory, meaning its ``best/``, or a checkpoint directory), on
    ``device``, as the object for its kind: a ``Classifier``, ``LanguageModel`` or ``Forecaster``. With
    ``int8``, its LSTM / GRU and linear layers are dynamically quantized (CPU only; seqtext/export.py).
    ``precision``: fp32, bf16 (its forward passes under autocast, the weights as saved) or auto (bf16 where
    this process measures it faster); any checkpoint loads in either, whatever it was trained in."""
    device = _device(device)
    if int8 and device.type != "cpu":
        raise ConfigError(f"int8 runs on the CPU, not {device}", "device")
    return wrap(checkpoint.load(path, device=device), int8, precision)


def wrap(saved: checkpoint.Checkpoint, int8: bool = False, precision: str = "fp32") -> Model:
    """A loaded checkpoint as the object for its kind, its layers made int8 when asked, computing in ``precision``."""
    from seqtext import precision as precisions

    if int8 and precision == "auto":  # int8 layers: fp32 around them, wherever bf16 would win
        precision = "fp32"
    chosen, _ = precisions.resolve(precision, next(saved.model.parameters()).device)
    if int8:
        if not kinds.get(saved.kind).int8:
            which = " and ".join(kind.name.replace("_", " ") + "s" for kind in kinds.every() if kind.int8)
            raise ConfigError(f"int8 is for {which}, not a {saved.kind.replace('_', ' ')}", "int8")
        if chosen != "fp32":
            raise ConfigError(f"int8 layers compute in int8 and fp32: int8 or precision {precision}, not both", "precision")
        from seqtext.export import quantize_dynamic

        saved.model = quantize_dynamic(saved.model)
    model = kinds.get(saved.kind).load("api")(saved)
    model.precision = chosen
    return model


def train(
    recipe: str | Path | dict | Recipe | None = None,
    out: str | Path | None = None,
    data=None,
    *,
    resume: bool = False,
    progress: bool | None = None,
    keep_tokenizer: bool = False,
    **overrides,
) -> Model:
    """Train a recipe's model and return the best checkpoint, loaded, with ``.run_dir`` and ``.validation``.

    ``recipe`` is a YAML path, a dict of sections, or a ``Recipe``; None trains seqtext's default classifier
    on ``data`` (``seqtext recipe default`` prints it). ``data`` replaces the recipe's dataset: a file, folder
    or named dataset, or data in memory: ``{"train": {"text": [...], "label": [...]}, "test": {...}}`` (a
    split may be a list of row dicts or a pandas DataFrame), a ``datasets.DatasetDict``, one ``Dataset`` as
    the train split, or one DataFrame: the train split, or all of them when it has a ``split`` column.
    New data gets a vocabulary built from its own training split, not the recipe's tokenizer file, unless
    ``keep_tokenizer``. ``overrides`` set recipe fields: ``train__lr=1e-3`` or ``train={"lr": 1e-3}``,
    ``seed=1`` (the data section as ``data__field=``, since ``data`` is the data itself). ``out`` is the run
    directory (default ``runs/RECIPE_NAME`` for a file, else a new ``runs/KIND-DATE-TIME``); ``resume``
    continues the run in it. The model comes back on the device it trained on, computing in fp32 whatever
    ``train.precision`` was (``seqtext.load(model.run_dir, precision="bf16")`` for bf16).
    """
    from seqtext.recipe import for_data
    from seqtext.training import pick_device
    from seqtext.training import train as train_run

    flat = {key.replace("__", "."): value for key, value in overrides.items()}
    notes: list[str] = []
    if recipe is None and data is None:
        raise ConfigError("give a recipe, or data= to train seqtext's default classifier on", "recipe")
    if recipe is None or isinstance(recipe, (str, Path)):
        loaded = for_data(recipe, flat, None if resume else data, keep_tokenizer, log=notes.append)
        named = Path(recipe).stem if recipe is not None else Path(str(data)).stem if isinstance(data, (str, Path)) else None
        run_dir = Path(out) if out is not None else Path("runs") / named if named else _new_run_dir(loaded.kind, resume)
    elif isinstance(recipe, (dict, Recipe)):
        loaded = load_recipe(None, flat, base=recipe.to_dict() if isinstance(recipe, Recipe) else recipe)
        run_dir = Path(out) if out is not None else _new_run_dir(loaded.kind, resume)
    else:
        raise ConfigError(f"recipe must be a path, a dict or a Recipe, not {type(recipe).__name__}", "recipe")
    in_memory = None if isinstance(data, (str, Path)) else data
    result = train_run(loaded, run_dir, resume=resume, progress=progress, data=in_memory, notes=tuple(notes))
    model = load(run_dir, device=pick_device(loaded.train.device))
    model.run_dir = run_dir
    model.validation = {key: value for key, value in result.items() if key not in ("run", "best")}
    return model


def evaluate(model: Model | str | Path, data=None, split: str | None = None, **options) -> dict:
    """``model.evaluate(data, split, **options)``; ``model`` may also be a path to load."""
    if not isinstance(model, Model):
        model = load(model)
    return model.evaluate(data, split, **options)


class ModelTokenizer:
    """The ids a model reads for a text, and the text for ids."""

    def __init__(self, tokenizer, max_length: int | None):
        self.backend, self.max_length = tokenizer, max_length

    @property
    def kind(self) -> str:
        return self.backend.kind

    @property
    def vocab_size(self) -> int:
        return self.backend.vocab_size

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, truncated as the model truncates (a classifier's ``data.max_length``)."""
        return self.backend.encode(text, self.max_length)

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode(ids)

    def __repr__(self) -> str:
        return f"ModelTokenizer({self.kind}, {self.vocab_size:,} tokens)"


class Model:
    """What every kind has: its module, config, recipe, card and tokenizer, a device, and ``save``."""

    kind = ""
    evaluate_options: tuple[str, ...] = ()  # keyword options ``evaluate`` takes besides data and split

    def __init__(self, saved: checkpoint.Checkpoint):
        self.checkpoint = saved
        self.module = saved.model  # the torch.nn.Module, in eval mode
        self.run_dir: Path | None = None  # set by seqtext.train
        self.validation: dict | None = None  # set by seqtext.train: the best validation figures and step
        self.precision = "fp32"  # or bf16: forward passes under autocast (seqtext.load(..., precision=))

    @property
    def config(self):
        """The model's config dataclass (sizes, cell, pooling, ...)."""
        return self.module.config

    @property
    def recipe(self) -> Recipe:
        return load_recipe(None, base=self.checkpoint.recipe)

    @property
    def card(self) -> dict:
        return self.checkpoint.card

    @property
    def tokenizer(self) -> ModelTokenizer | None:
        if self.checkpoint.tokenizer is None:
            return None
        return ModelTokenizer(self.checkpoint.tokenizer, self._max_length())

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> Model:
        self.module.to(_device(device))
        return self

    def save(self, path: str | Path) -> Path:
        """Write the model as a checkpoint directory (weights, config, tokenizer, labels, card)."""
        saved = self.checkpoint
        return checkpoint.save(
            path,
            kind=saved.kind,
            model=self.module,
            model_args=saved.config["model_args"],
            recipe=saved.recipe,
            tokenizer=saved.tokenizer,
            label_map=saved.label_map,
            card=saved.card,
        )

    def evaluate(self, data=None, split: str | None = None, **options) -> dict:
        """Figures on held-out data, as ``seqtext evaluate --json`` prints them, with ``data`` describing it.

        Without ``data``: the held-out part of what the model was trained on (``split``: test for a
        classifier or a forecaster, validation for a language model). ``data`` is a file, a named dataset, a
        folder of split files, or (classifiers) data in memory as ``seqtext.train`` takes it.
        """
        unknown = sorted(set(options) - set(self.evaluate_options))
        if unknown:
            raise ConfigError(f"{', '.join(unknown)}: not an option for evaluating a {self.kind}", unknown[0])
        if "data_dir" in self.evaluate_options and options.get("data_dir") is None:
            options["data_dir"] = self._trained_data_dir()
        with self._autocast():
            result, description = self._evaluate(data, split, **options)
        return {"data": description, **result}

    def plot(self, result: dict, path: str | Path) -> None:
        """Draw an evaluation (``evaluate``'s result) as a PNG."""
        raise ConfigError(f"a {self.kind}'s evaluation has no picture to draw", "plot")

    def _max_length(self) -> int | None:
        return None

    def _autocast(self):
        from seqtext.precision import autocast

        return autocast(self.precision, self.device)

    def _trained_data_dir(self) -> str | None:
        """Where the named dataset was read from in training, when $SEQTEXT_DATA does not say and it is still there."""
        trained = (self.card.get("data") or {}).get("data_dir")
        if os.environ.get("SEQTEXT_DATA") or not trained or not Path(trained).is_dir():
            return None
        return trained

    def _evaluate(self, data, split, **options) -> tuple[dict, str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.checkpoint.path})"


def _new_run_dir(kind: str, resume: bool) -> Path:
    """A run directory of its own for a recipe that has no file name: ``runs/KIND-DATE-TIME[-N]``."""
    if resume:
        raise ConfigError("resume continues a run: give its directory as out", "out")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("under torchrun, give out: each process must name the same run directory", "out")
    base = Path("runs") / f"{kind}-{datetime.now():%Y%m%d-%H%M%S}"
    candidates = (base.with_name(f"{base.name}-{n}") if n else base for n in itertools.count())
    return next(path for path in candidates if not path.exists())


def _device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device that this machine has; a ConfigError naming it otherwise."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be cpu, cuda or cuda:N, not {device!r}", "device") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError("device is cuda, but torch sees no CUDA device", "device")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device is {device}, but torch sees {count} CUDA device(s)", "device")
    elif device.type != "cpu":
        raise ConfigError(f"device must be cpu, cuda or cuda:N, not {str(device)!r}", "device")
    return device


def text_list(texts) -> list[str]:
    """``texts`` as a list: one string is one text; anything but strings is an error naming its place."""
    if isinstance(texts, str):
        return [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise DataError(f"texts must be a string or a list of strings, not {type(texts).__name__}", "texts") from None
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise DataError(f"text {number} is a {type(text).__name__}, not a string", "texts")
    return texts
