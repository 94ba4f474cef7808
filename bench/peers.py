"""seqtext beside the linear peers a competent user would try first, on the same splits, in one run.

- NBSVM-bi: seqtext/classifier/baselines.py (binary 1-2 grams scaled by naive-Bayes ratios, logistic regression).
- TF-IDF 1-2 grams + logistic regression (scikit-learn).
- fastText (the ``fasttext`` package, supervised, word bigrams).
- fastText + vectors: the same, its word embeddings started from the pretrained vectors seqtext's default
  recipe reads (``--vectors``, GloVe 6B 50d), at their width: the fair peer for seqtext with vectors.

A dataset is a named one (imdb, sst2, trec: its recipe's splits) or a file or folder of split files, read as
``seqtext train --data PATH`` reads it (the default recipe: without a validation split, 10% of train held
out, stratified). Each peer trains on the train split (IMDB: the 90% seqtext trains on) and picks its
hyperparameters on the same validation split seqtext uses for its best checkpoint; each is scored once on the
test split (accuracy and macro-F1). The time is the fit of the chosen setting. seqtext checkpoints named with
--seqtext are evaluated on the test split of the data they were trained on, in the same run.

    pip install scikit-learn fasttext-wheel      # bench-only extras (pip install -e '.[bench]')
    python bench/peers.py imdb sst2 trec [--seqtext runs/imdb-pretrained ...] [--seed 0]
    python bench/peers.py path/to/folder --vectors none --results /tmp/peers.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seqtext  # noqa: E402
from bench.common import RESULTS_ENV, write_section  # noqa: E402
from seqtext.classifier.baselines import C_GRID, TOKEN_PATTERN, fit_nbsvm  # noqa: E402
from seqtext.classifier.data import load_labelled  # noqa: E402
from seqtext.classifier.evaluation import classification_report  # noqa: E402
from seqtext.errors import DataError, SeqtextError  # noqa: E402
from seqtext.recipe import for_data, load_recipe  # noqa: E402
from seqtext.vectors import WordVectors, read_vectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAMED = ("imdb", "sst2", "trec")  # datasets with a recipe of their own in recipes/
FASTTEXT_GRID = [(lr, epoch) for lr in (0.1, 0.5, 1.0) for epoch in (5, 20, 50)]
NO_FASTTEXT = "fastText peers skipped: the fasttext package is not installed (pip install fasttext-wheel)"


def splits(source: str, seed: int) -> tuple[str, dict, tuple[str, ...]]:
    """The dataset's name in the table, its train / validation / test splits as (texts, label ids), and the
    label names. ``source`` is a named dataset (its recipe) or a path (seqtext's default recipe)."""
    if source in NAMED:
        label, recipe = source, load_recipe(ROOT / "recipes" / f"{source}.yaml", {"seed": seed})
    else:
        path = Path(source).resolve()
        label = path.name if path.is_dir() else path.name.split(".")[0]  # reviews.jsonl.gz -> reviews
        recipe = for_data(None, {"seed": seed}, source)
    data = load_labelled(recipe)
    test = data.splits.get("test")
    if test is None or "label" not in test.column_names:
        raise DataError(f"{data.source}: no labelled test split to score the peers on (splits: {', '.join(data.splits)})")
    parts = {
        split: (list(data.splits[split]["text"]), np.asarray(data.splits[split]["label"]))
        for split in ("train", "validation", "test")
    }
    return label, parts, tuple(data.label_map.names)


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


def _fasttext_line(text: str, lowercase: bool) -> str:
    return " ".join(re.findall(TOKEN_PATTERN, text.lower() if lowercase else text))


def fasttext_bigrams(parts, names, seed: int, lowercase: bool, vectors: Path | None = None, dim: int = 100):
    """fastText supervised with word bigrams, lr and epochs chosen on validation; with ``vectors`` (a .vec
    file of width ``dim``) its word embeddings start from them. Returns (test scores, seconds, setting)."""
    import fasttext

    pretrained = {} if vectors is None else {"pretrainedVectors": str(vectors)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.txt"
        path.write_text("".join(f"__label__{y} {_fasttext_line(t, lowercase)}\n" for t, y in zip(*parts["train"])))
        best = None
        for lr, epoch in FASTTEXT_GRID:
            start = time.perf_counter()
            model = fasttext.train_supervised(
                str(path), lr=lr, epoch=epoch, wordNgrams=2, dim=dim, seed=seed, verbose=0, **pretrained,
                thread=torch.get_num_threads(),  # as many as torch (OMP_NUM_THREADS); with one, a fit is reproducible
            )  # fmt: skip
            seconds = time.perf_counter() - start
            scores = _fasttext_predict(model, parts["validation"][0], len(names), lowercase)  # (N, C)
            accuracy = float((scores.argmax(1) == parts["validation"][1]).mean())
            if best is None or accuracy > best[0]:
                best = (accuracy, model, seconds, f"lr={lr}, epoch={epoch}")
    _, model, seconds, setting = best
    return _fasttext_predict(model, parts["test"][0], len(names), lowercase), seconds, setting


def fasttext_vectors(parts, names, seed: int, vectors: WordVectors) -> tuple[np.ndarray, float, str]:
    """``fasttext_bigrams`` started from ``vectors``, over the same grid, at the vectors' width."""
    texts = [text for split in ("train", "validation", "test") for text in parts[split][0]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.vec"
        covered = _write_vec(vectors, [_fasttext_line(t, vectors.lowercase) for t in texts], path)
        scores, seconds, setting = fasttext_bigrams(parts, names, seed, vectors.lowercase, path, vectors.dim)
    return scores, seconds, f"{Path(vectors.source).name}, {setting}, {covered:.0%} of words found"


def _write_vec(vectors: WordVectors, lines: list[str], path: Path) -> float:
    """Write the vectors of the words in ``lines`` as a fastText .vec text file (``count dim``, then
    ``word v1 .. vD``); returns the fraction of distinct words found. Only those words: fastText adds every
    word of the file to its dictionary, so the others change no prediction but would be read at every fit."""
    index = vectors.index()
    seen = {word for line in lines for word in line.split()}
    words = sorted(seen & index.keys(), key=index.__getitem__)  # the file's order: most frequent first
    rows = vectors.vectors[[index[word] for word in words]].numpy()  # (W, D)
    with path.open("w", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.dim}\n")
        f.writelines(f"{word} {' '.join(f'{x:.6g}' for x in row)}\n" for word, row in zip(words, rows))
    return len(words) / max(1, len(seen))


def _fasttext_predict(model, texts, num_classes: int, lowercase: bool) -> np.ndarray:
    """(N, C) scores in label-id order: minus each label's rank. fasttext-wheel's probabilities are wrong
    under NumPy 2 (every label of a text gets the same value), its ranking is not."""
    scores = np.full((len(texts), num_classes), -float(num_classes))
    labels, _ = model.predict([_fasttext_line(t, lowercase) for t in texts], k=num_classes)
    for row, ranked in enumerate(labels):
        for rank, name in enumerate(ranked):
            scores[row, int(name.removeprefix("__label__"))] = -rank
    return scores


def choose_peers(seed: int, vectors: WordVectors | None, notes: list[str]) -> dict:
    """Peer name -> fit(parts, names). Both fastText peers read text lowercased unless the vectors are cased
    (then neither does), so that they differ only in the vectors; without fasttext installed, ``notes`` says so."""
    peers = {"NBSVM-bi": nbsvm, "TF-IDF 1-2 grams + LR": tfidf_lr}
    if importlib.util.find_spec("fasttext") is None:
        notes.append(NO_FASTTEXT)
        return peers
    lowercase = vectors is None or vectors.lowercase
    peers["fastText bigrams"] = lambda parts, names: fasttext_bigrams(parts, names, seed, lowercase)
    if vectors is not None:
        peers["fastText + vectors"] = lambda parts, names: fasttext_vectors(parts, names, seed, vectors)
    return peers


def _read_vectors(choice: str) -> WordVectors | None:
    """The vectors of the fastText + vectors peer: None with ``--vectors none``, or without fastText to use them."""
    if choice.lower() == "none" or importlib.util.find_spec("fasttext") is None:
        return None
    try:
        return read_vectors(choice)
    except SeqtextError as err:
        sys.exit(f"peers.py: error: {err} (--vectors none skips the fastText + vectors peer)")


def _training_seconds(run: Path) -> float | None:
    """A run's wall time, validation included: the last entry of its metrics.jsonl."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows[-1].get("elapsed_s") if rows else None


def _trained_on(model, source: str) -> bool:
    """Whether a seqtext run was trained on ``source``: the same named dataset, or the same path."""
    dataset = model.recipe.data.dataset
    if source in NAMED or dataset in NAMED:
        return dataset == source
    return dataset is not None and Path(dataset).resolve() == Path(source).resolve()


def score(source: str, seed: int, peers: dict, runs: dict, results: dict) -> tuple[str, list[str]]:
    """The dataset's name in the table and its rows: every peer, then the seqtext runs trained on it."""
    label, parts, names = splits(source, seed)
    rows = []
    for peer, fit in peers.items():
        scores, seconds, setting = fit(parts, names)
        figures = report(scores, parts["test"][1], names)
        results[f"{label}/{peer}"] = {"accuracy": figures["accuracy"], "macro_f1": figures["macro_f1"], "seconds": seconds}
        rows.append(f"| {label} | {peer} ({setting}) | {figures['accuracy']:.4f} | {figures['macro_f1']:.4f} | {seconds:.0f} s |")
        print(rows[-1], flush=True)
    for run, model in runs.items():
        if not _trained_on(model, source):
            continue
        figures = seqtext.evaluate(model, split="test")
        seconds = _training_seconds(Path(run))
        results[f"{label}/{run}"] = {"accuracy": figures["accuracy"], "macro_f1": figures["macro_f1"], "seconds": seconds}
        took = f"{seconds / 60:.0f} min" if seconds else "?"
        rows.append(f"| {label} | seqtext `{run}` | {figures['accuracy']:.4f} | {figures['macro_f1']:.4f} | {took} |")
        print(rows[-1], flush=True)
    return label, rows


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", metavar="DATASET", help=f"{', '.join(NAMED)}, or a labelled file or folder")
    parser.add_argument("--seqtext", nargs="*", default=[], help="seqtext runs to score on the same test splits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vectors", default="glove.6B.50d", metavar="NAME_OR_PATH",
        help="pretrained vectors for the fastText + vectors peer (a catalogue name or a file); none skips that peer",
    )  # fmt: skip
    parser.add_argument("--results", help=f"the file to write the section to (default: ${RESULTS_ENV}, else bench/RESULTS.md)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    if args.results:
        os.environ[RESULTS_ENV] = str(Path(args.results).resolve())  # where write_section writes
    notes: list[str] = []
    peers = choose_peers(args.seed, _read_vectors(args.vectors), notes)
    for note in notes:
        print(f"peers.py: {note}", file=sys.stderr, flush=True)
    rows, results, labels = [], {}, []
    try:
        runs = {run: seqtext.load(run) for run in args.seqtext}
        for source in args.datasets:
            label, dataset_rows = score(source, args.seed, peers, runs, results)
            labels.append(label)
            rows.extend(dataset_rows)
    except SeqtextError as err:
        sys.exit(f"peers.py: error: {err}")
    print(json.dumps(results, indent=2))
    if not args.no_write:
        write_section(_section_name(labels), _body(args, runs, rows, notes))


def _section_name(labels: list[str]) -> str:
    sets = sorted(set(labels))  # a run of fewer sets than all three keeps the whole table
    return "peers" if sets == sorted(NAMED) else "peers_" + re.sub(r"[^\w.-]", "_", "_".join(sets))


def _body(args: argparse.Namespace, runs: dict, rows: list[str], notes: list[str]) -> str:
    command = f"python bench/peers.py {' '.join(args.datasets)}" + (f" --seqtext {' '.join(args.seqtext)}" if runs else "")
    command += "" if args.vectors == "glove.6B.50d" else f" --vectors {args.vectors}"
    return (
        f"`{command}` (seed {args.seed}); test split, scored once; peers' settings chosen on the validation split.\n\n"
        + "".join(f"{note}.\n\n" for note in notes)
        + "| set | model | test accuracy | macro-F1 | fit time |\n|---|---|---:|---:|---:|\n"
        + "\n".join(rows)
    )


if __name__ == "__main__":
    main()
