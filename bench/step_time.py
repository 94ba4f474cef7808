"""Where a training step's time goes: outside the model (sampling, collate, copying the batch) against
inside it (forward, loss, backward, clipping, optimizer step), for the classifier recipes; and the
one-time cost of tokenizing and bucketing the train split against an epoch of training.

The step is the one `seqtext train` takes (``seqtext.training.Run.step``: the task's loss with the recipe's
label smoothing, class weights and n-gram loss, clipping, AdamW). Outside the model is its first part, collating
the batch, timed alone on the same texts; inside is the rest of the step. Targets (issue 7): outside the model < 10% of a step; tokenizing and batching
< 5% of an epoch.

    python bench/step_time.py [--steps 60] [--recipes sst2 imdb]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, write_section  # noqa: E402
from seqtext.batching import EncodedTexts, collate  # noqa: E402
from seqtext.classifier.data import prepare_classification  # noqa: E402
from seqtext.pipeline import bucket_sampler  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.training import Run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, steps: int, folder: Path) -> dict:
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    run = Run(recipe, folder / name, False, lambda message: None, None)
    train_set = run.task.train_set
    raw = prepare_classification(recipe, ("train",))
    started = time.perf_counter()  # the one-time cost, as training pays it: encode, then bucket
    encoded = EncodedTexts.from_texts(raw.tokenizer, raw.data.splits["train"]["text"], None, recipe.data.max_length)
    bucket_sampler(encoded, recipe.batching, recipe.seed).batches()
    prepare_seconds = time.perf_counter() - started
    batches = run.start_epoch()
    outside, inside, tokens = [], [], 0
    for index in range(steps + 5):  # the first 5 warm up
        indices = batches[index]
        t0 = time.perf_counter()
        collate([train_set[i] for i in indices])  # what the task's step does first, timed alone
        t1 = time.perf_counter()
        run.step(indices, index, False)  # the training loop's own step: collate, forward, loss, backward, clip, AdamW
        t2 = time.perf_counter()
        if index >= 5:
            outside.append(t1 - t0)
            inside.append(max(0.0, (t2 - t1) - (t1 - t0)))
            tokens += int(train_set.lengths[indices].sum())
    run.close()
    step = sum(outside) + sum(inside)
    epoch_seconds = step / steps * len(batches)  # an epoch at the measured mean step time
    return {
        "name": name,
        "outside_ms": 1000 * median(outside),
        "inside_ms": 1000 * median(inside),
        "outside_fraction": sum(outside) / step,
        "tokens_per_s": tokens / step,
        "prepare_s": prepare_seconds,
        "epoch_s": epoch_seconds,
        "batches": len(batches),
        "texts": len(encoded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--recipes", nargs="+", default=["sst2", "imdb"])
    args = parser.parse_args()
    rows = []
    for name in args.recipes:
        with tempfile.TemporaryDirectory() as folder:
            r = measure(name, args.steps, Path(folder))
        print(r, flush=True)
        rows.append(
            f"| {name} | {r['outside_ms']:.2f} | {r['inside_ms']:.1f} | **{r['outside_fraction']:.1%}** | {r['tokens_per_s']:,.0f} | "
            f"{r['prepare_s']:.2f} s | {r['epoch_s']:.0f} s | **{r['prepare_s'] / r['epoch_s']:.1%}** |"
        )
    body = f"""## Where a training step's time goes

`python bench/step_time.py --steps {args.steps} --recipes {" ".join(args.recipes)}`: the recipe's model and bucketed batches; {args.steps}
steps after 5 of warm-up, on the first batches of epoch 0. Outside the model: collating the batch's
texts from the encoded split (sampling is precomputed per epoch), timed alone. Inside: the rest of the
training loop's own step (`seqtext.training.Run.step`: forward, the task's loss, backward, clipping, AdamW). Preparing: tokenizing the train split and cutting it into bucketed batches, once
per run; the epoch is the measured mean step time times the epoch's batches.

| recipe | outside, ms/step (median) | inside, ms/step (median) | outside / step | tokens/s | preparing | one epoch | preparing / epoch |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Targets: outside the model < 10% of a step; preparing < 5% of an epoch.
"""
    write_section("step_time", body)
    print(body)


if __name__ == "__main__":
    main()
