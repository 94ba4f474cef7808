"""What a model costs to start: wall time and peak RSS of ``seqtext.load(RUN)`` plus one prediction, and of
``seqtext serve RUN`` until it answers ``/health``, for this tree and another commit, each in fresh
processes (median of ``--repeats``), one after another.

    python tools/startup.py RUN --against COMMIT [--repeats 5]

The other commit is checked out with ``git worktree`` and run with this venv's Python, as
tools/same_training.py does. ``RUN`` is a run or checkpoint directory of a classifier both trees can read.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from same_training import checked_out  # tools/ is this script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
LOAD = (
    "import resource, sys, time; started = time.perf_counter(); import seqtext; "
    "seqtext.load(sys.argv[1]).predict('A gorgeous, witty film.'); "
    "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
    "sorted(m for m in ('datasets', 'pandas') if m in sys.modules))"
)


def load(tree: Path, run: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, heavy modules imported) of loading and one prediction in a new process."""
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    run_in = dict(check=True, capture_output=True, text=True, env=env, cwd=tree)  # cwd: `python -c` puts it first on sys.path
    out = subprocess.run([sys.executable, "-c", LOAD, run], **run_in).stdout
    seconds, rss, heavy = out.split(" ", 2)
    return float(seconds), float(rss), heavy.strip()


def serve(tree: Path, run: str) -> tuple[float, float]:
    """(seconds until /health answers, peak RSS in MiB then) of ``seqtext serve`` in a new process."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    command = [sys.executable, "-c", "import sys; from seqtext.cli import main; sys.exit(main())", "serve", run]
    started = time.perf_counter()
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"],
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        cwd=tree,  # `python -c` puts the working directory first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"seqtext serve from {tree} exited with {server.returncode}") from None
                time.sleep(0.02)
        seconds = time.perf_counter() - started
        status = Path(f"/proc/{server.pid}/status").read_text()
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
    finally:
        server.terminate()
        server.wait()
    return seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a classifier's run or checkpoint directory")
    parser.add_argument("--against", required=True, help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    run = str(Path(args.run).resolve())
    rows = []
    with checked_out(args.against) as tree:
        for name, where in ((args.against, tree), ("this tree", ROOT)):
            load(where, run), serve(where, run)  # a first run of each writes the bytecode caches
            loads = [load(where, run) for _ in range(args.repeats)]
            serves = [serve(where, run) for _ in range(args.repeats)]
            load_s, load_rss = statistics.median(s for s, _, _ in loads), statistics.median(r for _, r, _ in loads)
            serve_s, serve_rss = statistics.median(s for s, _ in serves), statistics.median(r for _, r in serves)
            heavy = loads[0][2]
            rows.append(f"| {name} | {load_s:.2f} s | {load_rss:.0f} MiB | {heavy} | {serve_s:.2f} s | {serve_rss:.0f} MiB |")
    print(f"median of {args.repeats} fresh processes each\n")
    print("| tree | load + predict | peak RSS | heavy modules imported | serve until /health | serve peak RSS |")
    print("|---|---:|---:|---|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
