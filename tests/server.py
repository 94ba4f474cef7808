"""A real `seqtext serve` process on a free loopback port, for the tests, the serving benchmark and the
screenshots: started with the same interpreter, ready once /health answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(run, *args: str, threads: int | None = None, timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """``seqtext serve RUN ARGS`` -> (the process, its base URL). ``threads`` sets OMP_NUM_THREADS (the tests
    give it one core; the benchmark leaves torch its default). Raises RuntimeError, the server's stderr in
    the message, if it exits or does not answer in ``timeout`` seconds (and kills it)."""
    port = free_port()
    env = dict(os.environ) if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    args = args if "--workers" in args else (*args, "--workers", "1")  # one process unless a test asks for more
    server = subprocess.Popen(
        [sys.executable, "-m", "seqtext", "serve", str(run), "--port", str(port), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as answer:
                if answer.status == 200:
                    return server, base
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None:
                raise RuntimeError(f"the server exited: {server.stderr.read()}") from None
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the server did not start in {timeout:.0f} s")


def worker_pids(server: subprocess.Popen) -> list[int]:
    """The processes that answer requests: the server itself, or with --workers N its N spawned workers
    (multiprocessing's spawn_main children; not its resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            spawned = parent == server.pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if spawned:
            found.append(int(stat.parent.name))
    return sorted(found) or [server.pid]
