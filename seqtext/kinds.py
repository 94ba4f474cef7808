"""The model kinds, in one registry: for each, its config dataclass, its ``nn.Module``, the task that trains
it, the Python object ``seqtext.load`` returns for it, and how its evaluation is printed.

Recipes (``kind:``), checkpoints (``config.json``) and the command line all look a kind up here, so adding
one means one entry below plus its own modules. Tasks and API objects are named as ``module:attribute``
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
    # weight-name prefixes in checkpoints of format 1 and the names they have now (seqtext/checkpoint.py)
    renamed: tuple[tuple[str, str], ...] = ()

    def load(self, attribute: str):
        """The object named by ``task``, ``api`` or ``report``."""
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
            renamed=(("attention.", "pooling.attention."),),  # the attention poolings, before nn.POOLINGS
        ),
        Kind(
            "language_model",
            LanguageModelConfig,
            RecurrentLanguageModel,
            task="seqtext.tasks.language_model:LanguageModelTask",
            api="seqtext.api:LanguageModel",
            report="seqtext.report:print_language_model_evaluation",
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
        ),
    )
}
_ALIASES = {alias: kind.name for kind in KINDS.values() for alias in kind.aliases}


def canonical(name: str) -> str:
    """A kind's name for ``name`` or one of its older aliases (``classification`` -> ``classifier``)."""
    return _ALIASES.get(name, name)


def get(name: str, field: str = "kind") -> Kind:
    """The registered kind called ``name`` (or an alias); a ConfigError naming ``field`` otherwise."""
    kind = KINDS.get(canonical(name))
    if kind is None:
        raise ConfigError(f"{field} must be one of {', '.join(KINDS)}, not {name!r}", parameter=field)
    return kind
