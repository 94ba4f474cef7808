"""Peak memory (RSS) of evaluating and of labelling IMDB's 25,000 test reviews with the IMDB recipe's model.

Each measurement is a fresh process, so its peak is its own: `floor` only loads the model;
`evaluate, streamed` is what `seqtext evaluate` does (the test file read, encoded and scored 512
reviews at a time); `evaluate, streamed, every batch shape` is how it streamed before batch lengths were
rounded to a multiple of 32; `evaluate, whole split` loads every split of the dataset and encodes the test split
at once (what seqtext did before streaming, kept here as the baseline); `predict, streamed` labels the
25,000 texts from a file a chunk at a time (`seqtext predict --file`); `train IMDB, 20 steps` is
`seqtext train recipes/imdb.yaml --max-steps 20` (loading, tokenizing and bucketing every split, then
training steps and one validation). The model has the recipe's sizes
and random weights: memory does not depend on what the weights are.

    python bench/memory.py
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_section  # noqa: E402
from seqtext import checkpoint  # noqa: E402
from seqtext.classifier.model import TextClassifier  # noqa: E402
from seqtext.data import LabelMap, data_dir  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.tokenizer import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, sys, time
sys.path.insert(0, {root!r})
from seqtext import checkpoint
model = checkpoint.load({checkpoint!r})
started = time.perf_counter()
{action}
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
ACTIONS = {
    "floor (load the model)": "",
    "evaluate, streamed": "from seqtext.classifier.evaluation import evaluate_checkpoint\nevaluate_checkpoint(model, split='test')",
    "evaluate, streamed, every 10th review": "from seqtext.classifier.evaluation import evaluate_checkpoint\n"
    "evaluate_checkpoint(model, {first!r})",
    "evaluate, streamed, every batch shape": "import seqtext.classifier.evaluation as ev\n"
    "ev.MAX_TOKENS, ev.SHAPE_MULTIPLE, ev.release_freed_memory = 16384, 1, lambda: None\nev.evaluate_checkpoint(model, split='test', chunk_size=2048)",
    "evaluate, whole split": "from seqtext.classifier.evaluation import evaluate_classifier, evaluation_set\n"
    "encoded, _ = evaluation_set(model, split='test')\nevaluate_classifier(model.model, encoded, model.label_map.names)",
    "train IMDB, 20 steps": "from seqtext.cli import main\nimport os, contextlib\n"
    "with open(os.devnull, 'w') as out, contextlib.redirect_stdout(out):\n"
    "    main(['train', {recipe!r}, '--out', {run!r}, '--max-steps', '20', '--train.eval_every', '1000'])",
    "predict, streamed": "from seqtext.cli import main\nimport os, contextlib\n"
    "with open(os.devnull, 'w') as out, contextlib.redirect_stdout(out):\n"
    "    main(['predict', {checkpoint!r}, '--file', {texts!r}, '--json'])",
}


def make_checkpoint(folder: Path) -> Path:
    recipe = load_recipe(ROOT / "recipes" / "imdb.yaml")
    tokenizer = Tokenizer.load(recipe.tokenizer.path)
    torch.manual_seed(0)
    model = TextClassifier(recipe.model, tokenizer.vocab_size, 2)
    args = {"vocab_size": tokenizer.vocab_size, "num_classes": 2}
    labels = LabelMap(("negative", "positive"))
    return checkpoint.save(
        folder / "imdb",
        kind="classifier",
        model=model,
        model_args=args,
        recipe=recipe.to_dict(),
        tokenizer=tokenizer,
        label_map=labels,
    )


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="seqtext-memory-"))
    path = make_checkpoint(folder)
    model = checkpoint.load(path).model
    model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    texts = folder / "imdb-test.txt"
    first = folder / "imdb-test-tenth.jsonl"
    with gzip.open(data_dir() / "imdb" / "test.jsonl.gz", "rt") as rows, texts.open("w") as out, first.open("w") as head:
        for number, line in enumerate(rows):
            out.write(json.loads(line)["text"].replace("\n", " ") + "\n")
            if number % 10 == 0:  # the file is sorted by label: a tenth of each
                head.write(line)
    peaks, seconds = {}, {}
    for name, action in ACTIONS.items():
        code = MEASURE.format(
            root=str(ROOT),
            checkpoint=str(path),
            action=action.format(
                checkpoint=str(path),
                texts=str(texts),
                first=str(first),
                recipe=str(ROOT / "recipes" / "imdb.yaml"),
                run=str(folder / "train-run"),
            ),
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        seconds[name], peak = (float(word) for word in result.stdout.split()[-2:])
        peaks[name] = peak / 1024  # ru_maxrss is in KiB on Linux
        print(f"{name}: {peaks[name]:,.0f} MiB, {seconds[name]:.1f} s", flush=True)
    floor = peaks["floor (load the model)"]
    rows = [
        f"| {name} | {peak:,.0f} | {peak - floor:,.0f} | {(peak - floor) / model_mb:.1f}x | {seconds[name]:.1f} |"
        if name != next(iter(peaks))
        else f"| {name} | {peak:,.0f} | | | |"
        for name, peak in peaks.items()
    ]
    body = f"""## Peak memory: evaluating and labelling 25,000 IMDB reviews

`python bench/memory.py`: each row is a fresh process; peak RSS from `getrusage`. The model has the IMDB recipe's
sizes ({model_mb:.1f} MiB of float32 weights, random values). "Above the floor" subtracts the process that only
imports seqtext and loads the model (Python, torch and the tokenizer are most of it).

| process | peak RSS (MiB) | above the floor (MiB) | above the floor / model size | seconds |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}

`evaluate, streamed` is `seqtext evaluate`: 512 reviews read and encoded at a time, batches of at most
8,192 padded tokens, each batch's length rounded up to a multiple of 32, free heap pages handed back after
each chunk (`malloc_trim`). `every 10th review`: the same on a tenth of the file (2,500 reviews); a peak
that does not depend on the file's length is what streaming is for. `evaluate, streamed, every batch shape` is how it streamed before (2,048 reviews, 16,384 tokens, batches exactly as long as their longest
review): oneDNN caches a kernel, and the heap keeps memory, for every batch shape, so its peak grows with
the file. `evaluate, whole split` reads every split of the dataset (train, unsup and test: 100,000
reviews) and encodes all 25,000 test reviews at once. Seconds: the action alone, after loading the model.
{resource.getpagesize()}-byte pages.
"""
    write_section("memory", body)
    print(body)


if __name__ == "__main__":
    main()
