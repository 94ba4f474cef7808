"""Does this tree train exactly as another commit did? Trains SST-2 for 300 steps with seed 0 on the CPU
with both and compares ``metrics.jsonl`` (all but the wall-clock fields) and every weight and optimizer
tensor of ``best/`` and ``last/``, bit for bit.

    python tools/same_training.py --against COMMIT [--steps 300] [--recipe recipes/sst2.yaml]

The other commit is checked out with ``git worktree`` into a temporary folder and run with this venv's
Python, so both use the same torch. Exit status 0 when everything is equal, 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
CLOCK_FIELDS = ("elapsed_s", "tokens_per_s")  # wall time: never equal between two runs


def train(tree: Path, recipe: str, out: Path, steps: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree), "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable,
        "-c",
        "import sys; from seqtext.cli import main; sys.exit(main())",
        "train",
        str(tree / recipe),
        "--out",
        str(out),
    ]
    command += ["--max-steps", str(steps), "--seed", "0", "--train.device", "cpu"]
    subprocess.run(command, check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL)


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in CLOCK_FIELDS} for line in lines]


def differences(ours: Path, theirs: Path) -> list[str]:
    found = []
    if metrics(ours) != metrics(theirs):
        found.append("metrics.jsonl differs")
    for name in ("best/model.safetensors", "last/model.safetensors", "last/trainer.safetensors"):
        a, b = load_file(str(ours / name)), load_file(str(theirs / name))
        if a.keys() != b.keys():
            found.append(f"{name}: different tensors")
        found += [f"{name}: {key} differs" for key in a if key in b and not a[key].equal(b[key])]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the commit to compare with (e.g. HEAD~3)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--recipe", default="recipes/sst2.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        subprocess.run(["git", "worktree", "add", "--detach", str(scratch / "tree"), args.against], check=True, cwd=ROOT)
        try:
            train(scratch / "tree", args.recipe, scratch / "theirs", args.steps)
            train(ROOT, args.recipe, scratch / "ours", args.steps)
            found = differences(scratch / "ours", scratch / "theirs")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(scratch / "tree")], check=True, cwd=ROOT)
    print("\n".join(found) if found else f"same metrics and weights after {args.steps} steps as {args.against}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
