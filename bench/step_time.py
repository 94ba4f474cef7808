"""Where a training step's time goes: outside the model (sampling, collate, copying the batch) against
inside it (forward, loss, backward, clipping, optimizer step), for the classifier recipes; and the
one-time cost of tokenizing and bucketing the train split against an epoch of training.

The step is the one `seqtext train` takes (``seqtext.tasks.classifier.ClassifierTask``), cut into its two halves with a
clock between them. Targets (issue 7): outside the model < 10% of a step; tokenizing and batching
< 5% of an epoch.

    python bench/step_time.py [--steps 60] [--recipes sst2 imdb]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, write_section  # noqa: E402
from seqtext.batching import EncodedTexts, collate  # noqa: E402
from seqtext.models.classifier import TextClassifier  # noqa: E402
from seqtext.optim import make_optimizer  # noqa: E402
from seqtext.pipeline import bucket_sampler, prepare_classification  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, steps: int) -> dict:
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    prepared = prepare_classification(recipe, ("train",))
    train_set = prepared.encoded["train"]
    texts = prepared.data.splits["train"]["text"]
    started = time.perf_counter()  # the one-time cost, as training pays it: encode, then bucket
    encoded = EncodedTexts.from_texts(prepared.tokenizer, texts, None, recipe.data.max_length)
    sampler = bucket_sampler(encoded, recipe.batching, recipe.seed)
    batches = sampler.batches()
    prepare_seconds = time.perf_counter() - started
    torch.manual_seed(recipe.seed)
    model = TextClassifier(recipe.model, prepared.tokenizer.vocab_size, len(prepared.data.label_map))
    optimizer = make_optimizer(model, recipe.train)
    outside, inside, tokens = [], [], 0
    for index in range(steps + 5):  # the first 5 warm up
        t0 = time.perf_counter()
        batch = collate([train_set[i] for i in batches[index]])
        t1 = time.perf_counter()
        model.train()
        out = model(batch.ids, batch.lengths, batch.mask)
        loss = F.cross_entropy(out.logits, batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.train.clip_norm)
        optimizer.step()
        loss.item()
        t2 = time.perf_counter()
        if index >= 5:
            outside.append(t1 - t0)
            inside.append(t2 - t1)
            tokens += int(batch.lengths.sum())
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
        r = measure(name, args.steps)
        print(r, flush=True)
        rows.append(
            f"| {name} | {r['outside_ms']:.2f} | {r['inside_ms']:.1f} | **{r['outside_fraction']:.1%}** | {r['tokens_per_s']:,.0f} | "
            f"{r['prepare_s']:.2f} s | {r['epoch_s']:.0f} s | **{r['prepare_s'] / r['epoch_s']:.1%}** |"
        )
    body = f"""## Where a training step's time goes

`python bench/step_time.py --steps {args.steps} --recipes {" ".join(args.recipes)}`: the recipe's model and bucketed batches; {args.steps}
steps after 5 of warm-up, on the first batches of epoch 0. Outside the model: collating the batch's
texts from the encoded split (sampling is precomputed per epoch). Inside: forward, loss, backward,
clipping, AdamW step. Preparing: tokenizing the train split and cutting it into bucketed batches, once
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
