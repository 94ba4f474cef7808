"""A classifier with an n-gram bag (``model.ngrams``), taken apart: the encoder's scores alone, the bag's
alone, and their sum (what the model predicts), on one split, scored on the best checkpoint.

    python experiments/ngram_rate/ngram_parts.py runs/imdb-pretrained [--split test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ngram_rate import accuracy, scores  # noqa: E402

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.classifier.data import prepare_classification  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--split", default="test")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    model = seqtext.load(Path(args.run) / "best")
    if model.module.ngrams is None:
        raise SystemExit(f"{args.run}: this classifier has no n-gram bag (model.ngrams: 0)")
    recipe = model.recipe
    prepared = prepare_classification(recipe, splits=(args.split,), tokenizer=model.tokenizer.backend)
    module, classes = model.module.eval(), len(model.labels)
    both, labels = scores(
        lambda ids, lengths, mask: torch.cat(module(ids, lengths, mask).parts, 1), prepared.encoded[args.split], recipe, None
    )
    encoder, bag = both[:, :classes], both[:, classes:]  # (N, C) each
    rows = {"encoder alone": encoder, "n-gram bag alone": bag, "both (the model)": encoder + bag}
    accuracy_of = {name: accuracy(logits, labels) for name, logits in rows.items()}
    agree = float((encoder.argmax(1) == bag.argmax(1)).float().mean())
    for name, value in accuracy_of.items():
        print(f"{name}: {value:.4f}")
    print(f"the two halves agree on {agree:.2%}")
    lines = ["| scores | accuracy |", "|---|---:|", *(f"| {name} | {value:.4f} |" for name, value in accuracy_of.items())]
    body = (
        f"## A classifier with an n-gram bag, taken apart\n\n`python experiments/ngram_rate/ngram_parts.py {args.run} --split {args.split}`: "
        f"the best checkpoint's encoder and n-gram bag scored alone and summed on the {len(labels):,} texts of the "
        f"{args.split} split; the two halves give the same label on {agree:.2%} of them.\n\n" + "\n".join(lines) + "\n"
    )
    if not args.no_write:
        write_section("ngram_parts", body)


if __name__ == "__main__":
    main()
