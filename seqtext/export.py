"""A trained model for an application: ONNX (for ONNX Runtime) or TorchScript, in fp32 or int8.

    seqtext export RUN --format onnx --out model.onnx [--int8]

A classifier becomes one graph, ``(ids, lengths) -> (probs, attention)``: ids (B, T) int64 padded with 0,
lengths (B,) int64, probs (B, C), and, for a model with attention pooling, its weights (B, T). A language
model becomes its step, ``(ids, h[, c]) -> (logits, h_next[, c_next])``: ids (B, T) read from the state,
the next-token scores after the last of them (B, V) (log-probabilities for an adaptive softmax), and the
state (L, B, H) after them; generation calls it once for the prompt and once a token. Beside the file:
``tokenizer.json``, ``labels.json`` (classifiers) and ``card.json``, everything an application needs.

int8 is dynamic quantization of the recurrent and linear layers: weights stored as int8, activations
quantized as they come. TorchScript takes PyTorch's (``torch.ao.quantization.quantize_dynamic``); ONNX
takes ONNX Runtime's quantizer over the exported fp32 graph (its DynamicQuantizeLSTM and MatMulInteger).

``load_exported`` reads an export back, for applications in Python without seqtext's training code, and
for the parity tests and bench/inference.py. Its objects check their inputs before the runtime sees them:
ONNX Runtime aborts the process on an empty batch and TorchScript corrupts memory on a state of another
batch, where a wrong input should be a ``DataError`` naming it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqtext import kinds
from seqtext.errors import ConfigError, DataError
from seqtext.tokenizer import Tokenizer

FORMATS = ("onnx", "torchscript")
OPSET = 20
INTEGER_TYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def quantize_dynamic(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its LSTM / GRU and linear layers dynamically quantized to int8 (CPU)."""
    from torch.ao.quantization import quantize_dynamic as quantize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return quantize(copy.deepcopy(module).cpu().eval(), {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)


def export(model, out: str | Path, format: str, int8: bool = False) -> list[Path]:
    """Write ``model`` (a ``seqtext.load`` object) to ``out`` in ``format``, with its tokenizer, labels and
    card beside it. Returns the paths written."""
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {format!r}", "format")
    registered = kinds.get(model.kind)
    if registered.export is None:
        which = ", ".join(kind.name.replace("_", " ") + "s" for kind in kinds.every() if kind.export)
        raise ConfigError(f"a {model.kind.replace('_', ' ')} has no export: {which} do", "format")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a directory; give the file to write, such as {out / ('model.' + _suffix(format))}", "out")
    if (out.parent / "config.json").exists():  # its labels.json and tokenizer.json would be replaced
        raise ConfigError(f"{out.parent}: is a checkpoint; write the export to a folder of its own", "out")
    if getattr(model.config, "cell", None) == "reference_lstm":
        raise ConfigError("model.cell is reference_lstm (a Python loop over time, for study): it has no export", "format")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: cannot write ({err.strerror or err})", "out") from None
    module = copy.deepcopy(model.module).cpu().eval()
    graph = registered.load("export")(module)
    if format == "torchscript":
        traced_module = registered.load("export")(quantize_dynamic(module)).module if int8 else graph.module
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            traced = torch.jit.trace(traced_module, graph.examples, check_trace=False)
            _replace(out, lambda path: torch.jit.save(traced, str(path)))
    else:
        _replace(out, lambda path: _onnx(graph, path, int8))
    written = [out]
    tokenizer = model.checkpoint.tokenizer
    beside = {"tokenizer.json": None, "card.json": {**model.card, "export": _description(model, format, int8, graph)}}
    if getattr(model, "labels", None) is not None:
        beside["labels.json"] = list(model.labels)
    for name, value in beside.items():
        path = out.parent / name
        if name == "tokenizer.json":
            _replace(path, lambda target: tokenizer.save(target))
        else:
            _replace(path, lambda target, value=value: target.write_text(json.dumps(value, indent=2) + "\n"))
        written.append(path)
    return written


@dataclass
class ExportGraph:
    """What an export writes for one kind (``kinds.Kind.export``): the module traced, its input and output
    names, example inputs, each input's and output's dynamic axes, and more for card.json's ``export``."""

    module: nn.Module
    inputs: list[str]
    outputs: list[str]
    examples: tuple[torch.Tensor, ...]
    axes: dict[str, dict[int, str]]
    described: dict = field(default_factory=dict)


def _onnx(graph: ExportGraph, path: Path, int8: bool) -> None:
    """The TorchScript-based exporter (``dynamo=False``): torch.export specialises ``nn.LSTM``'s time axis to
    the example's length (torch 2.13 decomposes the LSTM step by step), while this one writes ONNX's own
    LSTM operator with the time axis free, which is also the operator ONNX Runtime's int8 quantizer knows."""
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice
            torch.onnx.export(
                graph.module, graph.examples, str(fp32), dynamo=False, input_names=graph.inputs,
                output_names=graph.outputs, dynamic_axes=graph.axes, opset_version=OPSET,
            )  # fmt: skip
        if not int8:
            os.replace(fp32, path)
            return
        from onnxruntime.quantization import QuantType
        from onnxruntime.quantization import quantize_dynamic as quantize

        logging.disable(logging.WARNING)  # its advice to pre-process, printed on every call
        try:
            quantize(str(fp32), str(path), weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)


def _replace(path: Path, write) -> None:
    """Write through a temporary file renamed into place: a failed export leaves an older file whole."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _suffix(format: str) -> str:
    return "onnx" if format == "onnx" else "pt"


def _description(model, format: str, int8: bool, graph: ExportGraph) -> dict:
    return {"format": format, "int8": int8, "kind": model.kind, "inputs": graph.inputs, "outputs": graph.outputs,
            "vocab_size": model.module.embedding.num_embeddings, **graph.described}  # fmt: skip


def load_exported(path: str | Path, threads: int | None = None):
    """An export read back: an ``ExportedClassifier`` or an ``ExportedLanguageModel``, by its card."""
    path = Path(path)
    card_path = path.parent / "card.json"
    if not path.is_file() or not card_path.is_file():
        raise DataError(f"{path}: no export here (a model file with card.json beside it, as seqtext export writes)")
    described = json.loads(card_path.read_text())["export"]
    runner = _OnnxRunner(path, threads) if described["format"] == "onnx" else _TorchScriptRunner(path)
    tokenizer = Tokenizer.load(path.parent / "tokenizer.json")
    return kinds.get(described["kind"]).load("exported").read(runner, tokenizer, path.parent, described)


class _OnnxRunner:
    def __init__(self, path: Path, threads: int | None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        names = [i.name for i in self.session.get_inputs()]
        found = self.session.run(None, {name: value.numpy() for name, value in zip(names, inputs)})
        return [torch.from_numpy(np.ascontiguousarray(value)) for value in found]


class _TorchScriptRunner:
    def __init__(self, path: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            self.module = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        return list(self.module(*inputs))


def checked_ids(ids, vocab_size: int) -> torch.Tensor:
    """``ids`` as the int64 (B, T) tensor a graph reads; an id outside the vocabulary is an error, not a read
    outside the embedding (ONNX's Gather takes -1 as the last row)."""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype not in INTEGER_TYPES:
        raise DataError(f"ids must be a (B, T) tensor of integers, not {_described(ids)}", "ids")
    outside = (ids < 0) | (ids >= vocab_size)  # (B, T)
    if outside.any():
        raise DataError(f"ids must be in 0..{vocab_size - 1} (the vocabulary), not {int(ids[outside][0])}", "ids")
    return ids.to("cpu", torch.int64).contiguous()


def checked_lengths(lengths, ids: torch.Tensor) -> torch.Tensor:
    """``lengths`` as the int64 (B,) tensor a graph reads: each row's tokens, 1 to T (0 would give a
    prediction from attention that sums to 0)."""
    batch, width = ids.shape
    if not isinstance(lengths, torch.Tensor) or tuple(lengths.shape) != (batch,) or lengths.dtype not in INTEGER_TYPES:
        message = f"lengths must be a (B,) tensor of integers, one a row of ids ({batch}), not {_described(lengths)}"
        raise DataError(message, "lengths")
    outside = (lengths < 1) | (lengths > width)  # (B,)
    if outside.any():
        raise DataError(f"lengths must be in 1..{width} (the width of ids), not {int(lengths[outside][0])}", "lengths")
    return lengths.to("cpu", torch.int64).contiguous()


def _described(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"
