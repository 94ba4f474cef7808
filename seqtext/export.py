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


class ClassifierGraph(nn.Module):
    """``(ids, lengths) -> (probs, attention)`` around a ``TextClassifier``: what an export computes."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]  # (B, T)
        out = self.classifier(ids, lengths, mask)
        probs = torch.softmax(out.logits.float(), dim=-1)  # (B, C)
        if out.attention is None:
            return (probs,)
        attention = out.attention.mean(1) if out.attention.ndim == 3 else out.attention  # self-attention's heads averaged
        return probs, attention


class LanguageModelStep(nn.Module):
    """``(ids, h[, c]) -> (logits, h[, c])`` around a language model: scores after the last id, and the state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, *state: torch.Tensor):
        scores, new_state = self.model(ids, tuple(state))  # (B, T, V)
        return (scores[:, -1], *new_state)


def export(model, out: str | Path, format: str, int8: bool = False) -> list[Path]:
    """Write ``model`` (a ``seqtext.load`` object) to ``out`` in ``format``, with its tokenizer, labels and
    card beside it. Returns the paths written."""
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {format!r}", "format")
    registered = kinds.get(model.kind)
    if registered.export is None:
        which = ", ".join(kind.name.replace("_", " ") + "s" for kind in kinds.KINDS.values() if kind.export)
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


def classifier_graph(module: nn.Module) -> ExportGraph:
    """``(ids, lengths) -> (probs[, attention])``: the batch and the time axis of the ids are free."""
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [11, 12, 13, 14, 0, 0, 0], [14, 15, 0, 0, 0, 0, 0]])  # (3, 7), padded
    lengths = torch.tensor([7, 4, 2])
    outputs = ["probs", "attention"] if module.pooling.explains else ["probs"]
    axes = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "probs": {0: "batch"}, "attention": {0: "batch", 1: "time"}}
    return ExportGraph(ClassifierGraph(module), ["ids", "lengths"], outputs, (ids, lengths), axes)


def language_model_graph(module: nn.Module) -> ExportGraph:
    """``(ids, h[, c]) -> (logits, h_next[, c_next])``; card.json says the state's shape, for a first step from zeros."""
    config = module.config
    state_names = ["h", "c"] if config.cell == "lstm" else ["h"]
    state = tuple(torch.zeros(config.num_layers, 3, config.hidden_size) for _ in state_names)  # (L, B, H)
    ids = torch.tensor([[4, 5, 6, 7], [7, 8, 9, 10], [11, 12, 13, 14]])  # (3, 4)
    axes = {"ids": {0: "batch", 1: "time"}, "logits": {0: "batch"}, **{name: {1: "batch"} for name in state_names}}
    outputs = ["logits", *(f"{name}_next" for name in state_names)]  # ONNX names each value once
    axes |= {f"{name}_next": {1: "batch"} for name in state_names}
    described = {"state": {"num_layers": config.num_layers, "hidden_size": config.hidden_size, "cell": config.cell}}
    return ExportGraph(LanguageModelStep(module), ["ids", *state_names], outputs, (ids, *state), axes, described)


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


class ExportedClassifier:
    """Predictions from an exported classifier, as ``seqtext.load(...).predict`` gives them."""

    kind = "classifier"

    def __init__(self, runner, tokenizer: Tokenizer, labels: list[str], described: dict):
        self.runner, self.tokenizer, self.labels, self.described = runner, tokenizer, labels, described

    @classmethod
    def read(cls, runner, tokenizer: Tokenizer, folder: Path, described: dict) -> ExportedClassifier:
        """The export in ``folder``, whose labels.json names the classes."""
        return cls(runner, tokenizer, json.loads((folder / "labels.json").read_text()), described)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids (B, T), lengths (B,) -> probs (B, C), attention (B, T) or None; an empty batch gives empty ones."""
        ids = checked_ids(ids, self.described.get("vocab_size", self.tokenizer.vocab_size))
        lengths = checked_lengths(lengths, ids)
        if len(ids) == 0:  # ONNX Runtime aborts the process on an empty batch
            attention = torch.zeros(ids.shape) if "attention" in self.described["outputs"] else None  # (0, T)
            return torch.zeros(0, len(self.labels)), attention  # (0, C)
        found = self.runner(ids, lengths)
        return found[0], (found[1] if len(found) > 1 else None)

    def predict(self, texts: list[str], max_length: int | None = None, batch_size: int = 128):
        from seqtext.predict import predict_with

        return predict_with(self.forward, self.tokenizer, tuple(self.labels), list(texts), max_length, batch_size)


class ExportedLanguageModel:
    """Generation from an exported language model's step, drawn as ``seqtext.load(...).generate`` draws."""

    kind = "language_model"

    def __init__(self, runner, tokenizer: Tokenizer, described: dict):
        self.runner, self.tokenizer, self.described = runner, tokenizer, described

    @classmethod
    def read(cls, runner, tokenizer: Tokenizer, folder: Path, described: dict) -> ExportedLanguageModel:
        return cls(runner, tokenizer, described)

    def step(self, ids: torch.Tensor, state):
        """ids (S, T), state or None (zeros) -> logits (S, V), state: each (L, S, H)."""
        ids = checked_ids(ids, self.described.get("vocab_size", self.tokenizer.vocab_size))
        if 0 in ids.shape:  # ONNX Runtime aborts the process on an empty batch
            raise DataError(f"ids must hold at least one row and one token a row, not shape {tuple(ids.shape)}", "ids")
        state = self._zeros(len(ids)) if state is None else self._checked_state(state, len(ids))
        logits, *new_state = self.runner(ids, *state)
        return logits.clone(), tuple(new_state)

    def generate(self, prompt: str, length: int = 500, temperature: float = 1.0, top_k=None, top_p=None, seed=None) -> str:
        from seqtext.generate import Sampling, draw_text

        return draw_text(self.step, self.tokenizer, prompt, length, Sampling(temperature, top_k, top_p), seed)

    def _zeros(self, batch: int) -> tuple[torch.Tensor, ...]:
        shape = self.described["state"]
        count = 2 if shape["cell"] == "lstm" else 1
        return tuple(torch.zeros(shape["num_layers"], batch, shape["hidden_size"]) for _ in range(count))

    def _checked_state(self, state, batch: int) -> tuple[torch.Tensor, ...]:
        """``state`` as the runtime takes it, if it is the zeros' count and shape (L, S, H) in float32: TorchScript
        writes past its memory on a state of another batch."""
        zeros = self._zeros(batch)
        shape, count = tuple(zeros[0].shape), len(zeros)

        def fits(s) -> bool:
            return isinstance(s, torch.Tensor) and s.dtype == torch.float32 and tuple(s.shape) == shape

        if not isinstance(state, (tuple, list)) or len(state) != count or not all(map(fits, state)):
            tensors = f"{count} tensors" if count > 1 else "1 tensor"
            raise DataError(f"state must be {tensors} of shape {shape} (layers, batch, hidden) in float32", "state")
        return tuple(s.detach().cpu().contiguous() for s in state)


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
