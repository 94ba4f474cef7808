"""Mixed precision: the forward pass in bf16 under ``torch.autocast``, everything kept in fp32.

Weights, gradients, optimizer state and checkpoints stay fp32; autocast runs the matrix products (the
recurrent layers, the linear layers) in bf16 and the losses in fp32. The parts where bf16's 8-bit mantissa
is not enough ask for fp32 themselves: the masked softmax of attention pooling, log-softmax over a
vocabulary, the adaptive softmax. A bf16 run therefore resumes and loads exactly as an fp32 one does.

``auto`` times one LSTM training step both ways in this process (once; about a second) and picks bf16 only
where it is faster: CPUs with AMX or AVX512-BF16, and bf16-capable GPUs.
"""

from __future__ import annotations

import contextlib
import functools
import time

import torch

from seqtext.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")  # also in recipe.py and cli.py, which must not import torch
AUTO_MARGIN = 1.1  # auto takes bf16 only when its step is at least this much faster: never a loss to fp32


def resolve(name: str, device: torch.device | str, where: str = "precision") -> tuple[str, str]:
    """``name`` as a concrete precision for ``device``: (fp32 or bf16, why)."""
    device = torch.device(device)
    if name not in PRECISIONS:
        raise ConfigError(f"{where} must be fp32, bf16 or auto, not {name!r}", where)
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ConfigError(f"{where} is bf16, but {torch.cuda.get_device_name(device)} has no bf16", where)
    if name != "auto":
        return name, "as asked"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        return "fp32", "this GPU has no bf16"
    speedup = bf16_speedup(str(device))
    chosen = "bf16" if speedup >= AUTO_MARGIN else "fp32"
    return chosen, f"an LSTM step measured {speedup:.2f}x as fast in bf16 on this {device.type}"


@functools.cache
def bf16_speedup(device: str) -> float:
    """fp32 time / bf16 time of one LSTM forward and backward (batch 32, 32 steps, 256 wide) on ``device``."""
    device = torch.device(device)
    # a backward pass, whatever the caller's mode (seqtext.load(..., precision="auto") under torch.no_grad())
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
    ):
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(256, 256, batch_first=True).to(device)
        x = torch.randn(32, 32, 256, device=device)
        return _best_time(lstm, x, "fp32") / _best_time(lstm, x, "bf16")


def _best_time(lstm: torch.nn.LSTM, x: torch.Tensor, precision: str, repeats: int = 3) -> float:
    best = float("inf")
    for attempt in range(repeats + 1):  # the first one warms up
        start = time.perf_counter()
        with autocast(precision, x.device):
            out, _ = lstm(x)
        out.float().sum().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        if attempt:
            best = min(best, time.perf_counter() - start)
    lstm.zero_grad(set_to_none=True)
    return best


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """A context that runs the forward pass in ``precision``, fp32 (changes nothing) or bf16; resolve auto first."""
    device = torch.device(device)
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be fp32 or bf16 here (auto is resolved first), not {precision!r}", "precision")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def fp32(device: torch.device | str) -> contextlib.AbstractContextManager:
    """A context where autocast is off: what runs in it (given float32 inputs) runs in float32."""
    return torch.autocast(torch.device(device).type, enabled=False)


def at_least_fp32(x: torch.Tensor) -> torch.dtype:
    """float32 for bf16 or fp16 ``x``; its own dtype when that is wider (float64 stays float64)."""
    return torch.promote_types(x.dtype, torch.float32)
