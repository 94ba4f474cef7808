"""Inference speed and accuracy: PyTorch fp32, bf16 and int8, ONNX Runtime fp32 and int8, and fastText's predict,
on the same test texts, in one run.

- texts/s at batch 1: each text alone, tokenizing included, as a service answering one request at a time;
- texts/s batched: all the texts through the same bucketed batches as ``seqtext predict`` (at most 128 a batch);
- accuracy on the test split for each backend, against the fp32 PyTorch model's.

Every backend goes through the same tokenizer and the same batching code (seqtext/classifier/predict.py), so the figures
differ only by what runs the graph. fastText (bigrams, trained here on the recipe's train split, the peer of
bench/peers.py) is timed on the same texts with its own ``predict``. Threads: 2 for each (the machine's cores).

    python bench/inference.py --run sst2=runs/sst2 --run imdb=runs/imdb-pretrained [--batch1 300] [--accuracy-texts N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.classifier.data import load_labelled  # noqa: E402
from seqtext.export import export, load_exported  # noqa: E402

THREADS = 2


def test_split(model) -> tuple[list[str], list[str], list[str]]:
    """The model's test texts and labels (by name), and its train texts for fastText."""
    data = load_labelled(model.recipe)
    names = data.label_map.names
    test = data.splits["test"]
    train = data.splits["train"]
    return list(test["text"]), [names[i] for i in test["label"]], (list(train["text"]), [names[i] for i in train["label"]])


def backends(run: str, scratch: Path) -> dict:
    """name -> object with ``predict(texts)`` giving Predictions."""
    found = {
        "PyTorch fp32": seqtext.load(run),
        "PyTorch bf16": seqtext.load(run, precision="bf16"),  # autocast: bf16 matrix products, fp32 weights
        "PyTorch int8": seqtext.load(run, int8=True),
    }
    fp32 = found["PyTorch fp32"]
    for int8 in (False, True):
        path = scratch / ("int8" if int8 else "fp32") / "model.onnx"
        export(fp32, path, "onnx", int8=int8)
        found[f"ONNX Runtime {'int8' if int8 else 'fp32'}"] = load_exported(path, threads=THREADS)
    return found


def _predict(backend, texts, max_length):
    if isinstance(backend, seqtext.Classifier):
        return backend.predict(texts)
    return backend.predict(texts, max_length=max_length)


def fasttext_model(train: tuple[list[str], list[str]], scratch: Path):
    import fasttext

    path = scratch / "fasttext.train"
    path.write_text("".join(f"__label__{label} {' '.join(text.lower().split())}\n" for text, label in zip(*train)))
    return fasttext.train_supervised(str(path), wordNgrams=2, lr=0.5, epoch=20, thread=THREADS, verbose=0)


def measure(name: str, run: str, batch1: int, accuracy_texts: int | None) -> tuple[str, dict]:
    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        found = backends(run, scratch)
        fp32 = found["PyTorch fp32"]
        max_length = fp32.recipe.data.max_length
        texts, labels, train = test_split(fp32)
        rng = np.random.default_rng(0)
        if accuracy_texts and accuracy_texts < len(texts):  # a seeded sample: the files are sorted by label
            keep = sorted(rng.choice(len(texts), size=accuracy_texts, replace=False))
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        single = [texts[i] for i in rng.choice(len(texts), size=min(batch1, len(texts)), replace=False)]
        rows, reference = {}, None
        for backend_name, backend in found.items():
            _predict(backend, single[:10], max_length)  # warm up
            start = time.perf_counter()
            for text in single:
                _predict(backend, [text], max_length)
            one = len(single) / (time.perf_counter() - start)
            start = time.perf_counter()
            predicted = _predict(backend, texts, max_length)
            batched = len(texts) / (time.perf_counter() - start)
            got = [p.label for p in predicted]
            reference = reference or got
            accuracy = float(np.mean([a == b for a, b in zip(got, labels)]))
            agree = float(np.mean([a == b for a, b in zip(got, reference)]))
            rows[backend_name] = {"batch1": one, "batched": batched, "accuracy": accuracy, "agree": agree}
            print(f"{name} {backend_name}: {one:,.0f} texts/s alone, {batched:,.0f} batched, accuracy {accuracy:.4f}", flush=True)
        start = time.perf_counter()
        peer = fasttext_model(train, scratch)
        fit = time.perf_counter() - start
        clean = [" ".join(text.lower().split()) for text in texts]
        start = time.perf_counter()
        for text in [" ".join(t.lower().split()) for t in single]:
            peer.predict([text])  # a list: its one-string path breaks under NumPy 2 (np.array(copy=False))
        one = len(single) / (time.perf_counter() - start)
        start = time.perf_counter()
        found_labels, _ = peer.predict(clean)
        batched = len(texts) / (time.perf_counter() - start)
        accuracy = float(np.mean([found[0].removeprefix("__label__") == y for found, y in zip(found_labels, labels)]))
        rows["fastText (peer)"] = {"batch1": one, "batched": batched, "accuracy": accuracy, "agree": None, "fit": fit}
        print(f"{name} fastText: {one:,.0f} texts/s alone, {batched:,.0f} batched, accuracy {accuracy:.4f}", flush=True)
    return name, {"rows": rows, "texts": len(texts), "single": len(single)}


def section(results: list[tuple[str, dict]], argv: list[str]) -> str:
    lines = [
        "## Inference: PyTorch fp32, bf16 and int8, ONNX Runtime, beside fastText",
        "",
        f"`python bench/inference.py {' '.join(argv)}`: each backend labels the test split's texts (tokenizing",
        "included) one at a time (batch 1) and in bucketed batches of up to 128; accuracy on the same texts.",
        "bf16: `seqtext.load(run, precision='bf16')`, the forward pass under autocast (`--precision bf16`).",
        "int8: dynamic quantization of the LSTM and linear layers (PyTorch's `quantize_dynamic`; ONNX Runtime's",
        f"quantizer over the exported graph). {THREADS} threads each; fastText bigrams trained on the same train split.",
        "",
    ]
    for name, found in results:
        rows = found["rows"]
        base = rows["PyTorch fp32"]
        lines += [
            f"**{name}** ({found['texts']:,} test texts; batch 1 over {found['single']:,} of them; samples seeded 0)",
            "",
            "| backend | texts/s, batch 1 | vs PyTorch fp32 | texts/s, batched | vs PyTorch fp32 | test accuracy | same label as fp32 |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for backend, row in rows.items():
            agree = "" if row["agree"] is None else f"{row['agree']:.4f}"
            lines.append(
                f"| {backend} | {row['batch1']:,.0f} | {row['batch1'] / base['batch1']:.2f}x | {row['batched']:,.0f} | "
                f"{row['batched'] / base['batched']:.2f}x | {row['accuracy']:.4f} | {agree} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RUN", help="a classifier run to measure")
    parser.add_argument("--batch1", type=int, default=300, help="texts timed one at a time (default: 300)")
    parser.add_argument("--accuracy-texts", type=int, help="a seeded sample of N test texts (default: all)")
    args = parser.parse_args()
    results = []
    for spec in args.run:
        name, _, run = spec.partition("=")
        results.append(measure(name, run, args.batch1, args.accuracy_texts))
    write_section("inference", section(results, sys.argv[1:]))


if __name__ == "__main__":
    main()
