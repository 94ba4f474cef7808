"""fp32 against bf16 at equal minutes: each recipe trained by seqtext itself, once in each precision.

Each run is ``seqtext train recipes/NAME.yaml --train.max_minutes M --train.precision P`` (seed 0): the
library's own training step, data loading and validation, nothing copied. The schedule is fitted to the
minutes, so the faster precision takes more steps. Reported: the median training tokens/s of the run's log
windows (the first, which holds the warm-up, left out), the steps taken, and the best validation figure
reached (accuracy for classifiers, loss in nats a token for language models). The two precisions of a
recipe run one after the other, never at once.

    python bench/precision.py [--recipes sst2 imdb@400 reviews-lm shakespeare] [--minutes 3]

``imdb@400`` is the imdb recipe with ``--data.max_length 400``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, write_section  # noqa: E402
from seqtext import precision  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16")


def run(spec: str, name: str, minutes: float, folder: Path) -> dict:
    recipe_name, _, max_length = spec.partition("@")
    overrides = ["--train.max_minutes", str(minutes), "--train.precision", name]
    overrides += ["--data.max_length", max_length] if max_length else []
    recipe = load_recipe(ROOT / "recipes" / f"{recipe_name}.yaml", overrides)
    out = folder / f"{spec}-{name}"
    result = train(recipe, out, progress=False, log=print)
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [e["tokens_per_s"] for e in entries if e["split"] == "train"][1:]
    validation = [e for e in entries if e["split"] == "validation"]
    figure = "accuracy" if "accuracy" in validation[-1] and recipe.kind == "classifier" else "loss"
    best = (max if figure == "accuracy" else min)(e[figure] for e in validation)
    return {"tokens_per_s": median(rates), "steps": result["steps"], "figure": figure, "best": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["sst2", "imdb@400", "reviews-lm", "shakespeare"])
    parser.add_argument("--minutes", type=float, default=3.0, help="train.max_minutes of every run")
    parser.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="seqtext-precision-"))
    speedup = precision.bf16_speedup("cpu")
    rows = []
    for spec in args.recipes:
        found = {name: run(spec, name, args.minutes, folder) for name in PRECISIONS}
        fp32, bf16 = found["fp32"], found["bf16"]
        shown = (lambda v: f"{v:.4f}") if fp32["figure"] == "accuracy" else (lambda v: f"{v:.4f} (ppl {math.exp(v):,.1f})")
        rows.append(
            f"| {spec} | {fp32['tokens_per_s']:,.0f} | {bf16['tokens_per_s']:,.0f} | **{bf16['tokens_per_s'] / fp32['tokens_per_s']:.2f}x** | "
            f"{fp32['steps']:,} / {bf16['steps']:,} | {fp32['figure']} | {shown(fp32['best'])} | {shown(bf16['best'])} |"
        )  # fmt: skip
        print(rows[-1], flush=True)
    body = f"""## fp32 against bf16 at equal minutes

`python bench/precision.py --recipes {" ".join(args.recipes)} --minutes {args.minutes:g}`: each recipe trained by `seqtext train`
for {args.minutes:g} minutes (`train.max_minutes`, the schedule fitted to them) in fp32 and then in bf16 (`train.precision`), seed 0.
Tokens/s: the median of the run's training log windows after the first. The validation figure is the best the run
reached: accuracy for classifiers, loss in nats a token for language models (lower is better). An LSTM step
(`seqtext.precision.bf16_speedup`, what `auto` decides by) measured {speedup:.2f}x as fast in bf16 in this run.

| recipe | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 | steps fp32 / bf16 | validation | fp32 | bf16 |
|---|---:|---:|---:|---:|---|---:|---:|
{chr(10).join(rows)}
"""
    write_section("precision", body)
    print(body)


if __name__ == "__main__":
    main()
