"""Validation loss against wall-clock minutes for a language-model run, beside reference points.

    seqtext train recipes/shakespeare.yaml --out runs/shakespeare
    python bench/lm_curve.py runs/shakespeare

Reads the run's metrics.jsonl (validation runs record their wall time since the start of training,
validation included), draws bench/shakespeare_curve.png, and rewrites the lm_curve section of RESULTS.md.
The reference points are the figures quoted in the issue for other models measured on these machines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.45  # nats per character, within 30 minutes
REFERENCES = {  # name -> [(minutes, validation loss)]
    "plain 1x512 LSTM script": [(2.5, 1.74), (14, 1.48), (20, 1.465)],
    "small transformer, CPU recipe": [(2.5, 1.89)],
}


def plot(minutes: list[float], losses: list[float], png: str) -> None:
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(minutes, losses, "o-", markersize=3, label="seqtext recipes/shakespeare.yaml")
    for (name, points), marker in zip(REFERENCES.items(), ("s", "^")):
        axes.plot(*zip(*points), marker, linestyle="--", label=name)
    axes.axhline(TARGET, color="grey", linewidth=0.8, linestyle=":", label=f"target {TARGET}")
    axes.axvline(30, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("wall-clock minutes (2 CPU cores, validation included)")
    axes.set_ylabel("validation loss (nats / character)")
    axes.set_ylim(1.3, 2.3)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a language-model run directory (with metrics.jsonl)")
    parser.add_argument("--png", default=str(ROOT / "bench" / "shakespeare_curve.png"))
    args = parser.parse_args()
    run = Path(args.run)
    entries = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    validation = [e for e in entries if e["split"] == "validation"]
    recipe = json.loads((run / "best" / "config.json").read_text())["recipe"]
    minutes = [e["elapsed_s"] / 60 for e in validation]
    losses = [e["loss"] for e in validation]

    plot(minutes, losses, args.png)

    reached = next((e for e in validation if e["loss"] <= TARGET), None)
    best = min(validation, key=lambda e: e["loss"])
    within = [e for e in validation if e["elapsed_s"] <= 30 * 60]
    best_within = min(within, key=lambda e: e["loss"]) if within else None

    def at(limit: float) -> str:
        seen = [e for e in validation if e["elapsed_s"] <= limit * 60]
        return f"{min(e['loss'] for e in seen):.4f}" if seen else "-"

    rows = "\n".join(
        f"| {limit} | {at(limit)} | {', '.join(f'{loss}' for m, loss in sum(REFERENCES.values(), []) if m == limit) or '-'} |"
        for limit in (2.5, 5, 10, 14, 20, 25, 30)
    )
    model, batching = recipe["model"], recipe["batching"]
    reached_text = (
        f"first at or below {TARGET}: **{reached['loss']:.4f}** at step {reached['step']:,}, {reached['elapsed_s'] / 60:.1f} minutes"
        if reached
        else f"never at or below {TARGET}"
    )
    body = f"""## Tiny Shakespeare: validation loss against wall-clock time

`seqtext train recipes/shakespeare.yaml --out runs/shakespeare` then `python bench/lm_curve.py runs/shakespeare`.
{model["num_layers"]}x{model["hidden_size"]} {model["cell"].upper()}, embedding {model["embedding_size"]}, dropout {model["dropout"]},
batch {batching["batch_size"]} x window {batching["bptt"]}, AdamW lr {recipe["train"]["lr"]} with warmup and cosine decay, seed {recipe["seed"]};
first 90% of the characters train, the last 10% ({validation[-1]["n_chars"]:,} predicted characters) validate.
Wall time counts from the start of training and includes the validation runs.

- Validation loss {reached_text}.
- Best within 30 minutes: {best_within["loss"]:.4f} nats/char ({best_within["bpc"]:.4f} bits/char) at {best_within["elapsed_s"] / 60:.1f} min.
- Best of the run: {best["loss"]:.4f} nats/char ({best["bpc"]:.4f} bits/char, perplexity {best["perplexity"]:.3f}) at step {best["step"]:,},
  {best["elapsed_s"] / 60:.1f} min; the run took {validation[-1]["elapsed_s"] / 60:.1f} min for {validation[-1]["step"]:,} steps.

| minutes | seqtext: best validation loss so far | reference points at that time |
|---:|---:|---|
{rows}

References: a plain 1x512 LSTM script (Adam, dropout 0.1, cosine) 1.74 / 1.48 / 1.465 at 2.5 / 14 / 20 minutes, and a
small transformer's CPU recipe 1.89 at 2.5 minutes, as measured on these machines and quoted in the issue.
![validation loss against minutes](shakespeare_curve.png)
"""
    write_section("lm_curve", body)
    print(body)


if __name__ == "__main__":
    main()
