"""Cost against size for the classifier: training step time as the sequence length doubles and as the
hidden size doubles, and the achieved GFLOP/s of the recurrent layers against the fp32 matmul rate.

One training step is forward, loss, backward, clipping and AdamW on a batch of random token ids (every
row full length, so no padding) for the SST-2 recipe's model (embedding 128, Bi-LSTM, additive
attention, a 14k-word vocabulary) with one size changed at a time. Expected: time linear in the length
(ratio ~2 per doubling); in the hidden size between linear and quadratic (the recurrent FLOPs are
8 H (E + H) per token per direction, so ~4x per doubling once H >> E = 128). The recurrent FLOPs per
step, 3 x 2 directions x 8 H (E + H) x tokens, over the step's time and over the recurrent layers' own
time, are compared with a 2048 x 2048 fp32 matmul that takes turns with them, round by round.

    python bench/scaling.py [--steps 8] [--batch 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import alternate, median, write_section  # noqa: E402
from seqtext.classifier.model import TextClassifier  # noqa: E402
from seqtext.optim import make_optimizer  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 13_839  # the SST-2 recipe's vocabulary
MATMUL = 2048  # the size of the square fp32 matmul whose rate the recurrent layers are compared with


def measure(config, batch: int, length: int, steps: int, train_config) -> dict[str, float]:
    """One size's figures: the median time of a whole training step, and three rates as fractions of the
    fp32 matmul rate: the step's, the recurrent layers' alone, and a plain ``nn.LSTM``'s.

    Four things take turns, round by round: a training step of the classifier (forward, loss, backward,
    clipping, AdamW); the encoder alone (both directions' forward and backward, with their reversals, on
    embedding-sized inputs, as in that step); one bidirectional ``nn.LSTM`` of the same sizes, forward and
    backward (oneDNN's own kernel with nothing of seqtext's around it); and a 2048 x 2048 matmul. Each
    round's rates divide by the matmul rate of that same round, because this machine's speed drifts by a
    fifth within a run and a rate measured once, before or after, can be off by that much. Medians of
    ``steps`` rounds after 2 of warm-up.
    """
    torch.manual_seed(0)
    model = TextClassifier(config, VOCAB, 2).train()
    optimizer = make_optimizer(model, train_config)
    ids = torch.randint(4, VOCAB, (batch, length))
    lengths, mask = torch.full((batch,), length), torch.ones(batch, length, dtype=torch.bool)
    labels = torch.randint(0, 2, (batch,))

    def step():
        loss = F.cross_entropy(model(ids, lengths, mask).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    encoder = model.encoder
    plain = torch.nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True, bidirectional=True).train()
    x = torch.randn(batch, length, config.embedding_size, requires_grad=True)
    upstream = torch.randn(batch, length, encoder.output_size)
    a, b = torch.randn(MATMUL, MATMUL), torch.randn(MATMUL, MATMUL)
    seconds = alternate(
        {
            "step": step,
            "layers": lambda: encoder(x, lengths, mask).backward(upstream),
            "plain": lambda: plain(x)[0].backward(upstream),
            "matmul": lambda: a @ b,
        },
        steps + 2,
    )
    seconds = {name: times[2:] for name, times in seconds.items()}
    flops, matmul_flops = recurrent_flops(config, batch, length), 2 * MATMUL**3
    figures = {
        name: median([(flops / t) / (matmul_flops / m) for t, m in zip(seconds[name], seconds["matmul"])])
        for name in ("step", "layers", "plain")
    }
    return {
        **figures,
        "seconds": median(seconds["step"]),
        "gflops": flops / median(seconds["step"]) / 1e9,
        "matmul": matmul_flops / median(seconds["matmul"]) / 1e9,
    }


def recurrent_flops(config, batch: int, length: int) -> float:
    directions = 2 if config.bidirectional else 1
    return 3 * directions * 8 * config.hidden_size * (config.embedding_size + config.hidden_size) * batch * length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64, help="rows per batch (the classifier recipes train with 64)")
    args = parser.parse_args()
    recipe = load_recipe(ROOT / "recipes" / "sst2.yaml")
    base = recipe.model
    sections, matmul = [], []
    for name, sizes, make in (
        ("length", (64, 128, 256, 512), lambda n: (base, n)),
        ("hidden size", (64, 128, 256, 512), lambda n: (dataclasses.replace(base, hidden_size=n), 128)),
    ):
        rows, previous = [], None
        for size in sizes:
            config, length = make(size)
            got = measure(config, args.batch, length, args.steps, recipe.train)
            matmul.append(got["matmul"])
            ratio = "" if previous is None else f"{got['seconds'] / previous:.2f}x"
            rows.append(
                f"| {size} | {1000 * got['seconds']:.1f} | {ratio} | {got['gflops']:.1f} | {got['step']:.2f} "
                f"| **{got['layers']:.2f}** | {got['plain']:.2f} |"
            )
            print(name, size, rows[-1], flush=True)
            previous = got["seconds"]
        fixed = "hidden 128" if name == "length" else "length 128"
        sections.append(
            f"By {name} ({fixed}):\n\n| {name} | ms/step | vs. half the size | recurrent GFLOP/s over the step "
            f"| step, of matmul rate | recurrent layers alone, of matmul rate | plain nn.LSTM, of matmul rate |\n"
            f"|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
        )
    body = f"""## Cost against size: classifier training steps

`python bench/scaling.py --steps {args.steps} --batch {args.batch}`: the SST-2 recipe's model (embedding 128, Bi-LSTM, additive
attention) with one size changed at a time, batches of {args.batch} full-length rows of random ids; median step time
(forward, backward, clipping, AdamW) of {args.steps} after 2 of warm-up. Recurrent GFLOP/s counts 3 x 2 directions x 8 H (E + H)
per token. Each fraction divides a rate by the fp32 matmul rate (2048 x 2048) of the same round: the
step, the recurrent layers alone and the matmul take turns round by round (medians over rounds; the matmul
ran at {min(matmul):.0f}-{max(matmul):.0f} GFLOP/s, the medians of the sizes). "Step": the recurrent FLOPs over the whole
step's time (embedding, dropout, attention, loss, clipping and AdamW included). "Recurrent layers alone"
(the rate issue 7's target of 0.6 is about): the encoder's forward and backward on embedding-sized inputs.
"Plain nn.LSTM": one bidirectional `nn.LSTM` of the same sizes, forward and backward, in the same rounds:
oneDNN's kernel with nothing of seqtext's around it.

{chr(10).join(f"{section}{chr(10)}" for section in sections)}
"""
    write_section("scaling", body)
    print(body)


if __name__ == "__main__":
    main()
