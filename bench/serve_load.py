"""`seqtext serve` under load, over loopback: 1, 8 and 32 concurrent clients, then a soak of mixed good and bad
requests, beside the offline batch throughput of the same model on the same texts.

Each client (a wrk connection) sends one or 16 test texts a request (POST /v1/classify), waits for the answer
and sends the next, for ``--seconds`` per level. Reported: texts/s, p50 / p99 latency, errors (any answer but 200), and the server's
peak RSS. The soak sends ``--soak`` requests, one in five a bad one (each of the server's 4xx cases in turn),
and reads the server's RSS after 1,000 and after all of them; a bad request must get its 4xx, a good one 200.
Offline: ``seqtext predict RUN --file TEXTS --json`` on the same texts, timed whole, and the same texts
through ``model.predict`` in this process (no process start, no output).

    python bench/serve_load.py --run sst2=runs/sst2 --run imdb=runs/imdb-pretrained [--seconds 20] [--soak 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.classifier.data import load_labelled  # noqa: E402
from tests.server import start, worker_pids  # noqa: E402

LEVELS = (1, 8, 32)
BAD = [
    ("{not json", 400),
    ({"texts": "one"}, 422),
    ({"texts": [""]}, 400),
    ({"texts": ["x"] * 65}, 413),
    ({}, 422),
    ({"texts": [1]}, 422),
]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, "/v1/classify", nil, bodies[(i % #bodies) + 1])
end
"""


def clients(base: str, texts: list[str], count: int, seconds: float, per_request: int, scratch: Path) -> dict:
    """wrk (Debian's package; C, one thread): ``count`` connections, each sending the next body as soon as
    its answer comes. An asyncio httpx client on the same 2 cores was the bottleneck itself: it fell to 141
    requests/s on /health at 32 connections, where wrk reaches 1,265."""
    bodies, script = scratch / f"bodies-{per_request}.jsonl", scratch / "post.lua"
    groups = [texts[i : i + per_request] for i in range(0, len(texts) - per_request + 1, per_request)]
    bodies.write_text("".join(json.dumps({"texts": group}) + "\n" for group in groups))
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{count}", f"-d{seconds:.0f}s", "--latency", "--timeout", "30s", "-s", str(script), base]
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BODIES": str(bodies)}, check=True).stdout

    def ms(label: str) -> float:
        value = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if value is None:
            raise SystemExit(f"wrk printed no {label} latency:\n{out}")
        return float(value.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[value.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket.groups())) if socket else 0)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"clients": count, "per_request": per_request, "texts_s": rate * per_request, "p50": ms("50%"), "p99": ms("99%"),
            "errors": errors, "requests": requests}  # fmt: skip


async def soak(base: str, texts: list[str], total: int, pids: list[int], concurrency: int = 8) -> dict:
    """``total`` requests, one in five bad; the largest RSS of the serving processes ``pids`` after 1,000 and at the end."""
    sent, wrong, rss_1000 = 0, 0, None
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(n: int):
            nonlocal wrong
            if n % 5 == 4:
                body, status = BAD[(n // 5) % len(BAD)]
                sent_as = (
                    {"content": body, "headers": {"content-type": "application/json"}}
                    if isinstance(body, str)
                    else {"json": body}
                )
                answer = await client.post("/v1/classify", **sent_as)
                wrong += answer.status_code != status
            else:
                answer = await client.post("/v1/classify", json={"texts": [texts[n % len(texts)]]})
                wrong += answer.status_code != 200

        while sent < total:
            batch = min(concurrency, total - sent)
            await asyncio.gather(*(one(sent + k) for k in range(batch)))
            sent += batch
            if sent >= min(1000, total // 2) and rss_1000 is None:  # (a short soak: after half of it)
                rss_1000 = max(rss_mib(pid) for pid in pids)
    return {"requests": total, "wrong": wrong, "rss_1000": rss_1000, "rss_end": max(rss_mib(pid) for pid in pids)}


def offline(run: str, texts: list[str]) -> dict:
    model = seqtext.load(run)
    model.predict(texts[:50])
    start = time.perf_counter()
    model.predict(texts)
    in_process = len(texts) / (time.perf_counter() - start)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(" ".join(text.split()) + "\n" for text in texts))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "seqtext", "predict", run, "--file", f.name, "--json"], check=True, stdout=subprocess.DEVNULL
    )
    command = len(texts) / (time.perf_counter() - start)
    os.unlink(f.name)
    return {"in_process": in_process, "command": command}


