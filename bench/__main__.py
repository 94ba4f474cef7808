"""Run the benchmarks: ``python -m bench quick`` (a few minutes) or ``python -m bench full`` (hours).

bench/ holds the regression benchmarks (speed, memory, held-out quality, the server); studies that answered
a question once live in experiments/, each with a README. Each benchmark is its own script in bench/, run here as a separate process one after another (never two
at once: on 2 cores a second process halves the first one's speed). ``full`` runs what bench/RESULTS.md
records, with the arguments it records, and rewrites its sections and the machine facts at the top.
``quick`` runs the short benchmarks with fewer steps and repeats, into a separate file (default
bench/RESULTS.quick.md), so that rough numbers never overwrite measured ones.

    python -m bench quick [--only NAME ...] [--results FILE]
    python -m bench full [--only NAME ...]
    python -m bench list
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS_ENV, machine_facts

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SEQTEXT = [PYTHON, "-m", "seqtext"]

# name -> (full command, quick command or None when it has no short form). Commands run from the repository root.
BENCHMARKS: dict[str, tuple[list[str], list[str] | None]] = {
    "tokenize_batch": (["bench/tokenize_batch.py"], ["bench/tokenize_batch.py", "--repeats", "1"]),
    "step_time": (["bench/step_time.py", "--steps", "60"], ["bench/step_time.py", "--steps", "10", "--recipes", "sst2"]),
    "train_throughput": (
        ["bench/train_throughput.py", "--recipes", "sst2", "imdb@400", "imdb", "--steps", "15", "15", "5", "--repeats", "3"],
        ["bench/train_throughput.py", "--steps", "3", "--repeats", "1", "--recipes", "sst2"],
    ),
    "scaling": (["bench/scaling.py", "--steps", "8"], ["bench/scaling.py", "--steps", "2"]),
    "encoder_speed": (["bench/encoder_speed.py"], ["bench/encoder_speed.py", "--repeats", "2"]),
    "lm_speed": (["bench/lm_speed.py"], ["bench/lm_speed.py", "--chars", "100", "--repeats", "1", "--steps", "2"]),
    "forecast": (
        ["bench/forecast.py", "--seeds", "0", "1", "2", "--horizon", "10"],
        ["bench/forecast.py", "--seeds", "0", "--png-dir", "{tmp}"],
    ),
    "quality_sst2": (["bench/quality.py", "sst2", "--seeds", "0", "1", "2"], None),
    "quality_trec": (["bench/quality.py", "trec", "--seeds", "0", "1", "2"], None),
    "quality_imdb": (["bench/quality.py", "imdb", "--seeds", "0"], None),
    "baseline_quality_sst2": (["bench/baseline_quality.py", "sst2", "--seed", "0"], None),
    "shakespeare": (["-m", "seqtext", "train", "recipes/shakespeare.yaml", "--out", "runs/shakespeare"], None),
    "lm_curve": (["bench/lm_curve.py", "runs/shakespeare"], None),
    "memory": (["bench/memory.py"], None),
    "pretrain": (["-m", "seqtext", "train", "recipes/reviews-lm.yaml", "--out", "runs/reviews-lm/forward"], None),
    "pretrain_backward": (
        ["-m", "seqtext", "train", "recipes/reviews-lm.yaml", "--data.reverse", "true", "--out", "runs/reviews-lm/backward"],
        None,
    ),
    "imdb_pretrained": (["-m", "seqtext", "train", "recipes/imdb-pretrained.yaml", "--out", "runs/imdb-pretrained"], None),
    "sst2_pretrained": (["-m", "seqtext", "train", "recipes/sst2-pretrained.yaml", "--out", "runs/sst2-pretrained"], None),
    "sst2_run": (["-m", "seqtext", "train", "recipes/sst2.yaml", "--out", "runs/sst2"], None),
    "trec_run": (["-m", "seqtext", "train", "recipes/trec.yaml", "--out", "runs/trec"], None),
    "peers": (
        ["bench/peers.py", "trec", "sst2", "imdb", "--seqtext", "runs/trec", "runs/sst2", "runs/imdb-pretrained"],
        None,
    ),
    "inference": (
        "bench/inference.py --run sst2=runs/sst2 --run imdb=runs/imdb-pretrained --batch1 300 --accuracy-texts 5000".split(),
        None,
    ),
    "serve_load": (
        ["bench/serve_load.py", "--run", "sst2=runs/sst2", "--run", "imdb=runs/imdb-pretrained", "--seconds", "10"],
        None,
    ),  # wrk: apt-get install wrk
    "vectors_load": (["bench/vectors_load.py"], ["bench/vectors_load.py", "--repeats", "1"]),
    # the default classifier's held-out quality (seeds 0-2) on each set
    "quality_default_sst2": (["bench/quality.py", "default", "--data", "sst2", "--seeds", "0", "1", "2"], None),
    "quality_default_trec": (["bench/quality.py", "default", "--data", "trec", "--seeds", "0", "1", "2"], None),
    "quality_default_imdb": (["bench/quality.py", "default", "--data", "imdb", "--seeds", "0", "1", "2"], None),
    "fuzz_server": (["bench/fuzz_server.py", "--examples", "1000"], ["bench/fuzz_server.py", "--examples", "20"]),  # .[fuzz]
    # fp32 against bf16: the recipes at equal minutes (seqtext train itself)
    "precision": (["bench/precision.py", "--minutes", "3"], ["bench/precision.py", "--recipes", "sst2", "--minutes", "0.5"]),
}


def plan(mode: str, only: list[str] | None) -> list[tuple[str, list[str]]]:
    unknown = sorted(set(only or []) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"python -m bench: unknown benchmark {', '.join(unknown)} (see python -m bench list)")
    chosen = []
    for name, (full, quick) in BENCHMARKS.items():
        command = full if mode == "full" else quick
        if command is not None and (not only or name in only):
            chosen.append((name, command))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("quick", "full", "list"))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--results", help="quick mode: the file to write (default bench/RESULTS.quick.md)")
    args = parser.parse_args(argv)
    if args.mode == "list":
        for name, (full, quick) in BENCHMARKS.items():
            print(f"{name:24} full: {' '.join(full)}" + ("" if quick else "   (full only)"))
        return 0
    environment = dict(os.environ)
    tmp = ROOT / "runs" / "bench-quick"
    if args.mode == "quick":
        environment[RESULTS_ENV] = str(Path(args.results or ROOT / "bench" / "RESULTS.quick.md").resolve())
        tmp.mkdir(parents=True, exist_ok=True)
    elif RESULTS_ENV in environment:
        del environment[RESULTS_ENV]
    print(machine_facts(), flush=True)
    for name, command in plan(args.mode, args.only):
        if name == "shakespeare":
            subprocess.run(["rm", "-rf", str(ROOT / "runs" / "shakespeare")], check=True)
        command = [part.replace("{tmp}", str(tmp)) for part in command]
        python = PYTHON
        started = time.perf_counter()
        print(f"== {name}: {python} {' '.join(command)}", flush=True)
        result = subprocess.run([python, *command], cwd=ROOT, env=environment)
        print(f"== {name}: exit {result.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
        if result.returncode != 0:
            return result.returncode
    print(f"results: {environment.get(RESULTS_ENV, ROOT / 'bench' / 'RESULTS.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
