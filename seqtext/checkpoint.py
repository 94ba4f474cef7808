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

``load`` reads a folder that may have come from anywhere as data, never as code, and checks it before it
builds anything: only regular files inside the folder, each within a size limit; config.json's fields of
their declared types, with sizes that fit the tensors model.safetensors' header describes (the model is
first built on the meta device, which allocates nothing, and compared with them); token ids within the
embedding, one label per class. A crafted or broken folder fails as one CheckpointError line.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from seqtext import kinds
from seqtext.card import card_markdown, card_problem, model_card
from seqtext.errors import CheckpointError, ConfigError, DataError
from seqtext.labels import LabelMap
from seqtext.recipe import load_recipe
from seqtext.tokenizer import Tokenizer

FORMAT_VERSION = 2  # 2: a classifier's attention under pooling., a language model's head under output. (Kind.renamed)
JSON_LIMIT = 2**20  # config.json, card.json, labels.json: a few KB in practice
# tokenizer.json (and trainer.json): a 30,000-word vocabulary or a BPE vocabulary with its merges is a few MB
TOKENIZER_LIMIT = 64 * 2**20
# model.safetensors' JSON header: about 100 bytes a tensor, so room for 2,500 where a seqtext model has tens;
# it bounds the layers a config may claim, and so the cost of building the model on the meta device
HEADER_LIMIT = 256 * 2**10
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


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
        if os.path.lexists(self.path / "card.json"):
            card = _read_json(self.path, "card.json")
            problem = card_problem(card)
            if problem is not None:
                raise CheckpointError(f"{self.path / 'card.json'}: {problem}")
            return card
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
    ``repair=False`` reads without finishing a cut-short save (``resolve``).

    Every check comes before the real model is built: what it allocates is what model.safetensors' header
    describes, whose tensors lie within the file (see the module's docstring)."""
    directory = resolve(path, repair)
    where = directory / "config.json"
    config = _read_config(directory, kind)
    registered = kinds.get(config["kind"])
    model_config, model_args = _model_config(registered, config, where), config["model_args"]
    _check_recipe(config, where)
    weights, shapes = _weights_header(directory)
    renamed = registered.renamed if config["format_version"] < 2 else ()
    shapes = {_renamed(name, renamed): shape for name, shape in shapes.items()}
    _check_sizes(model_config, model_args, shapes, where)
    with torch.device("meta"):  # sizes only: nothing is allocated
        _check_shapes(_build(registered, model_config, model_args, where), shapes, directory / "model.safetensors")
    label_map, tokenizer = _read_vocabularies(directory, registered, model_args)
    model = _build(registered, model_config, model_args, where)
    try:
        if renamed:  # an older format: its names read as today's (shapes checked above, so strict=False misses only ties)
            model.load_state_dict({_renamed(k, renamed): v for k, v in load_file(str(weights)).items()}, strict=False)
        else:
            load_model(model, str(weights))
    except (SafetensorError, RuntimeError, OSError) as err:
        raise CheckpointError(
            f"{directory}/model.safetensors: unreadable or not matching config.json ({str(err).splitlines()[0]})"
        ) from None
    return Checkpoint(directory, config, model.to(device).eval(), tokenizer, label_map)


def _renamed(name: str, renamed: tuple[tuple[str, str], ...]) -> str:
    """A weight's name in an older checkpoint format, as the model names it now."""
    for old, new in renamed:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def _read_config(directory: Path, kind: str | None) -> dict:
    """config.json, of a known kind (``kind`` when given), with the sections ``load`` reads as mappings."""
    where = directory / "config.json"
    config = _read_json(directory, "config.json")
    if not isinstance(config, dict) or "kind" not in config:
        raise CheckpointError(f"{where}: not a seqtext checkpoint config")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: checkpoint format {str(version)[:20]} is newer than this seqtext reads ({FORMAT_VERSION})"
        )
    if not isinstance(config["kind"], str):
        raise CheckpointError(f"{where}: kind must be a string, not {_brief(config['kind'])}")
    if kind is not None and config["kind"] != kind:
        raise CheckpointError(f"{directory}: a {config['kind']} checkpoint, not a {kind}")
    if config["kind"] not in kinds.names():
        raise CheckpointError(f"{directory}: unknown model kind {_brief(config['kind'])}")
    for section in ("model", "model_args", "recipe"):
        if not isinstance(config.get(section), dict):
            raise CheckpointError(f"{where}: {section} must be a mapping, not {type(config.get(section)).__name__}")
    return config


