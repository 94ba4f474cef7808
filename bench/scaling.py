"""Cost against size for the classifier: training step time as the sequence length doubles and as the
hidden size doubles, and the achieved GFLOP/s of the recurrent layers against the fp32 matmul rate.

One training step is forward, loss, backward, clipping and AdamW on a batch of random token ids (every
row full length, so no padding) for the SST-2 recipe's model (embedding 128, Bi-LSTM, additive
attention, a 14k-word vocabulary) with one size changed at a time. Expected: time linear in the length
(ratio ~2 per doubling); in the hidden size between linear and quadratic (the recurrent FLOPs are
8 H (E + H) per token per direction, so ~4x per doubling once H >> E = 128). The recurrent FLOPs per
step, 3 x 2 directions x 8 H (E + H) x tokens, over the step time, are compared with a 2048 x 2048 fp32
matmul timed in the same run; so are the same FLOPs over the time of the recurrent layers alone.

    python bench/scaling.py [--steps 8] [--batch 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import alternate, median, write_section  # noqa: E402
from bench.lm_speed import matmul_gflops  # noqa: E402
from seqtext.models.classifier import TextClassifier  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.train import make_optimizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 13_839  # the SST-2 recipe's vocabulary


def step_seconds(config, batch: int, length: int, steps: int, train_config) -> float:
    torch.manual_seed(0)
    model = TextClassifier(config, VOCAB, 2)
    optimizer = make_optimizer(model, train_config)
    ids = torch.randint(4, VOCAB, (batch, length))
    lengths, mask = torch.full((batch,), length), torch.ones(batch, length, dtype=torch.bool)
    labels = torch.randint(0, 2, (batch,))
    model.train()
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        loss = F.cross_entropy(model(ids, lengths, mask).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
    return median(times[2:])


def layer_seconds(config, batch: int, length: int, steps: int) -> tuple[float, float]:
    """The recurrent layers alone: the encoder's forward and backward (both directions, with their
    reversals) on embedding-sized inputs, as in a training step, and the same for one bidirectional
    ``nn.LSTM`` of the same sizes (oneDNN's own kernel, nothing of seqtext's around it), taking turns;
    medians of ``steps`` after 2 of warm-up."""
    torch.manual_seed(0)
    encoder = TextClassifier(config, VOCAB, 2).encoder.train()
    plain = torch.nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True, bidirectional=True).train()
    x = torch.randn(batch, length, config.embedding_size, requires_grad=True)
    lengths, mask = torch.full((batch,), length), torch.ones(batch, length, dtype=torch.bool)
    upstream = torch.randn(batch, length, encoder.output_size)
    seconds = alternate(
        {"encoder": lambda: encoder(x, lengths, mask).backward(upstream), "plain": lambda: plain(x)[0].backward(upstream)},
        steps + 2,
    )
    return median(seconds["encoder"][2:]), median(seconds["plain"][2:])


def recurrent_flops(config, batch: int, length: int) -> float:
    directions = 2 if config.bidirectional else 1
    return 3 * directions * 8 * config.hidden_size * (config.embedding_size + config.hidden_size) * batch * length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    recipe = load_recipe(ROOT / "recipes" / "sst2.yaml")
    base = recipe.model
    peak = matmul_gflops(5)
    sections = []
    for name, sizes, make in (
        ("length", (64, 128, 256, 512), lambda n: (base, n)),
        ("hidden size", (64, 128, 256, 512), lambda n: (dataclasses.replace(base, hidden_size=n), 128)),
    ):
        rows, previous = [], None
        for size in sizes:
            config, length = make(size)
            seconds = step_seconds(config, args.batch, length, args.steps, recipe.train)
            gflops = recurrent_flops(config, args.batch, length) / seconds / 1e9
            layers, plain = (
                recurrent_flops(config, args.batch, length) / t / 1e9
                for t in layer_seconds(config, args.batch, length, args.steps)
            )
            ratio = "" if previous is None else f"{seconds / previous:.2f}x"
            rows.append(
                f"| {size} | {1000 * seconds:.1f} | {ratio} | {gflops:.1f} | {gflops / peak:.2f} | {layers:.1f} | **{layers / peak:.2f}** | {plain / peak:.2f} |"
            )
            print(name, size, f"{1000 * seconds:.1f} ms", ratio, f"{gflops:.1f} GFLOP/s, layers alone {layers:.1f}", flush=True)
            previous = seconds
        fixed = "hidden 128" if name == "length" else "length 128"
        sections.append(
            f"By {name} ({fixed}):\n\n| {name} | ms/step | vs. half the size | recurrent GFLOP/s over the step "
            f"| of matmul rate | in the recurrent layers | of matmul rate | plain nn.LSTM, of matmul rate |\n"
            f"|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
        )
    peak_after = matmul_gflops(5)
    body = f"""## Cost against size: classifier training steps

`python bench/scaling.py --steps {args.steps} --batch {args.batch}`: the SST-2 recipe's model (embedding 128, Bi-LSTM, additive
attention) with one size changed at a time, batches of {args.batch} full-length rows of random ids; median step time
(forward, backward, clipping, AdamW) of {args.steps} after 2 of warm-up. Recurrent GFLOP/s counts 3 x 2 directions x 8 H (E + H)
per token; the fp32 matmul rate (2048 x 2048) in the same run: {peak:.1f} GFLOP/s before, {peak_after:.1f} after (the fraction uses
the first). "Over the step" divides the recurrent FLOPs by the whole step's time (embedding, dropout,
attention, loss, clipping and AdamW included); "in the recurrent layers" by the time of the encoder
alone, its forward and backward on embedding-sized inputs (the LSTM layers' own rate, which issue 7's
target of 0.6 is about). "Plain nn.LSTM": one bidirectional `nn.LSTM` of the same sizes, forward and
backward, timed in turn with the encoder: oneDNN's kernel with nothing of seqtext's around it.

{chr(10).join(f"{section}{chr(10)}" for section in sections)}
"""
    write_section("scaling", body)
    print(body)


if __name__ == "__main__":
    main()
