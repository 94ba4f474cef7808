"""Held-out quality of a classifier recipe: train it with each seed, pick the best validation checkpoint,
score it once on the test split (which training and selection never see).

    python bench/quality.py sst2 --seeds 0 1 2
    python bench/quality.py trec --seeds 0
    python bench/quality.py default --data imdb --seeds 0 1 2

The same as `seqtext train recipes/NAME.yaml --seed S` (for `default`: `seqtext train --data DATA --seed S`,
seqtext's default classifier) then `seqtext evaluate RUN --split test`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_section  # noqa: E402
from seqtext import checkpoint  # noqa: E402
from seqtext.classifier.evaluation import evaluate_classifier, evaluation_set  # noqa: E402
from seqtext.recipe import for_data, load_recipe  # noqa: E402
from seqtext.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a recipe name in recipes/ (sst2, imdb, trec), or default (with --data)")
    parser.add_argument("--data", help="the dataset for the default recipe (a name or a path)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder); runs there are resumed")
    args, overrides = parser.parse_known_args()
    if (args.recipe == "default") != (args.data is not None):
        parser.error("--data goes with the default recipe, and only with it")
    name = f"default-{Path(args.data).name}" if args.data else args.recipe
    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="seqtext-quality-"))
    rows, scores = [], []
    for seed in args.seeds:
        if args.data:
            recipe = for_data(None, ["--seed", str(seed), *overrides], args.data, log=print)
        else:
            recipe = load_recipe(ROOT / "recipes" / f"{args.recipe}.yaml", ["--seed", str(seed), *overrides])
        run_dir = base / f"{name}-seed{seed}"
        # a run already there (cut short, or done) is resumed: it finishes, or reports what it has
        result = train(recipe, run_dir, resume=(run_dir / "last").exists(), progress=False)
        minutes = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["elapsed_s"] / 60
        model = checkpoint.load(result["best"])
        test = evaluate_classifier(model.model, evaluation_set(model, split="test")[0], model.label_map.names)
        scores.append(test["accuracy"])
        rows.append(
            f"| {seed} | {result['accuracy']:.4f} | **{test['accuracy']:.4f}** | {test['macro_f1']:.4f} | {test['n']:,} | "
            f"{result['best_step']:,} of {result['steps']:,} | {minutes:.1f} |"
        )
        print(rows[-1], flush=True)
    extra = (f" --data {args.data}" if args.data else "") + (f" {' '.join(overrides)}" if overrides else "")
    same = f"seqtext train --data {args.data} --seed S" if args.data else f"seqtext train recipes/{args.recipe}.yaml --seed S"
    mean = f"Mean test accuracy over {len(scores)} seeds: **{statistics.mean(scores):.4f}**." if len(scores) > 1 else ""
    body = f"""## Held-out quality: {name}

`python bench/quality.py {args.recipe} --seeds {" ".join(map(str, args.seeds))}{extra}` (the same as `{same}`,
then `seqtext evaluate RUN --split test`). The best validation checkpoint is scored once on the test split. {mean}

| seed | best validation accuracy | test accuracy | test macro-F1 | test examples | best step of steps | training minutes |
|---:|---:|---:|---:|---:|---|---:|
{chr(10).join(rows)}
"""
    write_section(f"quality_{name.replace('-', '_')}", body)
    print(body)


if __name__ == "__main__":
    main()