def _model_config(registered: kinds.Kind, config: dict, where: Path):
    """The kind's config dataclass from config.json's ``model``, each field of its declared type (as a
    recipe's are), after checking that ``model_args`` are sizes (integers) that the kind's module takes."""
    parameters = inspect.signature(registered.module).parameters
    for name, value in config["model_args"].items():
        if name not in parameters or name == "config":
            raise CheckpointError(f"{where}: model_args.{name} is not an argument of a {registered.name}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"{where}: model_args.{name} must be an integer of at least 0, not {_brief(value)}")
    try:
        return load_recipe(None, base={"kind": registered.name, "model": config["model"]}).model
    except ConfigError as err:
        raise CheckpointError(f"{where}: {str(err).removeprefix('recipe: ')}") from None


def _check_recipe(config: dict, where: Path) -> None:
    """The recipe, as the model objects read it: a valid recipe of this kind, whose data section says
    ``max_length`` (a classifier truncates its inputs to it; a bad one would fail every prediction)."""
    data = config["recipe"].get("data")
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: recipe.data must be a mapping, not {_brief(data)}")
    if "max_length" not in data:
        raise CheckpointError(f"{where}: recipe.data has no max_length")
    try:
        recipe = load_recipe(None, base=config["recipe"])
    except ConfigError as err:
        raise CheckpointError(f"{where}: {err}") from None
    if recipe.kind != config["kind"]:
        raise CheckpointError(f"{where}: recipe.kind is {recipe.kind}, not {config['kind']}")


def _weights_header(directory: Path) -> tuple[Path, dict[str, tuple[int, ...]]]:
    """model.safetensors (resolved) and the shape of each tensor, from its header alone. Each tensor's
    bytes must lie within the file, so no shape claims more memory than the file holds."""
    where = directory / "model.safetensors"
    f = _open(directory, "model.safetensors")
    if f is None:
        raise CheckpointError(f"{directory}: no model.safetensors")

    def refuse(reason: str):
        return CheckpointError(f"{where}: unreadable or not matching config.json ({reason})")

    with f:
        weights = Path(os.path.realpath(where))
        size = os.fstat(f.fileno()).st_size
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or length > min(HEADER_LIMIT, size - 8):
            raise refuse(f"a header of {length:,} bytes in a file of {size:,}")
        try:
            header = json.loads(f.read(length))
        except (ValueError, RecursionError) as err:
            raise refuse(f"header: {err}") from None
    if not isinstance(header, dict):
        raise refuse("the header is not a mapping")
    header.pop("__metadata__", None)
    shapes = {name: _tensor_shape(entry, size - 8 - length) for name, entry in header.items()}
    for name, shape in shapes.items():
        if shape is None:
            raise refuse(f"{_brief(name)}: no dtype, shape and offsets within the file")
    return weights, shapes


def _tensor_shape(entry, data_bytes: int) -> tuple[int, ...] | None:
    """A header entry's shape, or None unless its dtype is known and its offsets span exactly its bytes
    within the ``data_bytes`` after the header."""
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPE_BYTES:
        return None
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    numbers = (shape if isinstance(shape, list) else [None]) + (offsets if isinstance(offsets, list) else [None])
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers) or len(offsets) != 2:
        return None
    begin, end = offsets
    if not begin <= end <= data_bytes or end - begin != DTYPE_BYTES[entry["dtype"]] * math.prod(shape):
        return None
    return tuple(shape)


def _check_sizes(model_config, model_args: dict, shapes: dict[str, tuple[int, ...]], where: Path) -> None:
    """Refuse sizes that no tensor in the file could hold before building anything from them: each is
    some weight's dimension, and each recurrent layer has two weights at least (input and hidden)."""
    largest = max((dim for shape in shapes.values() if math.prod(shape) for dim in shape), default=0)
    sizes = {
        **{f"model.{k}": v for k, v in model_config.sizes().items()},
        **{f"model_args.{k}": v for k, v in model_args.items()},
    }
    for name, value in sizes.items():
        if value > largest:
            raise CheckpointError(f"{where}: {name} {value} is larger than any dimension of the weights ({largest})")
    layers = getattr(model_config, "num_layers", 1)
    if 2 * layers > len(shapes):
        raise CheckpointError(
            f"{where}: model.num_layers {layers} needs {2 * layers} tensors at least; the weights have {len(shapes)}"
        )


def _build(registered: kinds.Kind, model_config, model_args: dict, where: Path) -> nn.Module:
    try:
        return registered.module(model_config, **model_args)
    except (TypeError, KeyError, ValueError, RuntimeError, OverflowError, ConfigError) as err:
        raise CheckpointError(f"{where}: does not describe a {registered.name} ({str(err).splitlines()[0]})") from None


