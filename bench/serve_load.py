"""`seqtext serve` under load, over loopback: 1, 8 and 32 concurrent clients, then a soak of mixed good and bad
requests, beside the offline batch throughput of the same model on the same texts.

Each client sends one test text a request (POST /v1/classify), waits for the answer and sends the next, for
``--seconds`` per level. Reported: texts/s, p50 / p99 latency, errors (any answer but 200), and the server's
peak RSS. The soak sends ``--soak`` requests, one in five a bad one (each of the server's 4xx cases in turn),
and reads the server's RSS after 1,000 and after all of them; a bad request must get its 4xx, a good one 200.
Offline: ``seqtext predict RUN --file TEXTS --json`` on the same texts, timed whole, and the same texts
through ``model.predict`` in this process (no process start, no output).

    python bench/serve_load.py --run sst2=runs/sst2 --run imdb=runs/imdb-pretrained [--seconds 20] [--soak 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import seqtext  # noqa: E402
from bench.common import write_section  # noqa: E402
from seqtext.pipeline import load_labelled  # noqa: E402

LEVELS = (1, 8, 32)
BAD = [
    ("{not json", 400),
    ({"texts": "one"}, 422),
    ({"texts": [""]}, 400),
    ({"texts": ["x"] * 65}, 413),
    ({}, 422),
    ({"texts": [1]}, 422),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(run: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "seqtext", "serve", run, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {server.stderr.read()}") from None
            time.sleep(0.1)
    raise SystemExit("the server did not start")


async def clients(base: str, texts: list[str], count: int, seconds: float) -> dict:
    latencies, errors, done = [], 0, 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one(worker: int):
            nonlocal errors, done
            i = worker
            while time.monotonic() < stop:
                text = texts[i % len(texts)]
                i += count
                start = time.perf_counter()
                answer = await client.post("/v1/classify", json={"texts": [text]})
                latencies.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    errors += 1
                done += 1

        began = time.monotonic()
        await asyncio.gather(*(one(w) for w in range(count)))
        elapsed = time.monotonic() - began
    ms = np.array(latencies) * 1000
    return {"clients": count, "texts_s": done / elapsed, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "errors": errors, "requests": done}  # fmt: skip


async def soak(base: str, texts: list[str], total: int, pid: int, concurrency: int = 8) -> dict:
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
            if sent >= 1000 and rss_1000 is None:
                rss_1000 = rss_mib(pid)
    return {"requests": total, "wrong": wrong, "rss_1000": rss_1000, "rss_end": rss_mib(pid)}


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


def measure(name: str, run: str, seconds: float, soak_requests: int) -> dict:
    model = seqtext.load(run)
    data = load_labelled(model.recipe)
    texts = [" ".join(t.split()) for t in data.splits["test"]["text"]]
    found = {"offline": offline(run, texts), "levels": []}
    print(f"{name} offline: {found['offline']}", flush=True)
    server, base = start_server(run)
    try:
        for count in LEVELS:
            level = asyncio.run(clients(base, texts, count, seconds))
            found["levels"].append(level)
            print(f"{name} {level}", flush=True)
        found["peak_rss"] = rss_mib(server.pid, "VmHWM")
        found["soak"] = asyncio.run(soak(base, texts, soak_requests, server.pid))
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
        f"`python bench/serve_load.py {' '.join(argv)}`: `seqtext serve` on loopback (its default 5 ms batching",
        "window), clients each sending one test text a request and waiting for the answer. Offline: the same",
        "texts through `model.predict` in one process, and `seqtext predict --file` timed whole (start included).",
        "",
        "| model | clients | texts/s | vs offline batch | p50 ms | p99 ms | errors | requests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, found in results.items():
        offline_rate = found["offline"]["in_process"]
        for level in found["levels"]:
            lines.append(f"| {name} | {level['clients']} | {level['texts_s']:,.0f} | {level['texts_s'] / offline_rate:.2f}x | "
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
    args = parser.parse_args()
    results = {}
    for spec in args.run:
        name, _, run = spec.partition("=")
        results[name] = measure(name, run, args.seconds, args.soak)
    write_section("serve_load", section(results, sys.argv[1:]))


if __name__ == "__main__":
    main()
