"""Shared by the benchmarks: machine facts, repeated alternating timings, and RESULTS.md sections.

Each benchmark owns one section of bench/RESULTS.md, between ``<!-- bench:NAME -->`` markers, and
rewrites only that section, ending it with the machine and the day it ran on (the machines these runs get
differ from session to session); the machine facts at the top are those of the newest run.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS_ENV = "SEQTEXT_BENCH_RESULTS"  # where write_section writes instead (python -m bench quick sets it)


def results_path() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or Path(__file__).with_name("RESULTS.md"))


def machine_facts() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"- CPU: {cpu}; {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} threads; "
        f"Python {platform.python_version()}"
    )


def alternate(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, taking turns, so that drift in the machine hits all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_section(name: str, body: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or add it), stamped with the machine and the day,
    and refresh the machine facts at the top."""
    results = results_path()
    text = results.read_text() if results.exists() else "# Benchmark results\n\n<!-- machine -->\n<!-- /machine -->\n"
    machine = machine_facts()[2:]
    facts = f"<!-- machine -->\nLast run on: {machine}\n<!-- /machine -->"
    text = re.sub(r"<!-- machine -->.*?<!-- /machine -->", lambda _: facts, text, flags=re.S)
    stamp = f"Ran on {time.strftime('%Y-%m-%d')}: {machine}."
    section = f"<!-- bench:{name} -->\n{body.strip()}\n\n{stamp}\n<!-- /bench:{name} -->"
    pattern = rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->"
    if re.search(pattern, text, re.S):
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n{section}\n"
    results.write_text(text)
