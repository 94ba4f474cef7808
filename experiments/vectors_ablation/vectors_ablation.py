"""What the default classifier's parts are worth, on validation: seqtext's default recipe (`seqtext recipe
default`) on a dataset, and the same with one part changed at a time: no vectors, frozen vectors, both
(a frozen copy beside the fine-tuned one), a closed vocabulary (the training split's words only), no
n-gram bag; and two levers, longer texts and adversarial training. Each run is
`seqtext train --data NAME --out runs/ablation/NAME-VARIANT [overrides]`, seed 0; a run already there is
read, not trained again. Reported: the best validation accuracy and macro-F1 (where the default's
settings are chosen), and the share of the validation and test splits' tokens that the run's vocabulary
turns into <unk> (the open vocabulary's effect). Test accuracy is not read here.

    python experiments/vectors_ablation/vectors_ablation.py sst2 trec [--variants default novectors ...] [--jobs 2] [--extra --train.epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.classifier.data import load_labelled  # noqa: E402
from seqtext.tokenizer import UNK_ID  # noqa: E402

VARIANTS = {
    "default": [],
    "novectors": ["--model.vectors", "null"],
    "frozen": ["--model.vectors_trainable", "false"],
    "both": ["--model.vectors_trainable", "both"],
    "closedvocab": ["--model.vectors_vocab", "0"],
    "nobag": ["--model.ngrams", "0"],
    # two levers beside the parts: longer texts (the bag and the encoder read 1,000 tokens, not 400), and
    # adversarial training on the embeddings (Miyato et al. 2016) at a move of 3 (L2 over each text)
    "long": ["--data.max_length", "1000"],
    "adversarial": ["--train.adversarial", "3.0"],
    # the next levers: in-domain vectors (skip-gram on IMDB train + unlabelled, beside GloVe; made by
    # experiments/vectors_ablation/make_indomain_vectors.py), and a wider encoder
    "indomain": ["--model.vectors", str(ROOT / "runs" / "vectors" / "glove+imdb.100d.vec"), "--model.embedding_size", "178"],
    "wide": ["--model.hidden_size", "256", "--model.attention_size", "256"],
}


def run(dataset: str, variant: str, folder: Path, extra: list[str]) -> Path:
    out = folder / f"{dataset}-{variant}"
    if not (out / "best").exists():
        command = [sys.executable, "-m", "seqtext", "train", "--data", dataset, "--out", str(out), *VARIANTS[variant], *extra]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return out


def unknown_share(model, split: str) -> float:
    """The share of ``split``'s tokens that ``model``'s tokenizer reads as <unk>."""
    data = load_labelled(model.recipe)
    ids = model.checkpoint.tokenizer.encode_batch(list(data.splits[split]["text"]))
    tokens = sum(map(len, ids))
    return sum(row.count(UNK_ID) for row in ids) / max(1, tokens)


def row(dataset: str, variant: str, out: Path) -> dict:
    model = seqtext.load(out)
    figures = json.loads((out / "best" / "card.json").read_text())["validation"]
    return {"dataset": dataset, "variant": variant, "accuracy": figures["accuracy"], "macro_f1": figures["macro_f1"],
            "step": figures["step"], "vocabulary": model.checkpoint.tokenizer.vocab_size,
            "unk_validation": unknown_share(model, "validation"), "unk_test": unknown_share(model, "test")}  # fmt: skip


def table(rows: list[dict], command: str) -> str:
    lines = [
        "## The default classifier, taken apart (validation)",
        "",
        f"`{command}` (seed 0, one thread a run). Each variant changes one part of `seqtext recipe default`;",
        "the settings are chosen on these validation figures. <unk>: the share of the split's tokens outside",
        "the run's vocabulary.",
        "",
        "| set | variant | validation accuracy | validation macro-F1 | best step | vocabulary | <unk> validation | <unk> test |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['variant']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['step']:,} | "
                     f"{r['vocabulary']:,} | {r['unk_validation']:.2%} | {r['unk_test']:.2%} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ablation")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one thread each (default: 1)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="overrides for every run (last option)")
    args = parser.parse_args()
    pairs = [(dataset, variant) for dataset in args.datasets for variant in args.variants]
    with ThreadPoolExecutor(args.jobs) as pool:  # each run is its own process
        outs = list(pool.map(lambda pair: run(*pair, args.runs, args.extra), pairs))
    rows = []
    for (dataset, variant), out in zip(pairs, outs):
        rows.append(row(dataset, variant, out))
        print(json.dumps(rows[-1]), flush=True)
    subset = args.variants != list(VARIANTS)  # a subset of the variants gets a section of its own
    command = " ".join(["python experiments/vectors_ablation/vectors_ablation.py", *args.datasets, *(["--variants", *args.variants] if subset else []),
                        *(["--extra", *args.extra] if args.extra else [])])  # fmt: skip
    write_section("_".join(["vectors_ablation", *args.datasets, *(args.variants if subset else [])]), table(rows, command))


if __name__ == "__main__":
    main()
