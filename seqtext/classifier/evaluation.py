"""A classifier's evaluation: accuracy, macro-F1, the per-class report and the confusion matrix, on any held-out data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from seqtext.batching import (
    MAX_TOKENS,
    SHAPE_MULTIPLE,
    BucketBatchSampler,
    EncodedTexts,
    collate,
    release_freed_memory,
)
from seqtext.checkpoint import Checkpoint
from seqtext.classifier.model import TextClassifier
from seqtext.data import IN_MEMORY, encode_labels, load_splits, split_file
from seqtext.errors import DataError
from seqtext.readers import iter_rows
from seqtext.recipe import load_recipe


@torch.no_grad()
def classify(
    model: TextClassifier,
    encoded: EncodedTexts,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Logits (N, C) for every text of ``encoded``, in its order.

    Batches hold texts of similar length, at most ``batch_size`` of them and ``max_tokens`` padded
    tokens, so that 256 reviews of 2,000 tokens do not make one batch of 512,000 tokens of activations.
    ``device`` defaults to the model's.
    """
    model.eval()
    device = device or next(model.parameters()).device
    sampler = BucketBatchSampler(
        encoded.lengths, batch_size, max_tokens=max_tokens or MAX_TOKENS, pool_size=max(len(encoded), 1), shuffle=False
    )
    logits = None
    for indices in sampler:
        batch = collate([encoded[i] for i in indices], SHAPE_MULTIPLE).to(device)
        out = model(batch.ids, batch.lengths, batch.mask).logits.float().cpu()  # (b, C)
        if logits is None:
            logits = torch.empty(len(encoded), out.shape[1])
        logits[torch.tensor(indices)] = out
    return logits


