"""Training throughput of the classifier recipes against two plain-PyTorch baselines, in one run.

seqtext: the recipe's model, batches and training step, as ``seqtext train`` runs them (``training.Run``:
the task's loss, clipping and AdamW; length-bucketed batches; each direction a one-way LSTM, the backward
one over rows reversed within their lengths). Both baselines are a bidirectional ``nn.LSTM`` over
``pack_padded_sequence`` with the same sizes, additive attention and optimizer; they differ in batches:

- bucketed + packed: what torchtext's ``BucketIterator`` did, the fair baseline: shuffle, sort pools of
  100 batches by length, cut them into batches (each padded to its own longest text), shuffle the batches;
- padded to the longest: random batches each padded to the longest text of the dataset (after the same
  truncation), as some tutorials do.

All run the same number of optimizer steps, taking turns; throughput is real (unpadded) tokens per
second of forward, backward and optimizer step, data loading and collate included.

    python bench/train_throughput.py [--steps 40 [N ...]] [--repeats 3] [--recipes sst2 imdb imdb@400]

``imdb@400`` is the imdb recipe with ``--data.max_length 400``. ``--steps`` takes one count for every recipe
or one per recipe: the baseline's whole-review IMDB steps pad to 2,000 tokens and take seconds each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, write_section  # noqa: E402
from seqtext import precision  # noqa: E402
from seqtext.batching import collate  # noqa: E402
from seqtext.classifier.model import ClassifierOutput  # noqa: E402
from seqtext.nn import AdditiveAttention  # noqa: E402
from seqtext.optim import make_optimizer  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.training import Run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class TutorialClassifier(nn.Module):
    """Embedding -> packed bidirectional LSTM -> additive attention -> linear, as tutorials write it."""

    def __init__(
        self, vocab_size: int, embedding_size: int, hidden_size: int, attention_size: int, num_classes: int, dropout: float
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        self.lstm = nn.LSTM(embedding_size, hidden_size, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(2 * hidden_size, attention_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, ids, lengths, mask):
        packed = pack_padded_sequence(self.dropout(self.embedding(ids)), lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        context, attention = self.attention(h, mask)
        return ClassifierOutput(self.head(self.dropout(context)), attention)


def pad_to(batch, length: int):
    """The tutorial way: every batch padded to the dataset's longest sequence."""
    ids = F.pad(batch.ids, (0, length - batch.ids.shape[1]))
    return ids, batch.lengths, torch.arange(length)[None, :] < batch.lengths[:, None]


