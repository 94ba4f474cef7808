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
    command = [sys.executable, "-m", "bench", "quick", "--only", "step_time", "--results", str(results)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    text = results.read_text()
    assert "Last run on: CPU:" in text and "<!-- bench:step_time -->" in text and "| sst2 |" in text
    section = text.split("<!-- bench:step_time -->")[1].split("<!-- /bench:step_time -->")[0]
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


@pytest.mark.slow
def test_peers_score_a_labelled_folder_into_the_results_file_it_is_given(tmp_path, data_dir):
    """bench/peers.py on a folder of split files: a row per peer (fastText + vectors among them when fasttext
    is installed, else the note saying why not) with accuracy and macro-F1, written to --results only."""
    import gzip
    import importlib.util
    import os
    from itertools import islice

    folder, results, before = tmp_path / "sst2_bit", tmp_path / "peers.md", (ROOT / "bench" / "RESULTS.md").read_bytes()
    folder.mkdir()
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        (folder / "train.jsonl").write_text("".join(islice(f, 400)))
    with gzip.open(data_dir / "sst2" / "validation.jsonl.gz", "rt") as f:
        (folder / "validation.jsonl").write_text("".join(islice(f, 100)))
        (folder / "test.jsonl").write_text("".join(islice(f, 100)))
    command = [sys.executable, "bench/peers.py", str(folder), "--results", str(results)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    section = results.read_text().split("<!-- bench:peers_sst2_bit -->")[1].split("<!-- /bench:peers_sst2_bit -->")[0]
    rows = dict(re.findall(r"\n\| sst2_bit \| ([^|(]+?) (?:\([^|]*\) )?\| (\d\.\d{4} \| \d\.\d{4}) \|", section))
    peers = ["NBSVM-bi", "TF-IDF 1-2 grams + LR"]
    if importlib.util.find_spec("fasttext") is not None:
        peers += ["fastText bigrams", "fastText + vectors"]
    else:
        assert "fastText peers skipped: the fasttext package is not installed" in section
    assert sorted(rows) == sorted(peers)
    for figures in rows.values():  # test accuracy, macro-F1
        assert all(0 <= float(figure) <= 1 for figure in figures.split(" | "))
    assert (ROOT / "bench" / "RESULTS.md").read_bytes() == before
