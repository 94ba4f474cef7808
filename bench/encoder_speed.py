"""Bidirectional LSTM forward + backward on CPU: packed sequences against seqtext's RecurrentEncoder.

Three ways over the same mixed-length batch, taking turns: ``pack_padded_sequence`` with a bidirectional
``nn.LSTM`` (correct, the usual way), seqtext's encoder (correct: each row reversed within its length for
the backward direction), and a bidirectional ``nn.LSTM`` over the padded batch (fast but wrong: its
backward direction reads the padding first). The run also checks that the first two agree.

    python bench/encoder_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import alternate, median, write_section  # noqa: E402
from seqtext import precision  # noqa: E402
from seqtext.nn import RecurrentEncoder  # noqa: E402

B, E, H = 64, 128, 128


def three_ways(packed_lstm: nn.LSTM, encoder: RecurrentEncoder, x, lengths, mask) -> dict:
    """Outputs (B, T, 2H) of the three ways (and seqtext's in bf16), each as a function of nothing, for timing."""

    def packed():
        sequence = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(packed_lstm(sequence)[0], batch_first=True, total_length=x.shape[1])[0]

    def seqtext_bf16():
        with precision.autocast("bf16", x.device):
            return encoder(x, lengths, mask)

    return {"packed": packed, "seqtext": lambda: encoder(x, lengths, mask), "padded": lambda: packed_lstm(x)[0],
            "seqtext bf16": seqtext_bf16}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    packed_lstm = nn.LSTM(E, H, batch_first=True, bidirectional=True)
    encoder = RecurrentEncoder(E, H, 1, True, "lstm")
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(encoder.forward_layers[0], f"{name}_l0").copy_(getattr(packed_lstm, f"{name}_l0"))
            getattr(encoder.backward_layers[0], f"{name}_l0").copy_(getattr(packed_lstm, f"{name}_l0_reverse"))
    rows = []
    for T in (12, 50, 100, 250):
        lengths = torch.randint(T // 2, T + 1, (B,))
        lengths[0] = T
        mask = torch.arange(T)[None, :] < lengths[:, None]
        x = torch.randn(B, T, E, requires_grad=True)
        ways = three_ways(packed_lstm, encoder, x, lengths, mask)
        difference = (ways["packed"]() - ways["seqtext"]()).abs().max().item()
        seconds = alternate({name: (lambda way=way: way().sum().backward()) for name, way in ways.items()}, args.repeats)
        tokens = int(lengths.sum())
        rate = {name: tokens / median(values) for name, values in seconds.items()}
        rows.append(
            f"| {T} | {rate['packed']:,.0f} | {rate['seqtext']:,.0f} | {rate['padded']:,.0f} | "
            f"**{rate['seqtext'] / rate['packed']:.2f}x** | {rate['seqtext'] / rate['padded']:.2f} | {difference:.1e} | "
            f"{rate['seqtext bf16']:,.0f} | **{rate['seqtext bf16'] / rate['seqtext']:.2f}x** |"
        )
        print(rows[-1], flush=True)
    body = f"""## Bidirectional LSTM on CPU: packed sequences against seqtext's encoder

`python bench/encoder_speed.py --repeats {args.repeats}`: forward + backward of one layer, batch {B}, input {E}, hidden {H} per
direction, lengths drawn between T/2 and T (seed 0); real tokens per second, median of {args.repeats} alternating runs.
seqtext bf16: the same encoder under `torch.autocast` in bf16 (`train.precision: bf16`).

| T | packed | seqtext | padded (wrong) | seqtext / packed | seqtext / padded | max difference from packed | seqtext bf16 | bf16 / fp32 |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
"""
    write_section("encoder_speed", body)
    print(body)


if __name__ == "__main__":
    main()
