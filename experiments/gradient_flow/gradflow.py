"""The vanishing-gradient argument, measured: ||dL/dh_t|| against the distance from the loss.

A vanilla tanh RNN, an LSTM (forget-gate bias 0, and +1) and a GRU of the same width read the same
Tiny Shakespeare windows (characters through one fixed random embedding); the loss is the cross-entropy
of the next character predicted from the last hidden state only, so every gradient reaching h_t has
come back through the recurrence. The cells are seqtext/cells.py's, stepped one at a time so that each
h_t can keep its gradient. Freshly initialised weights (PyTorch's defaults), float64 (the smallest norms
are below float32's range), the mean over several seeds.

    python experiments/gradient_flow/gradflow.py [--length 200] [--hidden 128] [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import write_section  # noqa: E402
from seqtext.cells import GRUCell, LSTMCell  # noqa: E402
from seqtext.tokenizer import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DISTANCES = (0, 1, 5, 10, 25, 50, 100, 150, 199)


class TanhRNNCell(nn.Module):
    """h_t = tanh(W [h_{t-1}, x_t] + b), nn.RNN's cell with nn.RNN's initialisation."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.rnn = nn.RNNCell(input_size, hidden_size, nonlinearity="tanh")

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.rnn(x, h)


def gradient_norms(cell: nn.Module, x: torch.Tensor, targets: torch.Tensor, head: nn.Linear) -> torch.Tensor:
    """||dL/dh_t|| (mean over the batch) for t = 1..T; x: (B, T, E), targets: (B,) -> (T,)."""
    batch, hidden = x.shape[0], head.in_features
    h = x.new_zeros(batch, hidden)
    state = (h, h.clone()) if isinstance(cell, LSTMCell) else h
    hs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()
        hs.append(h)
    F.cross_entropy(head(hs[-1]), targets).backward()
    return torch.stack([h.grad.norm(dim=1).mean() for h in hs])  # (T,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--png", default=str(Path(__file__).with_name("gradflow.png")))
    args = parser.parse_args()
    data = Path(os.environ.get("SEQTEXT_DATA", ROOT.parent / "shared" / "data")) / "tinyshakespeare" / "input.txt"
    tokenizer = Tokenizer.load(ROOT / "vocab" / "shakespeare-char.json")
    ids = tokenizer.encode_corpus(data.read_text(encoding="utf-8")[:200_000])
    embedding_size = 32
    makers = {
        "tanh RNN": lambda: TanhRNNCell(embedding_size, args.hidden),
        "LSTM, forget bias 0": lambda: _forget_bias(LSTMCell(embedding_size, args.hidden), 0.0),
        "LSTM, forget bias +1": lambda: _forget_bias(LSTMCell(embedding_size, args.hidden), 1.0),
        "GRU": lambda: GRUCell(embedding_size, args.hidden),
    }
    norms = {name: torch.zeros(args.length, dtype=torch.float64) for name in makers}
    for seed in range(args.seeds):
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(ids) - args.length - 1, (args.batch,), generator=generator)
        windows = torch.stack([ids[s : s + args.length + 1] for s in starts])  # (B, T + 1)
        torch.manual_seed(seed)
        embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        head = nn.Linear(args.hidden, tokenizer.vocab_size).double()
        x = embedding(windows[:, :-1]).detach().double()  # (B, T, E): the same input for every cell
        for name, make in makers.items():
            torch.manual_seed(seed)
            norms[name] += gradient_norms(make().double(), x, windows[:, -1], head) / args.seeds
    distances = torch.arange(args.length - 1, -1, -1)  # h_T is distance 0 from the loss

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, values in norms.items():
        axes.semilogy(distances.numpy(), values.numpy(), label=name)
    axes.set_xlabel("distance from the loss (steps back from h_T)")
    axes.set_ylabel("mean ||dL/dh_t||")
    axes.set_title(f"hidden {args.hidden}, Tiny Shakespeare windows of {args.length}, mean of {args.seeds} seeds")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.png, dpi=100)
    plt.close(figure)

    shown = [d for d in DISTANCES if d < args.length]
    header = "| cell | " + " | ".join(f"d={d}" for d in shown) + f" | ratio d={args.length - 1} / d=0 |"
    rows = [
        f"| {name} | "
        + " | ".join(f"{values[args.length - 1 - d].item():.2e}" for d in shown)
        + f" | {values[0].item() / values[-1].item():.1e} |"
        for name, values in norms.items()
    ]
    body = f"""## Gradient flow through time: tanh RNN, LSTM and GRU

`python experiments/gradient_flow/gradflow.py --length {args.length} --hidden {args.hidden} --batch {args.batch} --seeds {args.seeds}`: mean ||dL/dh_t|| at distance d
from the loss (the next character predicted from h_T alone), freshly initialised cells of width {args.hidden}, the same
Tiny Shakespeare windows for all, mean over seeds 0..{args.seeds - 1}. Plot: experiments/gradient_flow/gradflow.png.

{header}
|---|{"---:|" * (len(shown) + 1)}
{chr(10).join(rows)}
"""
    write_section("gradflow", body)
    print(body)


def _forget_bias(cell: LSTMCell, value: float) -> LSTMCell:
    with torch.no_grad():
        cell.b_f.fill_(value)
    return cell


if __name__ == "__main__":
    main()
