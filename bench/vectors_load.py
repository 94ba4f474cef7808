"""How long reading pretrained word vectors takes: the first read (hash, parse, write the cache) against later
reads (from the cache), on the full GloVe 6B 50d file (400,000 words x 50).

Each first read gets an empty cache folder of its own, so that it parses; each later read goes through the
same ``read_vectors`` call, which then finds the file's hash in the cache's index and the parse beside it.

    OMP_NUM_THREADS=1 python bench/vectors_load.py [--source ../shared/vectors/glove.6B.50d.txt.gz] [--repeats 3]

Prints a Markdown table to stdout; it writes nothing to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_facts, median  # noqa: E402
from seqtext.vectors import WordVectors, read_vectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(source: str) -> tuple[float, WordVectors]:
    start = time.perf_counter()
    vectors = read_vectors(source)
    return time.perf_counter() - start, vectors


def bench_loads(source: str, repeats: int) -> tuple[dict[str, list[float]], int, int]:
    """Seconds of each first read (into a fresh cache folder) and each later read (from the last one)."""
    seconds = {"first read (hash, parse, write cache)": [], "later read (from cache)": []}
    with tempfile.TemporaryDirectory(prefix="seqtext-vectors-bench-") as scratch:
        for repeat in range(repeats):
            os.environ["SEQTEXT_CACHE"] = str(Path(scratch) / str(repeat))
            took, first = timed(source)
            seconds["first read (hash, parse, write cache)"].append(took)
        for _ in range(repeats):
            took, later = timed(source)
            seconds["later read (from cache)"].append(took)
            assert later.words == first.words and torch.equal(later.vectors, first.vectors)
    return seconds, len(first.words), first.dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "vectors" / "glove.6B.50d.txt.gz"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds, rows, dim = bench_loads(args.source, args.repeats)
    print(f"`read_vectors({Path(args.source).name!r})`: {rows:,} words x {dim}\n")
    print("| read | seconds (each repeat) | median s | rows/s |")
    print("|---|---|---:|---:|")
    for name, values in seconds.items():
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {each} | {median(values):.3f} | {rows / median(values):,.0f} |")
    print(f"\n{machine_facts()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