def bucket_iterator_batches(lengths: torch.Tensor, size: int, seed: int, pool: int = 100) -> list[list[int]]:
    """torchtext's BucketIterator order: shuffled, sorted by length within pools of ``pool`` batches, batches shuffled."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    for start in range(0, len(order), pool * size):
        chunk = sorted(order[start : start + pool * size], key=lambda i: int(lengths[i]))
        batches += [chunk[i : i + size] for i in range(0, len(chunk) - size + 1, size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def run_library_steps(run: Run, batches) -> tuple[int, float]:
    """seqtext's side: ``batches`` through the training loop's own step (the task's loss, clipping, AdamW)."""
    lengths, tokens, start = run.task.train_set.lengths, 0, time.perf_counter()
    for indices in batches:
        run.step(indices, 0, False)
        tokens += int(lengths[indices].sum())
    return tokens, time.perf_counter() - start


def run_steps(model, optimizer, train_set, batches, pad_length=None, kind="fp32") -> tuple[int, float]:
    model.train()
    tokens, start = 0, time.perf_counter()
    for indices in batches:
        batch = collate([train_set[i] for i in indices])
        ids, lengths, mask = pad_to(batch, pad_length) if pad_length else (batch.ids, batch.lengths, batch.mask)
        with precision.autocast(kind, "cpu"):
            loss = F.cross_entropy(model(ids, lengths, mask).logits, batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        tokens += int(batch.lengths.sum())
    return tokens, time.perf_counter() - start


def measure(spec: str, steps: int, repeats: int, folder: Path) -> dict:
    name, _, max_length = spec.partition("@")
    overrides = ["--data.max_length", max_length] if max_length else []
    runs = {  # the recipe as `seqtext train` runs it, in fp32 and in bf16
        kind: Run(
            load_recipe(ROOT / "recipes" / f"{name}.yaml", [*overrides, "--train.precision", kind]),
            folder / f"{name}-{kind}",
            False,
            lambda message: None,
            None,
        )  # fmt: skip
        for kind in ("fp32", "bf16")
    }
    recipe, ours = runs["fp32"].recipe, runs["fp32"].model
    train_set = runs["fp32"].task.train_set
    config, classes = recipe.model, int(train_set.labels.max()) + 1
    theirs = TutorialClassifier(
        ours.embedding.num_embeddings, config.embedding_size, config.hidden_size, config.attention_size, classes, config.dropout
    )
    torch.manual_seed(recipe.seed)
    packed = TutorialClassifier(
        ours.embedding.num_embeddings, config.embedding_size, config.hidden_size, config.attention_size, classes, config.dropout
    )
    optimizers = {"baseline": make_optimizer(theirs, recipe.train), "bucketed": make_optimizer(packed, recipe.train)}
    bucketed = runs["fp32"].start_epoch()
    runs["bf16"].start_epoch()
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(recipe.seed)).tolist()
    size = recipe.batching.batch_size
    random_batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
    bucket_iterator = bucket_iterator_batches(train_set.lengths, size, recipe.seed)
    longest = int(train_set.lengths.max())
    rates = {"seqtext": [], "seqtext bf16": [], "bucketed": [], "baseline": []}
    sides = (
        ("seqtext", lambda window: run_library_steps(runs["fp32"], bucketed[window])),
        ("seqtext bf16", lambda window: run_library_steps(runs["bf16"], bucketed[window])),
        ("bucketed", lambda window: run_steps(packed, optimizers["bucketed"], train_set, bucket_iterator[window])),
        ("baseline", lambda window: run_steps(theirs, optimizers["baseline"], train_set, random_batches[window], longest)),
    )
    for repeat in range(repeats + 1):  # the first round warms up and is not counted
        window = slice(repeat * steps, (repeat + 1) * steps)
        for label, side in sides:
            tokens, seconds = side(window)
            if repeat:
                rates[label].append(tokens / seconds)
    for run in runs.values():
        run.close()
    padded = {
        "seqtext": sum(len(b) * int(train_set.lengths[b].max()) for b in bucketed),
        "bucketed": sum(len(b) * int(train_set.lengths[b].max()) for b in bucket_iterator),
        "baseline": len(random_batches) * size * longest,
    }
    real = int(train_set.lengths.sum())
    return {
        "name": spec,
        "rates": rates,
        "longest": longest,
        "efficiency": {k: real / v for k, v in padded.items()},
        "recipe": recipe,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[40], help="optimizer steps per timed round (one, or one per recipe)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per side, taking turns")
    parser.add_argument("--recipes", nargs="+", default=["sst2", "imdb"], help="recipe names; NAME@N truncates at N tokens")
    args = parser.parse_args()
    if len(args.steps) not in (1, len(args.recipes)):
        parser.error(f"--steps: give one count or one per recipe ({len(args.recipes)}), not {len(args.steps)}")
    steps = dict(zip(args.recipes, args.steps * len(args.recipes) if len(args.steps) == 1 else args.steps))
    rows = []
    for name in args.recipes:
        with tempfile.TemporaryDirectory() as folder:
            result = measure(name, steps[name], args.repeats, Path(folder))
        ours, fair, theirs, bf16 = (median(result["rates"][k]) for k in ("seqtext", "bucketed", "baseline", "seqtext bf16"))
        model, efficiency = result["recipe"].model, result["efficiency"]
        rows.append(
            f"| {name} | {steps[name]} | {model.embedding_size}/{model.hidden_size} {model.cell} {'bi' if model.bidirectional else 'uni'} | "
            f"{ours:,.0f} | {fair:,.0f} | **{ours / fair:.2f}x** | {theirs:,.0f} | {ours / theirs:.2f}x | "
            f"{efficiency['seqtext']:.3f} / {efficiency['bucketed']:.3f} / {efficiency['baseline']:.3f} (longest {result['longest']}) | "
            f"{bf16:,.0f} | **{bf16 / ours:.2f}x** |"
        )
        print(rows[-1], "runs:", {k: [round(r) for r in v] for k, v in result["rates"].items()}, flush=True)
    body = f"""## Training throughput of the classifier recipes

`python bench/train_throughput.py --steps {" ".join(map(str, args.steps))} --repeats {args.repeats} --recipes {" ".join(args.recipes)}`: each side
trains for the row's optimizer steps per round, taking turns, {args.repeats} rounds after one warm-up round; the table gives the
median real (unpadded) tokens per second, data loading and collate included. Seed 0, batches of 64; `imdb@400` is
the imdb recipe truncated at 400 tokens, `imdb` its whole reviews (at most 2,000 tokens).

| recipe | steps per round | embedding/hidden | seqtext tokens/s | bucketed + packed tokens/s | ratio | padded to the longest tokens/s | ratio | real / padded tokens: seqtext / bucketed / padded | seqtext bf16 tokens/s | bf16 / fp32 |
|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|
{chr(10).join(rows)}

Baselines (bench/train_throughput.py), both a bidirectional `nn.LSTM` over `pack_padded_sequence` with the
same sizes, attention and AdamW: **bucketed + packed**, batches as torchtext's BucketIterator made them
(pools of 100 batches sorted by length, each batch padded to its own longest text); **padded to the
longest**, random batches padded to the dataset's longest sequence after the recipe's truncation.
seqtext: the recipe itself (length-bucketed batches, each direction a one-way LSTM); seqtext bf16: the same
model and batches with the forward pass under `torch.autocast` in bf16 (`train.precision: bf16`).
"""
    write_section("train_throughput", body)
    print(body)


if __name__ == "__main__":
    main()
