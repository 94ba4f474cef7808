"""The model kinds, in one registry. A kind is one package (seqtext/classifier/, seqtext/language_model/,
seqtext/forecaster/) holding its config and ``nn.Module`` (``model``), the task that trains it (``task``),
its evaluation, report, export graph and the object ``seqtext.load`` returns (``api``); the package's
``KIND`` (a ``Kind`` below) names them, and ``BUILTIN`` lists the packages.

Recipes (``kind:``), checkpoints (``config.json``), the command line, the server and export look a kind up
here and ask it what it supports, never its name: adding one is its package and one line in ``BUILTIN`` (or
a ``register`` call, for a kind defined outside seqtext). Tasks, API objects and the rest are named as
``module:attribute`` and imported when first used: a kind's model sits below data, training and the API.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from torch import nn

from seqtext.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from seqtext.distributed import Shard

BUILTIN = ("seqtext.classifier", "seqtext.language_model", "seqtext.forecaster")  # packages, each with its KIND


@dataclass(frozen=True)
class Kind:
    name: str
    config: type  # the model's config dataclass: the recipe's ``model`` section
    module: type[nn.Module]  # built as module(config, **model_args)
    task: str  # the training task (a ``Task``, below), "module:Class"
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


class Task(Protocol):
    """A kind of model's data, batches, loss and validation, as the training loop uses them.

    Built as ``Task(recipe, saved, log, data)``: ``saved`` is the checkpoint a resumed run continues
    from (its model and tokenizer are reused), ``log`` prints a note for the user, ``data`` is in-memory
    data that replaces the recipe's dataset (or None).
    """

    kind: str  # its Kind's name
    score_name: str  # the validation figure that picks the best checkpoint
    higher_is_better: bool
    model: nn.Module
    runner: nn.Module  # the model, or its DistributedDataParallel wrapper under torchrun
    shard: Shard  # this process's part of each batch
    tokenizer: Any  # saved with the checkpoint (None for models that read numbers)
    label_map: Any  # saved with the checkpoint (classifiers; None otherwise)
    model_args: dict  # the sizes the model is built with besides its config (vocab_size, ...)

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training data."""
        ...

    def epoch(self, epoch: int) -> Sequence:
        """The batches of epoch ``epoch``, in order: the same for the same (seed, epoch)."""
        ...

    def step(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(loss to log, objective to minimise, counts) for one global batch: counts has ``n`` and ``tokens``,
        and ``correct`` where accuracy means something."""
        ...

    def validate(self, device: torch.device) -> dict:
        """Validation figures, ``score_name`` among them."""
        ...

    def carried(self) -> dict[str, torch.Tensor]:
        """State that outlives a step (a language model's recurrent state), saved with ``last/``."""
        ...

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what ``carried`` saved, when a run resumes within an epoch."""
        ...

    def data_summary(self) -> dict:
        """Where the training data came from and how large each part is, for the model card."""
        ...

    @staticmethod
    def describe(result: dict) -> str:
        """One line for people about a finished run's best validation figures."""
        ...


KINDS: dict[str, Kind] = {}  # by name: every(), get() and canonical() fill it with BUILTIN's first
_ALIASES: dict[str, str] = {}
_builtin_loaded = False


def _load_builtin() -> None:
    """Register the built-in kinds, once (their packages import this module for ``Kind``, so it cannot
    import them while it loads)."""
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        for package in BUILTIN:
            register(importlib.import_module(package).KIND)


def every() -> tuple[Kind, ...]:
    """Every registered kind, the built-in ones first."""
    _load_builtin()
    return tuple(KINDS.values())


def names() -> tuple[str, ...]:
    """The registered kinds' names (not their aliases)."""
    return tuple(kind.name for kind in every())


def register(kind: Kind) -> Kind:
    """Add ``kind`` (a kind defined outside seqtext: its package holds its modules); returns it."""
    _load_builtin()
    if _ALIASES.get(kind.name, kind.name) in KINDS:
        raise ConfigError(f"a kind called {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    _ALIASES.update({alias: kind.name for alias in kind.aliases})
    return kind


def canonical(name: str) -> str:
    """A kind's name for ``name`` or one of its older aliases (``classification`` -> ``classifier``)."""
    _load_builtin()
    return _ALIASES.get(name, name)


def get(name: str, field: str = "kind") -> Kind:
    """The registered kind called ``name`` (or an alias); a ConfigError naming ``field`` otherwise."""
    kind = KINDS.get(canonical(name)) if isinstance(name, str) else None
    if kind is None:
        raise ConfigError(f"{field} must be one of {', '.join(KINDS)}, not {name!r}", parameter=field)
    return kind
