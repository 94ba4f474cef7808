"""The benchmark runner keeps working: `python -m bench` lists its benchmarks and runs one in quick mode.
(The benchmarks themselves never run in the test suite: their numbers are in bench/RESULTS.md.)"""

import re
import subprocess
import sys

import pytest

from .conftest import ROOT


def _bench_status() -> str:
    """git's view of bench/: the tracked files changed or added there, and the untracked ones."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.slow
def test_the_runner_lists_every_benchmark_script():
    listed = subprocess.run([sys.executable, "-m", "bench", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - {"__init__.py", "__main__.py", "common.py"}
    assert sorted(script for script in scripts if f"bench/{script}" not in listed.stdout) == []


@pytest.mark.slow
def test_quick_mode_writes_its_own_results_file_and_leaves_results_md_alone(tmp_path):
    results, before = tmp_path / "quick.md", (ROOT / "bench" / "RESULTS.md").read_bytes()
    tracked = subprocess.run(["git", "ls-files", "-z", "bench"], cwd=ROOT, capture_output=True, check=True).stdout
    contents = {name: (ROOT / name.decode()).read_bytes() for name in tracked.split(b"\0") if name}
    status = _bench_status()
    command = [sys.executable, "-m", "bench", "quick", "--only", "gradflow", "--results", str(results)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    text = results.read_text()
    assert "Last run on: CPU:" in text and "<!-- bench:gradflow -->" in text and "| tanh RNN |" in text
    section = text.split("<!-- bench:gradflow -->")[1].split("<!-- /bench:gradflow -->")[0]
    assert re.search(r"\nRan on \d{4}-\d\d-\d\d: CPU: .+; \d+ cores; torch ", section)  # each section names its machine
    assert (ROOT / "bench" / "RESULTS.md").read_bytes() == before
    assert _bench_status() == status  # quick mode writes no file git sees: its plots go to runs/bench-quick
    assert {name: (ROOT / name.decode()).read_bytes() for name in contents} == contents


def test_every_quick_command_sends_its_plots_to_the_scratch_folder():
    """A script with a --png or --png-dir option writes a tracked plot by default: quick mode must redirect it."""
    from bench.__main__ import plan

    for name, command in plan("quick", None):
        source = (ROOT / command[0]).read_text() if command[0].endswith(".py") else ""
        for option in ("--png", "--png-dir"):
            if f'"{option}"' in source:
                assert option in command, f"{name}: quick mode leaves {option} at its tracked default"
                assert command[command.index(option) + 1].startswith("{tmp}/") or command[command.index(option) + 1] == "{tmp}"
