"""IMDB with few labels: seqtext's default classifier, the pretrained encoder and a classifier from scratch
against NBSVM-bi.

For each size, a stratified, seeded sample of that many labelled reviews from seqtext's IMDB train split
(the 90% that recipes/imdb.yaml trains on) trains three models: recipes/imdb-pretrained.yaml (from
runs/reviews-lm, which read the 25,000 train reviews' texts and the 50,000 unlabelled ones, never a
label), recipes/imdb.yaml from scratch, seqtext's default classifier as `seqtext train --data FOLDER` trains
it (its own batches and epochs: word vectors, the n-gram bag), and NBSVM-bi (--models picks the first three). All pick their checkpoint (NBSVM its C) on the same
stratified 1,000 reviews of the validation split, and are scored once on the test split (or a stratified
sample of it, --test-size). Small sets train for more epochs, so that each run takes about 300 steps.
The pretrained classifier runs without the recipe's bag of n-grams (model.ngrams: 0): the comparison
is the same encoder with and without pretraining.

    python experiments/few_labels/few_labels.py [--sizes 500 2000] [--test-size 5000] [--seed 0] [--models default pretrained]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.classifier.baselines import fit_nbsvm  # noqa: E402
from seqtext.classifier.data import load_labelled  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VALIDATION_SIZE = 1000
STEPS = 300  # about this many optimizer steps at every size (the default classifier has its own rule)
MODELS = ("default", "pretrained", "from scratch")


def sample(table, size: int | None, seed: int):
    if size is None or size >= len(table):
        return table
    return table.train_test_split(train_size=size, stratify_by_column="label", seed=seed)["train"]


def write_split(path: Path, table, names) -> None:
    path.write_text("".join(json.dumps({"text": t, "label": names[y]}) + "\n" for t, y in zip(table["text"], table["label"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--test-size", type=int, default=5000, help="a stratified sample of the test split (0: all 25,000)")
    parser.add_argument("--encoder", default=str(ROOT / "runs" / "reviews-lm"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", help="the plot (default: SECTION.png beside this script, the section name)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    data = load_labelled(load_recipe(ROOT / "recipes" / "imdb.yaml", {"seed": args.seed}))
    names = data.label_map.names
    validation = sample(data.splits["validation"], VALIDATION_SIZE, args.seed)
    test = sample(data.splits["test"], args.test_size or None, args.seed)
    results: dict[str, dict[int, float]] = {**{label: {} for label in args.models}, "NBSVM-bi": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            folder = Path(scratch) / f"imdb-{size}"
            folder.mkdir()
            train = sample(data.splits["train"], size, args.seed)
            for split, table in (("train", train), ("validation", validation), ("test", test)):
                write_split(folder / f"{split}.jsonl", table, names)
            batch = 16 if size <= 1000 else 32
            epochs = max(3, math.ceil(STEPS / (size // batch)))
            common = {"data__dataset": str(folder), "batching": {"batch_size": batch}}
            every = {"eval_every": max(1, size // batch), "epochs": epochs}
            runs = {  # the recipe's n-gram bag off: what pretraining alone does against the same encoder from scratch
                "pretrained": ("imdb-pretrained.yaml", {"model": {"encoder_from": args.encoder, "ngrams": 0}, "train": every}),
                "from scratch": ("imdb.yaml", {"train": {**every, "warmup_steps": 30}}),
            }
            for label in args.models:
                if label == "default":
                    model = seqtext.train(data=str(folder), out=Path(scratch) / f"default-{size}")
                else:
                    recipe, overrides = runs[label]
                    model = seqtext.train(ROOT / "recipes" / recipe, Path(scratch) / f"{label}-{size}", **common, **overrides)
                results[label][size] = seqtext.evaluate(model, split="test")["accuracy"]
                print(f"{size} labels, {label}: {results[label][size]:.4f}", flush=True)
            baseline = fit_nbsvm(train["text"], train["label"], len(names), validation=(validation["text"], validation["label"]))
            results["NBSVM-bi"][size] = float((baseline.predict(test["text"]) == test["label"]).mean())
            print(f"{size} labels, NBSVM-bi: {results['NBSVM-bi'][size]:.4f}", flush=True)
    print(json.dumps(results, indent=2))
    section = "few_labels" if args.models == list(MODELS) else "_".join(["few_labels", *args.models])
    png = Path(args.png or Path(__file__).with_name(f"{section}.png"))
    plot(results, len(test), png)
    header = "| labels | " + " | ".join(results) + " |\n|---:|" + "---:|" * len(results)
    rows = [f"| {size:,} | " + " | ".join(f"{results[k][size]:.4f}" for k in results) + " |" for size in args.sizes]
    command = (
        f"python experiments/few_labels/few_labels.py --sizes {' '.join(map(str, args.sizes))} --test-size {args.test_size} --seed {args.seed}"
        + (f" --models {' '.join(args.models)}" if args.models != list(MODELS) else "")
    )
    body = (
        f"`{command}`: stratified samples of IMDB's train split, the same 1,000 validation reviews for every model's "
        f"checkpoint, scored once on {len(test):,} test reviews (stratified). Pretrained: recipes/imdb-pretrained.yaml "
        f"from {Path(args.encoder).name}, without its n-gram bag (`model.ngrams: 0`); from scratch: recipes/imdb.yaml; "
        f"default: `seqtext train --data FOLDER`, seqtext's default classifier.\n\n"
        + header
        + "\n"
        + "\n".join(rows)
        + f"\n\n![few labels]({png.name})"
    )
    if not args.no_write:
        write_section(section, body)


def plot(results: dict[str, dict[int, float]], tested: int, path: Path) -> None:
    """Test accuracy against the number of labels, a line a model."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, points in results.items():
        axes.plot(list(points), list(points.values()), marker="o", label=label)
    axes.set_xscale("log")
    axes.set(xlabel="labelled training reviews", ylabel=f"test accuracy ({tested:,} reviews)", title="IMDB with few labels")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
