"""The model kinds, in one registry: for each, its config dataclass, its ``nn.Module``, the task that trains
it, the Python object ``seqtext.load`` returns for it, and how its evaluation is printed.

Recipes (``kind:``), checkpoints (``config.json``), the command line, the server and export all look a
kind up here and ask it what it supports, never its name: adding one means one entry below (or a
``register`` call) plus its own modules. Tasks, API objects and the rest are named as ``module:attribute``
and imported when first used: models sit below data, training and the API, and must not import them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from torch import nn

from seqtext.errors import ConfigError
from seqtext.models.classifier import ClassifierConfig, TextClassifier
from seqtext.models.forecaster import Forecaster, ForecasterConfig
from seqtext.models.language_model import LanguageModelConfig, RecurrentLanguageModel


@dataclass(frozen=True)
class Kind:
    name: str
    config: type  # the model's config dataclass: the recipe's ``model`` section
    module: type[nn.Module]  # built as module(config, **model_args)
    task: str  # the training task (seqtext/tasks/), "module:Class"
    api: str  # what seqtext.load returns, "module:Class"
    report: str  # prints an evaluation for people, "module:function"
    aliases: tuple[str, ...] = ()  # older names, still read in recipes and checkpoints
    text: bool = True  # reads text through a tokenizer
    # the recipe sections it reads, besides kind and seed: a saved recipe (config.json, the card) holds only these
    sections: tuple[str, ...] = ("data", "tokenizer", "batching", "model", "train")
    # what the command line, the server and export ask of a kind; None where it has none
    summary: str | None = None  # `seqtext data`: (recipe) -> a summary (a "skipped_rows" entry is reported)
    texts: str | None = None  # `seqtext tokenizer`: (recipe) -> the texts its tokenizer trains on
    route: str | None = None  # the server answers POST /v1/<route> with it (classify, generate)
    worker_per_core: bool = False  # the server's default: one worker process a core (else one)
    export: str | None = None  # (module) -> the graph `seqtext export` writes (seqtext/export.py's ExportGraph)
    exported: str | None = None  # what seqtext.export.load_exported returns for that export
    token_batches: bool = False  # batching.max_tokens may cut its batches (else it needs batching.batch_size)
    int8: bool = False  # its recurrent and linear layers may be quantized dynamically (seqtext.load(int8=True))
    # weight-name prefixes in checkpoints of format 1 and the names they have now (seqtext/checkpoint.py)
    renamed: tuple[tuple[str, str], ...] = ()

    def load(self, attribute: str):
        """The object named by ``task``, ``api``, ``report`` or another "module:attribute" field."""
        module, _, name = getattr(self, attribute).partition(":")
        return getattr(importlib.import_module(module), name)


KINDS = {
    kind.name: kind
    for kind in (
        Kind(
            "classifier",
            ClassifierConfig,
            TextClassifier,
            task="seqtext.tasks.classifier:ClassifierTask",
            api="seqtext.api:Classifier",
            report="seqtext.report:print_evaluation",
            aliases=("classification",),
            summary="seqtext.pipeline:classification_summary",
            texts="seqtext.pipeline:labelled_texts",
            route="classify",
            worker_per_core=True,
            export="seqtext.export:classifier_graph",
            exported="seqtext.export:ExportedClassifier",
            token_batches=True,
            int8=True,
            renamed=(("attention.", "pooling.attention."),),  # the attention poolings, before nn.POOLINGS
        ),
        Kind(
            "language_model",
            LanguageModelConfig,
            RecurrentLanguageModel,
            task="seqtext.tasks.language_model:LanguageModelTask",
            api="seqtext.api:LanguageModel",
            report="seqtext.report:print_language_model_evaluation",
            renamed=(("head.", "output.head."), ("projection.", "output.projection.")),  # before OutputLayer
            summary="seqtext.pipeline:corpus_summary",
            texts="seqtext.pipeline:corpus_tokenizer_texts",
            route="generate",
            export="seqtext.export:language_model_graph",
            exported="seqtext.export:ExportedLanguageModel",
            int8=True,
        ),
        Kind(
            "forecaster",
            ForecasterConfig,
            Forecaster,
            task="seqtext.tasks.forecaster:ForecasterTask",
            api="seqtext.api:Forecaster",
            report="seqtext.report:print_forecast_evaluation",
            aliases=("forecasting",),
            text=False,
            sections=("data", "batching", "model", "train", "series"),
            summary="seqtext.series:series_summary",
        ),
    )
}
_ALIASES = {alias: kind.name for kind in KINDS.values() for alias in kind.aliases}


def register(kind: Kind) -> Kind:
    """Add ``kind`` (a kind defined outside seqtext: its package holds its modules); returns it."""
    if canonical(kind.name) in KINDS:
        raise ConfigError(f"a kind called {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    _ALIASES.update({alias: kind.name for alias in kind.aliases})
    return kind


def canonical(name: str) -> str:
    """A kind's name for ``name`` or one of its older aliases (``classification`` -> ``classifier``)."""
    return _ALIASES.get(name, name)


def get(name: str, field: str = "kind") -> Kind:
    """The registered kind called ``name`` (or an alias); a ConfigError naming ``field`` otherwise."""
    kind = KINDS.get(canonical(name)) if isinstance(name, str) else None
    if kind is None:
        raise ConfigError(f"{field} must be one of {', '.join(KINDS)}, not {name!r}", parameter=field)
    return kind
