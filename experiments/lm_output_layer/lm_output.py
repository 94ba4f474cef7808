"""The output layer of a word language model over 25,000 words, chosen by validation perplexity per CPU-minute.

Three output layers under recipes/reviews-lm.yaml's model (embedding 128, one LSTM of 256), each trained
for the same minutes on the same corpus (IMDB's train reviews as documents, the last 2% validating),
seed 0, one after another in one run:

- full: a linear layer over the vocabulary and a full softmax (the textbook LM);
- tied: the embedding shared with the output layer through a 256 -> 128 projection (Press & Wolf 2017;
  Inan et al. 2017), half the output layer's multiply-adds;
- adaptive: ``nn.AdaptiveLogSoftmaxWithLoss`` (Grave et al. 2017), the 2,000 most frequent words in the
  head, two cheaper clusters for the rest.

Each run's schedule is fitted to the minutes (``train.max_minutes``), so each ends with its learning rate
decayed: the comparison is what each reaches in that time, not a snapshot mid-schedule.

    python experiments/lm_output_layer/lm_output.py [--minutes 3]
    python experiments/lm_output_layer/lm_output.py --throughput     # training tokens/s only, on random ids (a minute)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.language_model.model import LanguageModelConfig, RecurrentLanguageModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "full": {"output": "full", "tie_weights": False},
    "tied": {"output": "full", "tie_weights": True},
    "adaptive": {"output": "adaptive", "tie_weights": False},
}


def measure(name: str, options: dict, minutes: float, out: Path) -> dict:
    """recipes/reviews-lm.yaml with these model options for ``minutes`` on IMDB's train reviews (the last 2%
    validating): validation perplexity and loss at the end, steps taken, training tokens/s."""
    model = seqtext.train(
        ROOT / "recipes" / "reviews-lm.yaml",
        out / name,
        data__corpus_splits="train",
        data__train_fraction=0.98,
        model=options,
        train={"max_minutes": minutes, "eval_every": 10**9, "log_every": 20},
    )
    rows = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    steps = train_rows[-1]["step"]
    tokens_per_s = sum(r["tokens_per_s"] for r in train_rows[1:]) / max(1, len(train_rows) - 1)  # the first holds warm-up
    return {
        "perplexity": model.validation["perplexity"],
        "loss": model.validation["loss"],
        "steps": steps,
        "tokens_per_s": tokens_per_s,
    }


def measure_all(variants: dict[str, dict], minutes: float) -> dict[str, dict]:
    """``measure`` for each variant's model options, one after another, the runs in a folder deleted after."""
    with tempfile.TemporaryDirectory() as folder:
        results = {
            name: measure(f"variant-{i}", options, minutes, Path(folder)) for i, (name, options) in enumerate(variants.items())
        }
    print(json.dumps(results, indent=2))
    return results


def table(results: dict[str, dict], heading: str, baseline: str) -> str:
    """The results as a markdown table, speeds against ``baseline``'s, and the lowest perplexity named."""
    base = results[baseline]
    rows = [
        f"| {name} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['steps']:,} | "
        f"{r['loss']:.3f} | {r['perplexity']:.1f} | {r['perplexity'] - base['perplexity']:+.1f} |"
        for name, r in results.items()
    ]
    best = min(results, key=lambda name: results[name]["perplexity"])
    return (
        f"| {heading} | train tokens/s | vs {baseline} | steps | validation loss (nats/token) | perplexity | vs {baseline} |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + f"\n\nLowest perplexity in the same minutes: **{best}**."
    )


def throughput(vocab: int = 30000, batch: int = 32, bptt: int = 70, steps: int = 5) -> dict[str, float]:
    """Training tokens/s of each output layer on Zipf-like random targets, after three warm-up steps."""
    rates = {}
    for name, options in OUTPUTS.items():
        torch.manual_seed(0)
        model = RecurrentLanguageModel(LanguageModelConfig(128, 256, 1, dropout=0.0, **options), vocab).train()
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        ids = torch.randint(vocab, (batch, bptt))
        targets = torch.distributions.Exponential(torch.tensor(1 / 800.0)).sample((batch, bptt)).long().clamp(max=vocab - 1)
        for step in range(3 + steps):
            if step == 3:
                start = time.perf_counter()
            losses, _, _ = model.token_losses(ids, targets)
            optimizer.zero_grad()
            losses.mean().backward()
            optimizer.step()
        rates[name] = batch * bptt * steps / (time.perf_counter() - start)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes for each output layer")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    parser.add_argument("--throughput", action="store_true", help="only the training tokens/s of each, on random ids")
    args = parser.parse_args()
    if args.throughput:
        print(json.dumps({name: round(rate) for name, rate in throughput().items()}))
        return
    results = measure_all(OUTPUTS, args.minutes)
    body = (
        "### The output layer of the review language model, in equal minutes\n\n"
        f"`python experiments/lm_output_layer/lm_output.py --minutes {args.minutes:g}`: recipes/reviews-lm.yaml's model (word vocabulary of "
        f"25,000, embedding 128, LSTM 256, batch 64 x 70 tokens), {args.minutes:g} minutes each on IMDB's train reviews, "
        "validation on the last 2% of them, seed 0.\n\n" + table(results, "output layer", "full")
    )
    if not args.no_write:
        write_section("lm_output", body)


if __name__ == "__main__":
    main()