def measure(name: str, run: str, seconds: float, soak_requests: int, per_request: tuple[int, ...], workers: int) -> dict:
    """One model served by ``workers`` processes (1: one process with torch's default threads)."""
    model = seqtext.load(run)
    data = load_labelled(model.recipe)
    texts = [" ".join(t.split()) for t in data.splits["test"]["text"]]
    found = {"offline": offline(run, texts), "levels": [], "workers": workers}
    print(f"{name} offline: {found['offline']}", flush=True)
    server, base = start(run, "--workers", str(workers))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for size in per_request:
                for count in LEVELS:
                    level = clients(base, texts, count, seconds, size, Path(scratch))
                    found["levels"].append(level)
                    print(f"{name} {workers} workers {level}", flush=True)
        pids = worker_pids(server)
        found["peak_rss"] = max(rss_mib(pid, "VmHWM") for pid in pids)
        found["soak"] = asyncio.run(soak(base, texts, soak_requests, pids))
        print(f"{name} soak {found['soak']}", flush=True)
        found["alive"] = httpx.get(f"{base}/health").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        found["exit"] = server.wait(60)
    return found


def section(results: dict, argv: list[str]) -> str:
    lines = [
        "## Serving under load",
        "",
        f"`python bench/serve_load.py {' '.join(argv)}`: `seqtext serve` on loopback (requests that come while the",
        "model is busy share its next call), driven by wrk: each connection sends the next request as soon as its",
        "answer comes, one or 16 test texts a request. Offline: the same texts through `model.predict` in one",
        "process, and `seqtext predict --file` timed whole (process start and model loading included). With N workers",
        "(`seqtext serve --workers N`) each process has one torch thread; RSS is the largest worker's.",
        "",
        "| model | clients | texts a request | texts/s | vs offline batch | p50 ms | p99 ms | errors | requests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, found in results.items():
        offline_rate = found["offline"]["in_process"]
        for level in found["levels"]:
            lines.append(f"| {name} | {level['clients']} | {level['per_request']} | {level['texts_s']:,.0f} | {level['texts_s'] / offline_rate:.2f}x | "
                         f"{level['p50']:.1f} | {level['p99']:.1f} | {level['errors']} | {level['requests']:,} |")  # fmt: skip
    lines += ["", "| model | offline texts/s (in process) | `seqtext predict --file` texts/s | peak RSS MiB | soak requests (1 in 5 bad) "
              "| wrong answers | RSS after 1,000 | RSS at the end | growth |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, found in results.items():
        soak_found = found["soak"]
        growth = soak_found["rss_end"] / soak_found["rss_1000"] - 1
        lines.append(f"| {name} | {found['offline']['in_process']:,.0f} | {found['offline']['command']:,.0f} | {found['peak_rss']:,.0f} | "
                     f"{soak_found['requests']:,} | {soak_found['wrong']} | {soak_found['rss_1000']:,.0f} | {soak_found['rss_end']:,.0f} | "
                     f"{growth:+.1%} |")  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RUN")
    parser.add_argument("--seconds", type=float, default=20.0, help="per client level (default: 20)")
    parser.add_argument("--soak", type=int, default=10_000, help="requests in the soak (default: 10,000)")
    parser.add_argument("--per-request", type=int, nargs="+", default=[1, 16], help="texts a request (default: 1 16)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="seqtext serve --workers, each in turn (default: 1)")
    args = parser.parse_args()
    results = {}
    for spec in args.run:
        name, _, run = spec.partition("=")
        for workers in args.workers:
            results[f"{name}, {workers} worker{'s' if workers > 1 else ''}"] = measure(
                name, run, args.seconds, args.soak, tuple(args.per_request), workers
            )
    write_section("serve_load", section(results, sys.argv[1:]))


if __name__ == "__main__":
    main()
