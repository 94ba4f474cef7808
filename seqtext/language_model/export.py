"""A language model's step as an exported graph (ONNX, TorchScript) and the object that runs one."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seqtext.errors import DataError
from seqtext.export import ExportGraph, checked_ids
from seqtext.tokenizer import Tokenizer


class LanguageModelStep(nn.Module):
    """``(ids, h[, c]) -> (logits, h[, c])`` around a language model: scores after the last id, and the state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, *state: torch.Tensor):
        scores, new_state = self.model(ids, tuple(state))  # (B, T, V)
        return (scores[:, -1], *new_state)


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
        from seqtext.language_model.generate import Sampling, draw_text

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
