"""The n-gram bag alone (``model.ngrams: 2``) on IMDB at several peak learning rates: how train.ngram_lr_scale
was chosen for recipes/imdb-pretrained.yaml.

With ``model.ngram_loss: separate`` the bag trains on its own loss, so its weights follow the same path
with or without the encoder beside it (bar gradient clipping, which the recipe's norms do not reach). This
trains the bag alone with the recipe's batches, schedule (warmup, cosine over its 1,760 steps) and AdamW
without weight decay, and scores it on the recipe's validation split; with ``--encoder RUN`` it also
scores the bag's scores added to that run's encoder's (``parts[0]`` of its best checkpoint), which is what
the classifier predicts. Validation only: the test split is not read.

    python experiments/ngram_rate/ngram_rate.py --rates 0.1 0.3 1.0 3.0 [--encoder runs/imdb-pretrained-separate]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.batching import collate  # noqa: E402
from seqtext.classifier.data import prepare_classification  # noqa: E402
from seqtext.nn import NgramBag  # noqa: E402
from seqtext.optim import learning_rate  # noqa: E402
from seqtext.pipeline import bucket_sampler  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def batches(encoded, recipe, shuffle: bool, epoch: int = 0):
    sampler = bucket_sampler(encoded, recipe.batching, recipe.seed, shuffle)
    sampler.set_epoch(epoch)
    return DataLoader(encoded, batch_sampler=sampler.batches() if shuffle else sampler, collate_fn=collate)


def scores(module, encoded, recipe, part: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) validation scores in the unshuffled bucket order, and the labels (N,)."""
    out, labels = [], []
    with torch.no_grad():
        for batch in batches(encoded, recipe, shuffle=False):
            result = module(batch.ids, batch.lengths, batch.mask)
            out.append(result if part is None else result.parts[part])
            labels.append(batch.labels)
    return torch.cat(out), torch.cat(labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "imdb-pretrained.yaml"))
    parser.add_argument("--encoder", help="a run of the recipe whose encoder's scores the bag's are added to")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, {"model": {"encoder_from": None}})
    prepared = prepare_classification(recipe)
    train, validation = prepared.encoded["train"], prepared.encoded["validation"]
    steps = recipe.train.epochs * len(bucket_sampler(train, recipe.batching, recipe.seed))
    encoder = None
    if args.encoder:
        model = seqtext.load(Path(args.encoder) / "best")
        encoder, _ = scores(model.module.eval(), validation, recipe, part=0)
    rows = []
    for rate in args.rates:
        torch.manual_seed(recipe.seed)
        bag = NgramBag(
            prepared.tokenizer.vocab_size, len(prepared.data.label_map), recipe.model.ngrams, recipe.model.ngram_buckets
        )
        optimizer = torch.optim.AdamW(bag.parameters(), lr=rate, weight_decay=0.0, fused=True)
        config = load_recipe(args.recipe, {"train": {"lr": rate}}).train
        step = 0
        for epoch in range(recipe.train.epochs):
            for batch in batches(train, recipe, shuffle=True, epoch=epoch):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(config, step, steps)
                loss = F.cross_entropy(bag(batch.ids, batch.mask), batch.labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
        logits, labels = scores(lambda ids, lengths, mask, bag=bag: bag(ids, mask), validation, recipe, part=None)
        row = {"rate": rate, "bag": accuracy(logits, labels)}
        if encoder is not None:
            row["sum"] = accuracy(encoder + logits, labels)
        rows.append(row)
        print(row, flush=True)
    command = f"python experiments/ngram_rate/ngram_rate.py --rates {' '.join(map(str, args.rates))}" + (
        f" --encoder {args.encoder}" if args.encoder else ""
    )
    header = "| peak rate | train.ngram_lr_scale | bag alone, validation |" + (
        " encoder + bag, validation |" if encoder is not None else ""
    )
    lines = [header, "|---:|---:|---:|" + ("---:|" if encoder is not None else "")]
    for row in rows:
        line = f"| {row['rate']:g} | {row['rate'] / recipe.train.lr:g} | {row['bag']:.4f} |"
        lines.append(line + (f" {row['sum']:.4f} |" if "sum" in row else ""))
    body = (
        f"## The n-gram bag's learning rate (IMDB validation)\n\n`{command}`: the bag alone with {Path(args.recipe).name}'s "
        f"batches and schedule ({steps:,} steps, seed {recipe.seed}), scored on the {len(validation):,} validation reviews"
        + (f"; beside it, its scores added to the encoder of {args.encoder}'s best checkpoint" if encoder is not None else "")
        + ".\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if not args.no_write:
        write_section("ngram_rate", body)


if __name__ == "__main__":
    main()
