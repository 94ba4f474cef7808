"""Model cards: what a checkpoint is, what it was trained on and how well it did, for machines
(``card.json``) and for people (``README.md``), written beside the weights of every checkpoint."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

import torch

from seqtext import __version__


def model_card(kind: str, recipe: dict, tokenizer, label_map, data: dict, validation: dict | None) -> dict:
    """The card of a checkpoint of ``kind``; ``validation`` holds its validation figures and the ``step``
    they were measured at (the step it was selected at, for ``best/``)."""
    return {
        "kind": kind,
        "labels": list(label_map.names) if label_map is not None else None,
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size} if tokenizer is not None else None,
        "data": data,
        "validation": dict(validation) if validation else None,
        "recipe": recipe,
        "versions": {"seqtext": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def card_problem(card) -> str | None:
    """What keeps ``card`` (a card.json as read) from being shown, or None. A checkpoint may come from
    anywhere: `seqtext info` must fail on a crafted card in one line, not halfway through printing it."""
    if not isinstance(card, dict):
        return f"not a model card (a {type(card).__name__}, not a mapping)"
    if not isinstance(card.get("kind"), str):
        return "kind must be a string"
    labels, tokenizer = card.get("labels"), card.get("tokenizer")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(name, str) for name in labels)):
        return "labels must be a list of strings"
    if tokenizer is not None and not (
        isinstance(tokenizer, dict) and isinstance(tokenizer.get("kind"), str) and _is_count(tokenizer.get("vocab_size"))
    ):
        return "tokenizer must have a kind and a vocab_size"
    for name in ("data", "validation", "versions", "precision"):
        if card.get(name) is not None and not isinstance(card[name], dict):
            return f"{name} must be a mapping"
    for name, sizes in (card.get("data") or {}).items():
        if name in ("splits", "tokens", "values") and not (isinstance(sizes, dict) and all(map(_is_count, sizes.values()))):
            return f"data.{name} must map names to counts"
    return None


def card_lines(card: dict) -> list[tuple[str, str]]:
    """(field, value) rows for people: what ``seqtext info`` prints and README.md holds."""
    rows = [("kind", card["kind"])]
    if card.get("labels"):
        rows.append(("labels", ", ".join(card["labels"])))
    if card.get("tokenizer"):
        rows.append(("tokenizer", f"{card['tokenizer']['kind']}, {card['tokenizer']['vocab_size']:,} tokens"))
    data = card.get("data") or {}
    if data:
        sizes = data.get("splits") or data.get("tokens") or data.get("values") or {}
        unit = "tokens " if "tokens" in data else "values " if "values" in data else ""
        parts = " · ".join(f"{split} {n:,}" for split, n in sizes.items())
        rows.append(("data", f"{data.get('source')}" + (f" ({unit}{parts})" if parts else "")))
    vectors = data.get("vectors")
    if isinstance(vectors, dict) and isinstance(vectors.get("coverage"), dict):
        cover = vectors["coverage"]
        rows.append(
            (
                "vectors",
                f"{vectors.get('source')} ({vectors.get('dim')} wide, trainable: {vectors.get('trainable')}; "
                f"{_percent(cover.get('tokens'))} of the training tokens, {_percent(cover.get('types'))} of its words)",
            )
        )
    validation = dict(card.get("validation") or {})
    if validation:
        step = validation.pop("step", None)
        figures = ", ".join(f"{name} {_number(value)}" for name, value in validation.items())
        rows.append(("validation", f"{figures}" + (f" (step {step})" if step is not None else "")))
    trained = card.get("precision") or {}
    if isinstance(trained.get("trained"), str):
        asked = f" (train.precision {trained.get('asked')})" if trained.get("asked") != trained["trained"] else ""
        rows.append(("precision", f"trained in {trained['trained']}{asked}"))
    versions = card.get("versions") or {}
    rows.append(("versions", " · ".join(f"{name} {version}" for name, version in versions.items())))
    rows.append(("date", str(card.get("date"))))
    return rows


def card_markdown(card: dict) -> str:
    """The card as a short README.md."""
    title = f"# seqtext {card['kind'].replace('_', ' ')}"
    table = "\n".join(f"| {name} | {value} |" for name, value in card_lines(card))
    model = (card.get("recipe") or {}).get("model") or {}
    settings = ", ".join(f"{name} {value}" for name, value in model.items())
    return (
        f"{title}\n\n| field | value |\n|---|---|\n{table}\n\n"
        f"Load it with `seqtext.load(PATH)`, or `seqtext info PATH` for this card. The whole recipe is in "
        f"card.json and config.json.\n" + (f"\nModel: {settings}\n" if settings else "")
    )


def _is_count(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _percent(value) -> str:
    return f"{value:.1%}" if isinstance(value, float) else "?"


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}" if isinstance(value, float) else str(value)
