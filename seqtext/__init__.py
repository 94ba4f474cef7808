"""seqtext: sequence models on text, on PyTorch.

    import seqtext
    model = seqtext.load("runs/sst2")                     # a Classifier, LanguageModel or Forecaster
    model.predict("A gorgeous movie.")                    # label, probs, attention
    model = seqtext.train("recipes/sst2.yaml", train__epochs=1)
    seqtext.evaluate(model)                               # accuracy, macro-F1, per class, confusion

The pipeline, module by module: ``readers`` and ``data`` (files, datasets, splits; ``labels`` for label
maps, ``vectors`` for word vectors) -> ``tokenizer`` -> ``batching`` and ``pipeline`` -> ``training`` (one
loop; ``precision`` for bf16). Each kind of model is one package, named in ``kinds``: ``classifier``,
``language_model`` and ``forecaster``, each with its model, data, task, evaluation, report, export graph
and API class; ``nn`` holds the layers they share. ``api`` is the layer above them all, and ``serve`` and
``export`` put a model behind an application. The names below are imported when first used, so that
``import seqtext`` (and the command line) start fast.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "seqtext.api": ("Model", "evaluate", "load", "train"),
    "seqtext.classifier.api": ("Classifier",),
    "seqtext.forecaster.api": ("Forecaster",),
    "seqtext.language_model.api": ("LanguageModel",),
    "seqtext.errors": ("CheckpointError", "ConfigError", "DataError", "Interrupted", "SeqtextError", "TrainingError"),
    "seqtext.classifier.predict": ("Prediction",),
    "seqtext.recipe": ("Recipe", "load_recipe"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'seqtext' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
