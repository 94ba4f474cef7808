"""seqtext beside the linear peers a competent user would try first, on the same splits, in one run.

- NBSVM-bi: seqtext/baselines.py (binary 1-2 grams scaled by naive-Bayes ratios, logistic regression).
- TF-IDF 1-2 grams + logistic regression (scikit-learn).
- fastText (the ``fasttext`` package, supervised, word bigrams).

Each peer trains on the recipe's own train split (IMDB: the 90% seqtext trains on) and picks its
hyperparameters on the same validation split seqtext uses for its best checkpoint; each is scored once
on the test split. The time is the fit of the chosen setting. seqtext checkpoints named with --seqtext
are evaluated on the same test split in the same run.

    pip install scikit-learn fasttext-wheel      # bench-only extras (pip install -e '.[bench]')
    python bench/peers.py imdb sst2 trec [--seqtext runs/imdb-pretrained ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.baselines import C_GRID, TOKEN_PATTERN, fit_nbsvm  # noqa: E402
from seqtext.evaluation import classification_report  # noqa: E402
from seqtext.pipeline import load_labelled  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FASTTEXT_GRID = [(lr, epoch) for lr in (0.1, 0.5, 1.0) for epoch in (5, 20, 50)]


def splits(name: str, seed: int) -> tuple[dict, tuple[str, ...]]:
    """The recipe's train / validation / test splits as (texts, label ids), and the label names."""
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml", {"seed": seed})
    data = load_labelled(recipe)
    parts = {
        split: (list(data.splits[split]["text"]), np.asarray(data.splits[split]["label"]))
        for split in ("train", "validation", "test")
    }
    return parts, tuple(data.label_map.names)


def report(scores: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> dict:
    return classification_report(torch.as_tensor(scores, dtype=torch.float32), torch.as_tensor(labels), names)


def nbsvm(parts, names) -> tuple[np.ndarray, float, str]:
    model = fit_nbsvm(*parts["train"], len(names), validation=parts["validation"])
    return model.scores(parts["test"][0]), model.seconds, f"C={model.c}"


def tfidf_lr(parts, names) -> tuple[np.ndarray, float, str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=TOKEN_PATTERN)
    features = vectorizer.fit_transform(parts["train"][0])
    prepared = time.perf_counter() - start
    held_out = vectorizer.transform(parts["validation"][0])
    best = None
    for c in C_GRID + (10.0, 30.0, 100.0):
        start = time.perf_counter()
        model = LogisticRegression(C=c, max_iter=2000).fit(features, parts["train"][1])
        seconds = prepared + time.perf_counter() - start  # the features and this C's fit
        accuracy = model.score(held_out, parts["validation"][1])
        if best is None or accuracy > best[0]:
            best = (accuracy, model, seconds, f"C={c}")
    _, model, seconds, setting = best
    margins = model.decision_function(vectorizer.transform(parts["test"][0]))  # (N,) for two classes, else (N, C)
    return (np.stack([-margins / 2, margins / 2], axis=1) if margins.ndim == 1 else margins), seconds, setting


def _fasttext_line(text: str) -> str:
    return " ".join(re.findall(TOKEN_PATTERN, text.lower()))


def fasttext_bigrams(parts, names, seed: int) -> tuple[np.ndarray, float, str]:
    import fasttext

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.txt"
        path.write_text("".join(f"__label__{y} {_fasttext_line(t)}\n" for t, y in zip(*parts["train"])))
        best = None
        for lr, epoch in FASTTEXT_GRID:
            start = time.perf_counter()
            model = fasttext.train_supervised(
                str(path), lr=lr, epoch=epoch, wordNgrams=2, dim=100, thread=2, seed=seed, verbose=0
            )
            seconds = time.perf_counter() - start
            accuracy = float(
                (_fasttext_predict(model, parts["validation"][0], len(names)).argmax(1) == parts["validation"][1]).mean()
            )
            if best is None or accuracy > best[0]:
                best = (accuracy, model, seconds, f"lr={lr}, epoch={epoch}")
    _, model, seconds, setting = best
    return _fasttext_predict(model, parts["test"][0], len(names)), seconds, setting


def _fasttext_predict(model, texts, num_classes: int) -> np.ndarray:
    """(N, C) scores in label-id order: minus each label's rank. fasttext-wheel's probabilities are wrong
    under NumPy 2 (every label of a text gets the same value), its ranking is not."""
    scores = np.full((len(texts), num_classes), -float(num_classes))
    labels, _ = model.predict([_fasttext_line(t) for t in texts], k=num_classes)
    for row, ranked in enumerate(labels):
        for rank, name in enumerate(ranked):
            scores[row, int(name.removeprefix("__label__"))] = -rank
    return scores


def _training_seconds(run: Path) -> float | None:
    """A run's wall time, validation included: the last entry of its metrics.jsonl."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows[-1].get("elapsed_s") if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", choices=["imdb", "sst2", "trec"])
    parser.add_argument("--seqtext", nargs="*", default=[], help="seqtext runs to score on the same test splits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = parser.parse_args()
    runs = {run: seqtext.load(run) for run in args.seqtext}
    rows, results = [], {}
    for name in args.datasets:
        parts, names = splits(name, args.seed)
        peers = {
            "NBSVM-bi": nbsvm,
            "TF-IDF 1-2 grams + LR": tfidf_lr,
            "fastText bigrams": lambda parts, names: fasttext_bigrams(parts, names, args.seed),
        }
        for peer, fit in peers.items():
            scores, seconds, setting = fit(parts, names)
            figures = report(scores, parts["test"][1], names)
            results[f"{name}/{peer}"] = {"accuracy": figures["accuracy"], "macro_f1": figures["macro_f1"], "seconds": seconds}
            rows.append(
                f"| {name} | {peer} ({setting}) | {figures['accuracy']:.4f} | {figures['macro_f1']:.4f} | {seconds:.0f} s |"
            )
            print(rows[-1], flush=True)
        for run, model in runs.items():
            if model.recipe.data.dataset != name:
                continue
            figures = seqtext.evaluate(model, split="test")
            seconds = _training_seconds(Path(run))
            results[f"{name}/{run}"] = {"accuracy": figures["accuracy"], "macro_f1": figures["macro_f1"], "seconds": seconds}
            took = f"{seconds / 60:.0f} min" if seconds else "?"
            rows.append(f"| {name} | seqtext `{run}` | {figures['accuracy']:.4f} | {figures['macro_f1']:.4f} | {took} |")
            print(rows[-1], flush=True)
    print(json.dumps(results, indent=2))
    if not args.no_write:
        command = f"python bench/peers.py {' '.join(args.datasets)}" + (f" --seqtext {' '.join(args.seqtext)}" if runs else "")
        body = (
            f"`{command}` (seed {args.seed}); test split, scored once; peers' settings chosen on the validation split.\n\n"
            "| set | model | test accuracy | macro-F1 | fit time |\n|---|---|---:|---:|---:|\n" + "\n".join(rows)
        )
        sets = sorted(set(args.datasets))  # a run of fewer sets than all three keeps the whole table
        write_section("peers" if sets == ["imdb", "sst2", "trec"] else "peers_" + "_".join(sets), body)


if __name__ == "__main__":
    main()
