"""Does this tree train exactly as another commit did? Trains SST-2 for 300 steps with seed 0 on the CPU
with both and compares ``metrics.jsonl`` (all but the wall-clock fields) and every weight and optimizer
tensor of ``best/`` and ``last/``, bit for bit, or within ``--rtol`` where two kernels may round apart.

    python tools/same_training.py --against COMMIT [--steps 300] [--recipe recipes/sst2.yaml] [--rtol 0]
                                  [--renamed OLD=NEW ...]

Extra options (``--tokenizer.kind word``) go to both runs. ``--renamed attention.=pooling.attention.``
compares the other commit's weights named ``attention.*`` with this tree's ``pooling.attention.*``: a
refactoring that renames a module keeps every value.

The other commit is checked out with ``git worktree`` into a temporary folder and run with this venv's
Python, so both use the same torch. Exit status 0 when everything is equal, 1 when anything differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
CLOCK_FIELDS = ("elapsed_s", "tokens_per_s")  # wall time: never equal between two runs


@contextlib.contextmanager
def checked_out(commit: str) -> Iterator[Path]:
    """``commit`` checked out with ``git worktree`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], check=True, cwd=ROOT)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True, cwd=ROOT)


def train(tree: Path, recipe: str, out: Path, steps: int, extra: list[str] = ()) -> float:
    """Train ``steps`` steps of ``recipe`` with the code in ``tree``; the wall-clock seconds it took."""
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
    command += ["--max-steps", str(steps), "--seed", "0", "--train.device", "cpu", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in CLOCK_FIELDS} for line in lines]


def close(a, b, rtol: float) -> bool:
    """Equal, or within ``rtol`` where both are floats: two numbers relatively (NaN equal to NaN, values near
    0 within rtol of 0), two float tensors of one dtype by the norm of their difference (element by element,
    entries near 0 would round far apart)."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.equal(b):
            return True
        if rtol == 0 or not a.is_floating_point() or not a.isnan().equal(b.isnan()):
            return False
        a, b = torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)  # NaN in the same places: alike
        return float((a - b).norm()) <= rtol * max(float(a.norm()), float(b.norm()))
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if rtol == 0 or not numbers:
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)


def renamed(tensors: dict, renames: list[tuple[str, str]]) -> dict:
    """``tensors`` with each name that starts with an old prefix given the new one."""
    out = {}
    for key, value in tensors.items():
        old, new = next(((old, new) for old, new in renames if key.startswith(old)), ("", ""))
        out[new + key[len(old) :]] = value
    return out


def differences(ours: Path, theirs: Path, rtol: float = 0.0, renames: list[tuple[str, str]] = ()) -> list[str]:
    found = []
    mine, other = metrics(ours), metrics(theirs)
    if len(mine) != len(other) or any(
        a.keys() != b.keys() or not all(close(a[k], b[k], rtol) for k in a) for a, b in zip(mine, other)
    ):
        found.append("metrics.jsonl differs")
    for name in ("best/model.safetensors", "last/model.safetensors", "last/trainer.safetensors"):
        a, b = load_file(str(ours / name)), renamed(load_file(str(theirs / name)), renames)
        if a.keys() != b.keys():
            found.append(f"{name}: different tensors")
        found += [f"{name}: {key} differs" for key in a if key in b and not close(a[key], b[key], rtol)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the commit to compare with (e.g. HEAD~3)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--recipe", default="recipes/sst2.yaml")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for floats (default 0: bit for bit)")
    parser.add_argument(
        "--renamed", nargs="+", default=[], metavar="OLD=NEW", help="weight-name prefixes renamed since --against"
    )
    args, extra = parser.parse_known_args()
    if any(not option.startswith("--") for option in extra[::2]):
        parser.error(f"extra options are --SECTION.FIELD VALUE pairs for both runs, not {' '.join(extra)}")
    if args.rtol < 0:
        parser.error(f"--rtol must be 0 or more, not {args.rtol}")
    if not all(pair.count("=") == 1 and pair[0] != "=" for pair in args.renamed):
        parser.error(f"--renamed takes OLD=NEW prefixes, not {' '.join(args.renamed)}")
    renames = [tuple(pair.split("=")) for pair in args.renamed]
    with checked_out(args.against) as theirs, tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        sides = ((theirs, "theirs"), (ROOT, "ours"))
        seconds = [train(tree, args.recipe, scratch / side, args.steps, extra) for tree, side in sides]
        found = differences(scratch / "ours", scratch / "theirs", args.rtol, renames)
    within = ("" if args.rtol == 0 else f", within rtol {args.rtol:g}") + "".join(f", {o} as {n}" for o, n in renames)
    print("\n".join(found) if found else f"same metrics and weights after {args.steps} steps as {args.against}{within}")
    print(
        f"wall time, one run each, start-up included: {args.against} {seconds[0]:.1f} s (first, from a new worktree "
        f"without bytecode caches), this tree {seconds[1]:.1f} s"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
