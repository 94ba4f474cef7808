"""In-domain word vectors for the default classifier: fastText skip-gram trained on IMDB's train and unlabelled
reviews (never its test split), tokenized exactly as seqtext's word tokenizer reads text, then written beside
GloVe 6B 50d as one fastText ``.vec`` file: each word's GloVe vector followed by its IMDB vector (zeros for the
half a word lacks). The classifier reads it as any vector file: ``--model.vectors runs/vectors/glove+imdb.100d.vec``.

    python experiments/vectors_ablation/make_indomain_vectors.py --out runs/vectors [--dim 50 --epochs 5 --threads 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import fasttext
import numpy as np
from tokenizers import normalizers, pre_tokenizers

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SEQTEXT_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))

from seqtext.vectors import read_vectors, resolve  # noqa: E402


def corpus(out: Path) -> Path:
    """IMDB train + unsup, one review a line, as seqtext's lowercased word tokenizer splits it."""
    normalizer = normalizers.Sequence([normalizers.Replace("<br />", " "), normalizers.NFKC(), normalizers.Lowercase()])
    words = pre_tokenizers.Whitespace()
    path = out / "imdb-train-unsup.txt"
    with path.open("w") as sink:
        for split in ("train", "unsup"):
            with gzip.open(DATA / "imdb" / f"{split}.jsonl.gz", "rt") as rows:
                for line in rows:
                    text = normalizer.normalize_str(json.loads(line)["text"])
                    sink.write(" ".join(word for word, _ in words.pre_tokenize_str(text)) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "vectors")
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    text = corpus(args.out)
    print(f"corpus {text} in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    model = fasttext.train_unsupervised(str(text), model="skipgram", dim=args.dim, epoch=args.epochs, minCount=5,
                                        thread=args.threads)  # fmt: skip
    print(f"skip-gram: {len(model.words):,} words in {time.perf_counter() - start:.0f} s", flush=True)
    glove = read_vectors(resolve("glove.6B.50d"))
    imdb = {word: model.get_word_vector(word) for word in model.words}
    index = glove.index()
    words = list(glove.words) + [word for word in model.words if word not in index]
    path = args.out / f"glove+imdb.{glove.dim + args.dim}d.vec"
    with path.open("w") as sink:
        sink.write(f"{len(words)} {glove.dim + args.dim}\n")
        zeros_glove, zeros_imdb = np.zeros(glove.dim, np.float32), np.zeros(args.dim, np.float32)
        for word in words:
            row = index.get(word)
            left = glove.vectors[row].numpy() if row is not None else zeros_glove
            right = imdb.get(word, zeros_imdb)
            sink.write(word + " " + " ".join(f"{x:.5f}" for x in np.concatenate([left, right])) + "\n")
    print(f"wrote {path}: {len(words):,} words ({len(words) - len(glove.words):,} only in IMDB)")


if __name__ == "__main__":
    main()
