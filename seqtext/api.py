"""The Python API: ``seqtext.load``, ``seqtext.train`` and ``seqtext.evaluate``, and the model objects they
return, one class per kind (seqtext/kinds.py names each kind's class).

    import seqtext
    model = seqtext.load("runs/sst2")              # a run directory (its best/) or a checkpoint
    model.predict("A gorgeous movie.")             # one text -> one Prediction; a list -> a list
    seqtext.evaluate(model)                        # the figures `seqtext evaluate --json` prints

The command line (seqtext/cli.py) is a thin layer over these objects.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
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
        if not kinds.KINDS[saved.kind].int8:
            which = " and ".join(kind.name.replace("_", " ") + "s" for kind in kinds.KINDS.values() if kind.int8)
            raise ConfigError(f"int8 is for {which}, not a {saved.kind.replace('_', ' ')}", "int8")
        if chosen != "fp32":
            raise ConfigError(f"int8 layers compute in int8 and fp32: int8 or precision {precision}, not both", "precision")
        from seqtext.export import quantize_dynamic

        saved.model = quantize_dynamic(saved.model)
    model = kinds.KINDS[saved.kind].load("api")(saved)
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


class Classifier(Model):
    """A text classifier: ``predict`` labels, ``predict_proba`` probabilities, attention over the words."""

    kind = "classifier"
    evaluate_options = ("data_dir", "on_bad_rows", "baselines")

    @property
    def labels(self) -> list[str]:
        return list(self.checkpoint.label_map.names)

    def predict(self, texts: str | Iterable[str], batch_size: int = 128):
        """A ``Prediction`` (``label``, ``probs`` as {label: probability}, ``attention`` as (token, weight)
        pairs) for one text, or a list of them for a list. A text the model cannot read gets a Prediction
        with ``error`` set and no label, rather than failing the others: one with nothing visible (empty,
        whitespace, zero-width characters), one with no tokens, or one holding a lone surrogate ('\\ud800'),
        which is no character (``seqtext.predict.readable_problem`` says which)."""
        from seqtext.predict import predict

        single = isinstance(texts, str)
        batch = _text_list(texts)
        with self._autocast():
            found = predict(self.module, self.checkpoint.tokenizer, tuple(self.labels), batch, self._max_length(), batch_size)
        return found[0] if single else found

    def predict_stream(self, texts: Iterable[str], chunk_size: int = CHUNK_SIZE) -> Iterator:
        """Predictions for texts as they come (the lines of a long file), in order, ``chunk_size`` at a time,
        in memory bounded by the chunk."""
        from seqtext.batching import release_freed_memory

        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, not {chunk_size!r}", "chunk_size")
        texts = iter([texts] if isinstance(texts, str) else texts)
        while chunk := list(itertools.islice(texts, chunk_size)):
            yield from self.predict(chunk)
            release_freed_memory()

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """Probabilities (N, C), columns in ``labels`` order; a row of NaN for a text the model cannot read."""
        predictions = self.predict(_text_list(texts))
        return np.array(
            [[p.probs[label] for label in self.labels] if p.error is None else [np.nan] * len(self.labels) for p in predictions]
        ).reshape(-1, len(self.labels))

    def plot(self, result: dict, path: str | Path) -> None:
        from seqtext.plots import plot_confusion

        plot_confusion(result["confusion"], result["labels"], path, title=result["data"])

    def _max_length(self) -> int | None:
        return self.checkpoint.recipe["data"]["max_length"]

    def _evaluate(self, data, split, data_dir=None, on_bad_rows=None, baselines=False) -> tuple[dict, str]:
        from seqtext.data import is_dataframe
        from seqtext.evaluation import evaluate_checkpoint

        options = {"data_dir": data_dir, "on_bad_rows": on_bad_rows}
        if is_dataframe(data) and "split" not in data.columns:  # one table of held-out rows: the split evaluated
            data = {split or "test": data}
        return evaluate_checkpoint(self.checkpoint, data, split or "test", baselines=baselines, **options)


class LanguageModel(Model):
    """A language model: ``generate`` continues a prompt, ``score`` measures a text."""

    kind = "language_model"
    evaluate_options = ("data_dir",)

    @property
    def unit(self) -> str:
        """What one step reads and writes: ``char`` for a character model, else ``token`` (word, BPE)."""
        return "char" if self.checkpoint.tokenizer.kind == "char" else "token"

    def generate(
        self,
        prompt: str = "",
        length: int = 500,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        num_samples: int = 1,
        stream: bool = False,
    ):
        """The text that follows ``prompt`` (without the prompt), ``length`` characters; a list of
        ``num_samples`` texts when more than one; with ``stream``, an iterator of the pieces as they are
        drawn (one sample). ``temperature`` 0 (or below ``seqtext.generate.GREEDY_BELOW``) takes the most
        likely character. The same seed, the same text."""
        from seqtext.generate import Sampling, TextStream, encode_prompt, generate

        if self.checkpoint.recipe["data"].get("reverse"):
            raise ConfigError(
                "this is a backward model (data.reverse): it reads text from its end; generate with a forward one", "prompt"
            )
        sampling = Sampling(temperature, top_k, top_p)
        tokenizer = self.checkpoint.tokenizer
        if stream:
            if num_samples != 1:
                raise ConfigError(f"stream draws one sample, not num_samples={num_samples}", "num_samples")
            steps = generate(self.module, tokenizer, prompt, length, 1, sampling, seed, stream=True, precision=self.precision)
            text = TextStream(tokenizer, encode_prompt(tokenizer, prompt))
            return (text.add(int(ids[0])) for ids in steps)
        samples = generate(self.module, tokenizer, prompt, length, num_samples, sampling, seed, precision=self.precision)
        return samples[0] if num_samples == 1 else samples

    def score(self, text: str) -> dict:
        """How well the model predicts ``text``: ``loss`` (nats per character), ``bpc``, ``perplexity``,
        ``accuracy`` of the next character, ``n_chars`` scored, ``n_unknown`` outside the vocabulary."""
        from seqtext.evaluation import evaluate_language_model

        if not isinstance(text, str):
            raise DataError(f"text must be a string, not {type(text).__name__}", "text")
        ids = self.checkpoint.tokenizer.encode_corpus(text)
        if len(ids) < 2:
            raise DataError(f"text must have at least 2 characters to score one after another, not {len(ids)}", "text")
        with self._autocast():
            return evaluate_language_model(self.module, ids, unit=self.unit)

    def _evaluate(self, data, split, data_dir=None) -> tuple[dict, str]:
        from seqtext.evaluation import corpus_evaluation_set, evaluate_language_model

        ids, description = corpus_evaluation_set(self.checkpoint, data, split, data_dir)
        return evaluate_language_model(self.module, ids, unit=self.unit), description


class Forecaster(Model):
    """A forecaster of a numeric series: ``forecast`` the values after a history."""

    kind = "forecaster"
    evaluate_options = ("horizon", "strategy")

    def forecast(self, history, steps: int | None = None, strategy: str = "auto") -> np.ndarray:
        """The ``steps`` values (default: the model's horizon) after ``history`` (T,), or after each row of
        (B, T), in the series' units. ``strategy``: direct (the model's outputs at once), recursive (feed
        predictions back), auto (direct when the horizon allows)."""
        try:
            values = np.asarray(history, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.array([])
        if values.ndim not in (1, 2) or values.shape[-1] == 0 or not np.isfinite(values).all():
            raise DataError("history must be a non-empty (T,) or (B, T) array of finite numbers", "history")
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ConfigError(f"steps must be an integer of at least 1, not {steps!r}", "steps")
        rows = torch.from_numpy(np.atleast_2d(values)).to(self.device)  # float64: normalize() avoids cancellation
        with self._autocast():
            predicted = self.module.forecast(rows, steps, strategy).cpu().numpy()
        return predicted[0] if values.ndim == 1 else predicted

    def plot(self, result: dict, path: str | Path) -> None:
        from seqtext.plots import plot_forecast

        plot_forecast(result, path, title=result["data"])

    def _evaluate(self, data, split, horizon=None, strategy=None) -> tuple[dict, str]:
        from seqtext.series import SPLITS, evaluate_forecaster, load_series

        split = split or "test"
        if data is not None and not isinstance(data, (str, Path)):
            raise DataError(f"data must be a series file or a named series, not {type(data).__name__}", "data")
        if strategy not in (None, "auto", "direct", "recursive"):
            raise ConfigError(f"strategy must be auto, direct or recursive, not {strategy!r}", "strategy")
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)} for a forecaster, not {split!r}", "split")
        if horizon is not None and (not isinstance(horizon, int) or horizon < 1):
            raise ConfigError(f"horizon must be at least 1, not {horizon!r}", "horizon")
        recipe = self.recipe
        series = load_series(recipe, data)
        window, season = recipe.series.window, recipe.series.season
        result = evaluate_forecaster(self.module, series, split, window, horizon, strategy or "auto", season)
        start, end = series.part(split)
        description = f"{series.name}, {split} part: {end - start:,} values ({series.time[start]:g} to {series.time[end - 1]:g})"
        return result, description


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


def _text_list(texts) -> list[str]:
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