def classification_report(logits: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...] | list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 / support, confusion (rows: truth), loss, n."""
    num_classes = len(names)
    predictions = logits.argmax(1)
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2).view(num_classes, num_classes)
    true_positives = confusion.diag().double()
    predicted, actual = confusion.sum(0).double(), confusion.sum(1).double()
    precision = torch.where(predicted > 0, true_positives / predicted.clamp(min=1), torch.zeros_like(predicted))
    recall = torch.where(actual > 0, true_positives / actual.clamp(min=1), torch.zeros_like(actual))
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), torch.zeros_like(precision)
    )
    return {
        "n": len(labels),
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (predictions == labels).double().mean().item(),
        "macro_f1": f1.mean().item(),
        "per_class": {
            name: {"precision": precision[i].item(), "recall": recall[i].item(), "f1": f1[i].item(), "support": int(actual[i])}
            for i, name in enumerate(names)
        },
        "labels": list(names),
        "confusion": confusion.tolist(),
    }


def evaluate_classifier(
    model: TextClassifier,
    encoded: EncodedTexts,
    names: tuple[str, ...],
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> dict:
    return classification_report(classify(model, encoded, batch_size, device), encoded.labels, names)


def evaluate_checkpoint(
    checkpoint: Checkpoint, data=None, split: str = "test", baselines: bool = False, **options
) -> tuple[dict, str]:
    """A classifier's report on held-out data, as ``evaluation_chunks`` chooses it (``options``: its
    ``data_dir``, ``on_bad_rows`` and ``chunk_size``); returns (report, description). With ``baselines``,
    the report's ``baselines`` holds NBSVM-bi's report on the same texts, fitted on the model's own train
    split (its C chosen on the model's validation split)."""
    chunks, description = evaluation_chunks(checkpoint, data, split, **options, with_texts=True)  # bad data fails here
    baseline = _fit_baseline(checkpoint, options.get("data_dir")) if baselines else None
    logits, labels, baseline_scores = [], [], []
    for encoded, texts in chunks:
        logits.append(classify(checkpoint.model, encoded))
        labels.append(encoded.labels)
        if baseline is not None:
            baseline_scores.append(torch.as_tensor(baseline.scores(texts), dtype=torch.float32))
        release_freed_memory()
    names = checkpoint.label_map.names
    report = classification_report(torch.cat(logits), torch.cat(labels), names)
    if baseline is not None:
        figures = classification_report(torch.cat(baseline_scores), torch.cat(labels), names)
        figures.pop("loss")  # NBSVM's scores are margins, not probabilities
        fit = {"C": baseline.c, "fit_seconds": baseline.seconds, "fitted_on": baseline.source}
        report["baselines"] = {"NBSVM-bi": {**figures, **fit}}
    return report, description


def _fit_baseline(checkpoint: Checkpoint, data_dir: str | None):
    """NBSVM-bi on the train split the model was trained on, held out exactly as in training."""
    from seqtext.classifier.baselines import fit_nbsvm

    recipe = load_recipe(None, base=checkpoint.recipe)
    if recipe.data.dataset == IN_MEMORY:
        raise DataError("baselines: the model was trained on data in memory, which was not saved; nothing to fit on")
    loaded = load_splits(
        recipe.data.dataset,
        data_directory=data_dir or recipe.data.data_dir,
        text_column=recipe.data.text_column,
        label_column=recipe.data.label_column,
        on_bad_rows=recipe.data.on_bad_rows,
        validation_fraction=recipe.data.validation_fraction,
        seed=recipe.seed,
        label_map=checkpoint.label_map,
    )
    train, validation = loaded.splits["train"], loaded.splits.get("validation")
    held_out = (validation["text"], validation["label"]) if validation is not None else None
    model = fit_nbsvm(train["text"], train["label"], len(checkpoint.label_map.names), validation=held_out)
    model.source = f"{loaded.source}, train split ({len(train):,} texts)"
    return model


def evaluation_set(checkpoint: Checkpoint, data=None, split: str = "test", **options) -> tuple[EncodedTexts, str]:
    """The labelled texts ``evaluation_chunks`` chooses, all at once."""
    chunks, description = evaluation_chunks(checkpoint, data, split, **options, chunk_size=None)
    return next(chunks), description


def evaluation_chunks(
    checkpoint: Checkpoint,
    data=None,
    split: str = "test",
    data_dir: str | None = None,
    on_bad_rows: str | None = None,
    chunk_size: int | None = 512,
    with_texts: bool = False,
) -> tuple[Iterator[EncodedTexts], str]:
    """The labelled texts to evaluate a classifier on, encoded with its own tokenizer and label map, and a
    description of them.

    Without ``data``: ``split`` of the dataset the model was trained on, held out exactly as in training.
    With ``data``: a file (evaluated whole), a named dataset or folder (its ``split``), or data in memory
    (its ``split``). When the texts come from one file (``data`` is a file, or the split has a file of its
    own), the file is read and encoded ``chunk_size`` rows at a time (None: at once), so that memory stays
    bounded by the chunk, not the file; otherwise the split is loaded whole, as one chunk. A label the
    model does not know is an error naming the label and the line. With ``with_texts``, each chunk comes
    as (encoded, its texts).
    """
    recipe = load_recipe(None, base=checkpoint.recipe)
    config, policy = recipe.data, on_bad_rows or recipe.data.on_bad_rows
    in_memory = data is not None and not isinstance(data, (str, Path))
    if isinstance(data, (str, Path)) and Path(data).is_file():
        path, description = Path(data), str(data)
    elif in_memory:
        path, description = None, None
    else:
        path, description = split_file(data or config.dataset, split, data_dir or config.data_dir)
        description = description and f"{description}, {split} split"
    if path is not None:
        return _file_chunks(checkpoint, config, path, description, policy, chunk_size, with_texts), description
    loaded = load_splits(
        data if data is not None else config.dataset,
        data_directory=data_dir or config.data_dir,
        text_column=config.text_column,
        label_column=config.label_column,
        on_bad_rows=policy,
        validation_fraction=config.validation_fraction,
        seed=recipe.seed,
        label_map=checkpoint.label_map,
    )
    if split not in loaded.splits:
        raise DataError(f"{loaded.source}: no split {split!r} (splits: {', '.join(loaded.splits)})", "split")
    table, description = loaded.splits[split], f"{loaded.source}, {split} split"
    if "label" not in table.column_names:
        raise DataError(f"{description} has no labels to evaluate against")
    encoded = EncodedTexts.from_texts(checkpoint.tokenizer, table["text"], table["label"], config.max_length)
    return iter([(encoded, table["text"]) if with_texts else encoded]), description


def _file_chunks(
    checkpoint: Checkpoint, config, path: Path, description: str, policy: str, chunk_size: int | None, with_texts: bool
):
    found = False
    for rows in iter_rows(path, config.text_column, config.label_column, policy, chunk_size=chunk_size):
        table, _ = encode_labels(rows, checkpoint.label_map, policy)
        if "label" not in table.column_names:
            raise DataError(f"{description} has no labels to evaluate against")
        if len(table):
            found = True
            encoded = EncodedTexts.from_texts(checkpoint.tokenizer, table["text"], table["label"], config.max_length)
            yield (encoded, table["text"]) if with_texts else encoded
    if not found:
        raise DataError(f"{description}: no rows with a label the model knows")
