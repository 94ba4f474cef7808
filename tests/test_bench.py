"""The benchmark runner keeps working: `python -m bench` lists its benchmarks and runs one in quick mode.
(The benchmarks themselves never run in the test suite: their numbers are in bench/RESULTS.md.)"""

import re
import subprocess
import sys

from .conftest import ROOT


def test_the_runner_lists_every_benchmark_script():
    listed = subprocess.run([sys.executable, "-m", "bench", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - {"__init__.py", "__main__.py", "common.py"}
    assert all(f"bench/{script}" in listed.stdout for script in scripts)


def test_quick_mode_writes_its_own_results_file_and_leaves_results_md_alone(tmp_path):
    results, before = tmp_path / "quick.md", (ROOT / "bench" / "RESULTS.md").read_bytes()
    command = [sys.executable, "-m", "bench", "quick", "--only", "gradflow", "--results", str(results)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    text = results.read_text()
    assert "Last run on: CPU:" in text and "<!-- bench:gradflow -->" in text and "| tanh RNN |" in text
    section = text.split("<!-- bench:gradflow -->")[1].split("<!-- /bench:gradflow -->")[0]
    assert re.search(r"\nRan on \d{4}-\d\d-\d\d: CPU: .+; \d+ cores; torch ", section)  # each section names its machine
    assert (ROOT / "bench" / "RESULTS.md").read_bytes() == before