def _check_shapes(module: nn.Module, shapes: dict[str, tuple[int, ...]], where: Path) -> None:
    """The module's tensors are the file's, name for name and shape for shape. A weight tied to another
    is stored once (``save_model``), under any one of its names."""
    expected = module.state_dict(keep_vars=True)  # keep_vars: tied names share one Parameter

    def refuse(reason: str):
        return CheckpointError(f"{where}: not matching config.json ({reason})")

    for name in sorted(shapes):
        if name not in expected:
            raise refuse(f"{_brief(name)} is in the file, not in the model")
        if shapes[name] != tuple(expected[name].shape):
            raise refuse(f"{name} is {shapes[name]} in the file, {tuple(expected[name].shape)} by the config")
    stored = {id(expected[name]) for name in shapes}
    missing = [name for name, tensor in expected.items() if id(tensor) not in stored]
    if missing:
        raise refuse(f"no {missing[0]} in the file")


def _read_vocabularies(directory: Path, registered: kinds.Kind, model_args: dict) -> tuple[LabelMap | None, Tokenizer | None]:
    """labels.json and tokenizer.json, checked against the sizes the model is built with: a label for each
    class (at least two), and token ids within the embedding's rows."""
    labels_text = _read_text(directory, "labels.json", JSON_LIMIT)
    tokenizer_text = _read_text(directory, "tokenizer.json", TOKENIZER_LIMIT) if registered.text else None
    try:
        label_map = LabelMap.load(directory / "labels.json", labels_text) if labels_text is not None else None
        tokenizer = Tokenizer.load(directory / "tokenizer.json", tokenizer_text) if registered.text else None
    except DataError as err:
        raise CheckpointError(str(err)) from None
    classes, rows = model_args.get("num_classes"), model_args.get("vocab_size")
    if classes is not None:
        _check_labels(label_map, classes, directory, registered.name)
    if tokenizer is not None and rows is not None:
        top = max(tokenizer.backend.get_vocab(with_added_tokens=True).values())  # ids may skip: the count is no bound
        if top >= rows:
            raise CheckpointError(f"{directory / 'tokenizer.json'}: token id {top} is past the model's {rows} embedding rows")
    return label_map, tokenizer


def _check_labels(label_map: LabelMap | None, classes: int, directory: Path, kind: str) -> None:
    where = directory / "labels.json"
    if label_map is None:
        raise CheckpointError(f"{directory}: no labels.json (its model_args.num_classes needs one)")
    count = len(label_map)
    if count < 2:
        raise CheckpointError(f"{where}: {count} label{'' if count == 1 else 's'}, fewer than the 2 a {kind} needs")
    if count != classes:
        raise CheckpointError(f"{where}: {count} labels for the model's {classes} classes (model_args.num_classes)")


def load_trainer_state(directory: str | Path, optimizer: torch.optim.Optimizer | None) -> dict:
    """Restore the optimizer and RNG states saved with a checkpoint; returns the trainer counters, with the
    task's own saved tensors under ``"tensors"``."""
    directory = Path(directory)
    trainer = _read_json(directory, "trainer.json", TOKENIZER_LIMIT)
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


def _regular_file(directory: Path, name: str) -> Path | None:
    """``directory/name`` with links resolved, or None when there is none. Anything but a regular file
    inside the checkpoint is refused before it is opened: a link out of the folder (to /dev/zero, or to
    another's files), a FIFO that would block forever, a device that never ends."""
    path = directory / name
    if not os.path.lexists(path):
        return None
    real, inside = os.path.realpath(path), os.path.realpath(directory)
    if os.path.commonpath([real, inside]) != inside:
        raise CheckpointError(f"{path}: a link to {real}, outside the checkpoint")
    try:
        mode = os.stat(real).st_mode
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file")
    return Path(real)


def _open(directory: Path, name: str) -> BinaryIO | None:
    """``directory/name`` open for reading (None when there is none), once ``_regular_file`` allows it.
    O_NONBLOCK, O_NOFOLLOW and fstat: a FIFO or a link swapped in since the check still cannot block."""
    real = _regular_file(directory, name)
    if real is None:
        return None
    try:
        f = os.fdopen(os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb")
    except OSError as err:
        raise CheckpointError(f"{directory / name}: unreadable ({err.strerror})") from None
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise CheckpointError(f"{directory / name}: not a regular file")
    return f


def _read_text(directory: Path, name: str, limit: int) -> str | None:
    """The text of ``directory/name`` (None when there is none): a regular file inside the checkpoint of at
    most ``limit`` bytes, in UTF-8."""
    f = _open(directory, name)
    if f is None:
        return None
    with f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if max(size, len(data)) > limit:
        raise CheckpointError(f"{directory / name}: larger than {limit // 2**20} MiB ({max(size, len(data)):,} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{directory / name}: unreadable ({err})") from None


def _read_json(directory: Path, name: str, limit: int = JSON_LIMIT):
    text = _read_text(directory, name, limit)
    if text is None:
        raise CheckpointError(f"{directory}: not a checkpoint (no {name})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{directory / name}: unreadable ({err})") from None


def _brief(value) -> str:
    """``repr(value)``, cut short: a crafted value must not make a message of a megabyte."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
