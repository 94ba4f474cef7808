"""Checkpoints: one directory with everything needed to rebuild a model, and nothing that unpickles.

    config.json                 format version, model kind, model config and sizes, the training recipe
    model.safetensors           the weights
    card.json, README.md        the model card: data, validation figures, versions, date (seqtext/card.py)
    tokenizer.json              the tokenizer the model was trained with (text models)
    labels.json                 the label map (classifiers)
    trainer.json                step, epoch, batch position, best score; optimizer hyper-parameters
    trainer.safetensors         optimizer moments and RNG states

A run directory holds ``best/`` and ``last/``; commands that take a checkpoint accept either the run
directory (meaning ``best/``) or one of them. Each checkpoint is written to a temporary directory beside
its final name and renamed into place, so a crash while saving leaves the previous one whole.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from seqtext import kinds
from seqtext.card import card_markdown, model_card
from seqtext.data import LabelMap
from seqtext.errors import CheckpointError, DataError
from seqtext.tokenizer import Tokenizer

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    path: Path
    config: dict  # the whole of config.json
    model: nn.Module
    tokenizer: Tokenizer | None  # text models only
    label_map: LabelMap | None  # classifiers only

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def recipe(self) -> dict:
        return self.config["recipe"]

    @property
    def card(self) -> dict:
        """The model card (card.json); for a checkpoint saved before cards, what config.json tells."""
        if (self.path / "card.json").exists():
            return _read_json(self.path / "card.json")
        return model_card(self.kind, self.recipe, self.tokenizer, self.label_map, {}, None) | {"date": None}


def recover(directory: str | Path) -> None:
    """Finish a save that a crash cut short between its two renames.

    ``save`` moves the previous checkpoint aside to ``.NAME.old`` and then the new one into place. A
    process killed between the two leaves only ``.NAME.old``, which is complete: move it back. A
    ``.NAME.tmp`` is a save that never finished and is never read.
    """
    directory = Path(directory)
    old = directory.with_name(f".{directory.name}.old")
    if not directory.exists() and (old / "config.json").exists():
        old.rename(directory)


def resolve(path: str | Path, repair: bool = True) -> Path:
    """A checkpoint directory: ``path`` itself, or ``path/best`` for a run directory. ``repair`` finishes a
    save cut short (``recover``); a reader beside a live trainer (``seqtext serve``) must not, or it would
    undo the first rename of a save in progress."""
    path = Path(path)
    for name in ("", "best", "last") if repair else ():
        recover(path / name if name else path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if not (path / "config.json").exists() and (path / "best" / "config.json").exists():
        return path / "best"
    return path


def save(
    directory: str | Path,
    *,
    kind: str,
    model: nn.Module,
    model_args: dict,
    recipe: dict,
    tokenizer: Tokenizer | None,
    label_map: LabelMap | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    trainer: dict | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
    card: dict | None = None,
) -> Path:
    """Write a checkpoint directory atomically; ``trainer`` counters and the optimizer make it resumable.

    ``tensors`` are more of the trainer's state (a language model's carried recurrent state), saved with it.
    ``card`` is the model card, written as card.json and README.md.
    """
    directory = Path(directory)
    temporary = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    config = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model": asdict(model.config),
        "model_args": model_args,
        "recipe": recipe,
    }
    _write_json(temporary / "config.json", config)
    save_model(model, str(temporary / "model.safetensors"))  # stores a tied weight once
    if tokenizer is not None:
        tokenizer.save(temporary / "tokenizer.json")
    if label_map is not None:
        label_map.save(temporary / "labels.json")
    if card is not None:
        _write_json(temporary / "card.json", card)
        (temporary / "README.md").write_text(card_markdown(card), encoding="utf-8")
    if trainer is not None:
        tensors_out = {f"task.{k}": v.detach().contiguous() for k, v in (tensors or {}).items()}
        optimizer_tensors, optimizer_json = _flatten_optimizer(optimizer.state_dict()) if optimizer is not None else ({}, None)
        tensors_out.update(optimizer_tensors)
        tensors_out["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            for i, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors_out[f"rng.cuda.{i}"] = state
        save_file(tensors_out, str(temporary / "trainer.safetensors"))
        _write_json(temporary / "trainer.json", {**trainer, "optimizer": optimizer_json})
    for child in temporary.iterdir():
        _fsync(child)
    _fsync(temporary)
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    temporary.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    _fsync(directory.parent)
    return directory


def load(path: str | Path, kind: str | None = None, device: str | torch.device = "cpu", repair: bool = True) -> Checkpoint:
    """Read a checkpoint and rebuild its model (in eval mode, on ``device``). ``kind`` refuses other kinds;
    ``repair=False`` reads without finishing a cut-short save (``resolve``)."""
    directory = resolve(path, repair)
    config = _read_json(directory / "config.json")
    if not isinstance(config, dict) or "kind" not in config:
        raise CheckpointError(f"{directory}/config.json: not a seqtext checkpoint config")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{directory}: checkpoint format {version} is newer than this seqtext reads ({FORMAT_VERSION})")
    if kind is not None and config["kind"] != kind:
        raise CheckpointError(f"{directory}: a {config['kind']} checkpoint, not a {kind}")
    if config["kind"] not in kinds.KINDS:
        raise CheckpointError(f"{directory}: unknown model kind {config['kind']!r}")
    registered = kinds.KINDS[config["kind"]]
    try:
        model = registered.module(registered.config(**config["model"]), **config["model_args"])
    except (TypeError, KeyError) as err:
        raise CheckpointError(f"{directory}/config.json: does not describe a {config['kind']} ({err})") from None
    try:
        load_model(model, str(directory / "model.safetensors"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: no model.safetensors") from None
    except (SafetensorError, RuntimeError, OSError) as err:
        raise CheckpointError(
            f"{directory}/model.safetensors: unreadable or not matching config.json ({str(err).splitlines()[0]})"
        ) from None
    model.to(device).eval()
    try:
        label_map = LabelMap.load(directory / "labels.json") if (directory / "labels.json").exists() else None
        tokenizer = Tokenizer.load(directory / "tokenizer.json") if registered.text else None
    except DataError as err:
        raise CheckpointError(str(err)) from None
    return Checkpoint(directory, config, model, tokenizer, label_map)


def load_trainer_state(directory: str | Path, optimizer: torch.optim.Optimizer | None) -> dict:
    """Restore the optimizer and RNG states saved with a checkpoint; returns the trainer counters, with the
    task's own saved tensors under ``"tensors"``."""
    directory = Path(directory)
    trainer = _read_json(directory / "trainer.json")
    try:
        tensors = load_file(str(directory / "trainer.safetensors"))
    except (FileNotFoundError, SafetensorError, OSError) as err:
        raise CheckpointError(f"{directory}: no readable trainer state, cannot resume ({err})") from None
    if optimizer is not None and trainer.get("optimizer") is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, trainer["optimizer"]))
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    return {**trainer, "tensors": {k.removeprefix("task."): v for k, v in tensors.items() if k.startswith("task.")}}


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer state dict as (tensors for safetensors, everything else for JSON)."""
    tensors, state = {}, {}
    for index, entry in state_dict["state"].items():
        state[str(index)] = {}
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().contiguous()
            else:
                state[str(index)][name] = value
    return tensors, {"state": state, "param_groups": state_dict["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], saved: dict) -> dict:
    state = {int(index): dict(entry) for index, entry in saved["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state[int(index)][name] = value
    return {"state": state, "param_groups": saved["param_groups"]}


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent}: not a checkpoint (no {path.name})") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
