"""`seqtext serve` fuzzed from its own OpenAPI schema: schemathesis generates requests for every endpoint
(valid and invalid ones) and checks each answer: no 5xx, a status the schema lists, the content type and
body the schema gives. Four servers, one after another: a classifier and a language model, each with and
without an API key (the keyed ones fuzzed with the key; a plain request without it must get 401).

    python bench/fuzz_server.py [--examples 1000] [--classifier RUN] [--language-model RUN]

Without runs, it trains a tiny classifier (SST-2 rows) and a tiny character model (Tiny Shakespeare) for a
few steps: the fuzz is about the server, not the model. Needs schemathesis (`pip install -e '.[fuzz]'`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402
from tests.server import start  # noqa: E402

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
KEY = "fuzz-key"


def tiny_runs(folder: Path) -> dict[str, Path]:
    """A classifier and a character model trained for a few steps on slices of the shared data."""
    from seqtext.recipe import load_recipe
    from seqtext.training import train

    sizes = ["--model.embedding_size", "16", "--model.hidden_size", "16"]
    shakespeare = folder / "shakespeare.txt"
    shakespeare.write_text((ROOT.parent / "shared/data/tinyshakespeare/input.txt").read_text()[:20_000])
    runs = {"classifier": folder / "classifier", "language_model": folder / "language_model"}
    train(load_recipe(ROOT / "recipes/sst2.yaml", ["--train.max_steps", "20", *sizes, "--model.attention_size", "16"]),
          runs["classifier"], progress=False)  # fmt: skip
    train(load_recipe(ROOT / "recipes/shakespeare.yaml", ["--data.dataset", str(shakespeare), "--train.max_steps", "20", *sizes]),
          runs["language_model"], progress=False)  # fmt: skip
    return runs


def fuzz(run: Path, key: str | None, examples: int, seed: int, report: Path) -> dict:
    """One server, fuzzed: schemathesis's counts (cases, failures by check) and the status codes it saw."""
    server, base = start(run, *(["--api-key", key] if key else []), threads=1)
    try:
        header = ["-H", f"Authorization: Bearer {key}"] if key else []
        command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json", "--checks", CHECKS,
                   "-n", str(examples), "--seed", str(seed), "--workers", "1", "--no-color", "--report", "ndjson",
                   "--report-ndjson-path", str(report), "--generation-database", "none", *header]  # fmt: skip
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        unkeyed = httpx.post(f"{base}/v1/classify", json={"texts": ["x"]}).status_code if key else None
        alive = httpx.get(f"{base}/health").status_code
    finally:
        server.kill()
        server.wait()
    found = read_report(report)
    return {**found, "exit": done.returncode, "seconds": seconds, "unkeyed": unkeyed, "alive": alive, "tail": done.stdout[-1500:]}


def read_report(path: Path) -> dict:
    """Requests, the statuses answered and the failed checks (by check name), from schemathesis's NDJSON events."""
    statuses: dict[int, int] = {}
    failures: dict[str, int] = {}
    cases = 0
    for line in path.read_text().splitlines():
        event = json.loads(line)
        recorder = (event.get("ScenarioFinished") or {}).get("recorder") or {}
        for interaction in (recorder.get("interactions") or {}).values():
            status = ((interaction or {}).get("response") or {}).get("status_code")
            if status is not None:
                cases += 1
                statuses[status] = statuses.get(status, 0) + 1
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                if check.get("status") == "failure":
                    failures[check["name"]] = failures.get(check["name"], 0) + 1
    return {"cases": cases, "statuses": dict(sorted(statuses.items())), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="cases per API operation and phase (default: 1000)")
    parser.add_argument("--classifier", type=Path, help="a classifier run (default: a tiny one trained here)")
    parser.add_argument("--language-model", type=Path, help="a language model run (default: a tiny one trained here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        runs = tiny_runs(scratch) if not (args.classifier and args.language_model) else {}
        runs["classifier"] = args.classifier or runs["classifier"]
        runs["language_model"] = args.language_model or runs["language_model"]
        rows = []
        for kind, run in runs.items():
            for key in (None, KEY):
                found = fuzz(run, key, args.examples, args.seed, scratch / f"{kind}-{bool(key)}.ndjson")
                print(json.dumps({"kind": kind, "key": bool(key), **found}), flush=True)
                rows.append((kind, key, found))
    write_section("fuzz_server", table(rows, args))


def table(rows, args) -> str:
    lines = [
        "## The server fuzzed from its OpenAPI schema (schemathesis)",
        "",
        f"`python bench/fuzz_server.py --examples {args.examples} --seed {args.seed}`: schemathesis "
        f"{_version()}, checks {CHECKS.replace(',', ', ')}; tiny models (the fuzz is of the server).",
        "",
        "| model | API key | requests | 5xx | failed checks | statuses seen | without the key | seconds |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for kind, key, found in rows:
        fivexx = sum(n for status, n in found["statuses"].items() if status >= 500)
        statuses = ", ".join(f"{status}: {n:,}" for status, n in found["statuses"].items())
        failed = sum(found["failures"].values())
        unkeyed = found["unkeyed"] if key else "-"
        lines.append(f"| {kind} | {'yes' if key else 'no'} | {found['cases']:,} | {fivexx} | {failed} | {statuses} | "
                     f"{unkeyed} | {found['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def _version() -> str:
    from importlib.metadata import version

    return version("schemathesis")


if __name__ == "__main__":
    main()
