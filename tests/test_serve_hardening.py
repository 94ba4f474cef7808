"""seqtext serve against careless and hostile clients, over real sockets: generation slots that must come
back whatever a streaming client does, bodies past the cap (declared or chunked), slow headers, legal
parameters that must not become 500s, and what the schema and the model card show."""

import asyncio
import json
import socket
import struct
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from seqtext.serve import Batcher, Limits, create_app, make_server

from .server import free_port, start

GENERATE = {"prompt": "ROMEO:", "length": 2000, "stream": True}


def _send(port: int, path: str, body: bytes, headers: str = "") -> socket.socket:
    """A request written by hand on a fresh connection; the socket is returned unread."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
    sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER (1, 0): the peer sees a reset at once, as when a client is killed."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _vanish(port: int, stage: str) -> None:
    body = json.dumps(GENERATE).encode()
    if stage == "half a body":
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        return _reset(sock)
    sock = _send(port, "/v1/generate", body)
    if stage == "status line":
        sock.recv(12)
    elif stage == "a few events":
        read = b""
        while read.count(b"data:") < 5:
            read += sock.recv(4096)
    _reset(sock)


def _generates(base: str, deadline: float = 20.0) -> int:
    """The status of a plain generate request, retried while it is 503, for up to ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        status = httpx.post(f"{base}/v1/generate", json={"prompt": "ROMEO:", "length": 5}, timeout=30).status_code
        if status != 503 or time.monotonic() > end:
            return status
        time.sleep(0.2)


@pytest.mark.slow
def test_generation_slots_come_back_whatever_a_streaming_client_does(lm_run):
    server, base = start(lm_run, threads=1)
    port = int(base.rsplit(":", 1)[1])
    try:
        for stage in ("request sent", "status line", "a few events", "half a body"):
            for _ in range(8):  # twice the four slots
                _vanish(port, stage)
            assert _generates(base) == 200, stage
    finally:
        server.kill()
        server.wait()


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.slow
def test_bodies_past_the_cap_get_a_413_answer_and_are_never_held(trained_run):
    server, base = start(trained_run, threads=1)
    port = int(base.rsplit(":", 1)[1])
    try:
        before = _rss_mib(server.pid)
        # declared: 10 MB, sent whole by a client that reads only afterwards
        sock = _send(port, "/v1/classify", b" " * 10_000_000)
        answer = sock.makefile("rb").read()
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"error": "the body has 10,000,000 bytes; the limit is 4,194,304"}
        # chunked: 256 MiB offered 64 KiB at a time, the answer read as it comes
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"

        def offer():
            try:
                for _ in range(4096):
                    sock.sendall(chunk)
            except OSError:  # the server answered and closed: what should happen
                pass

        sender = threading.Thread(target=offer)
        sender.start()
        answer = sock.makefile("rb").readline()
        sender.join(60)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert _rss_mib(server.pid) - before < 64  # read whole, it grew by ~700 MiB
        assert httpx.post(f"{base}/v1/classify", json={"texts": ["a fine film"]}).status_code == 200  # still serving
    finally:
        server.kill()
        server.wait()


def test_a_connection_that_never_finishes_its_headers_is_closed(trained_run):
    port = free_port()
    server = make_server(trained_run, port=port, limits=Limits(header_timeout=0.5))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        began = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server
        assert time.monotonic() - began < 5
        sock.close()
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200  # quick clients are unaffected
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def lm_client(lm_run):
    with TestClient(create_app(lm_run)) as client:
        yield client


def test_sampling_values_the_schema_allows_never_fail_the_server(lm_client):
    greedy = lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 20, "temperature": 0}).json()["text"]
    for temperature in (1e-50, 5e-324, 1e-5):
        answer = lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 20, "temperature": temperature})
        assert answer.status_code == 200 and answer.json()["text"] == greedy, temperature
    huge = '{"prompt": "ROMEO:", "length": 5, "temperature": 1' + "0" * 400 + "}"
    for body in ({"temperature": 1e39}, {"temperature": 1e308}, {"top_p": 1e-320}, huge):
        sent = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) else {
            "json": {"prompt": "ROMEO:", "length": 5, **body}}  # fmt: skip
        answer = lm_client.post("/v1/generate", **sent)
        assert answer.status_code == 422, (body, answer.text)
    for body in ({"temperature": 1e4}, {"top_p": 1e-6}, {"top_k": 2**31 - 1}):
        answer = lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 20, "seed": 0, **body})
        assert answer.status_code == 200 and len(answer.json()["text"]) == 20, body


def test_the_schema_names_every_answer_and_its_real_limits(lm_client):
    schema = lm_client.get("/openapi.json").json()
    generate = schema["paths"]["/v1/generate"]["post"]
    assert {"400", "401", "413", "422", "503"} <= set(generate["responses"])
    assert "text/event-stream" in generate["responses"]["200"]["content"]
    assert {"400", "401", "413", "422"} <= set(schema["paths"]["/v1/classify"]["post"]["responses"])
    fields = schema["components"]["schemas"]["GenerateRequest"]["properties"]
    seed = next(part for part in fields["seed"]["anyOf"] if part.get("type") == "integer")
    assert seed["maximum"] == 2**53 - 1  # exactly representable, so no client's float rounds past it
    assert lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 1, "seed": 2**53 - 1}).status_code == 200


def test_the_model_card_shows_no_path_of_the_servers_disk(lm_client, lm_run):
    answer = lm_client.get("/v1/model").text
    assert str(lm_run.parent) not in answer and "/tmp" not in answer
    assert json.loads(answer)["card"]["recipe"]["data"]["dataset"] == "slice.txt"


def test_a_text_of_invisible_characters_is_empty(trained_run):
    with TestClient(create_app(trained_run)) as client:
        for text in ("\u200b\u200b", "\u2060 \ufeff"):
            answer = client.post("/v1/classify", json={"texts": ["fine", text]})
            assert (answer.status_code, answer.json()) == (400, {"error": "texts[1] is empty"}), text


def test_a_large_request_does_not_hold_a_small_one_behind_it():
    calls = []

    def predict(texts):
        calls.append(sum(map(len, texts)))
        time.sleep(sum(map(len, texts)) * 2e-7)  # 4 ms for 20,000 characters
        return [len(text) for text in texts]

    async def scenario():
        batcher = Batcher(predict, wait=0.0, budget=50_000)
        batcher.start()
        big = asyncio.create_task(batcher.submit(["x" * 20_000] * 64))
        await asyncio.sleep(0.01)
        small = await batcher.submit(["one"])
        done_when_small = big.done()
        found = await big
        await batcher.stop()
        return small, done_when_small, found

    small, done_when_small, found = asyncio.run(scenario())
    assert small == [3] and not done_when_small
    assert found == [20_000] * 64  # every text answered, in order
    assert max(calls) <= 50_000 and len(calls) >= 64 * 20_000 // 50_000


def test_a_client_that_stops_reading_does_not_hold_shutdown_past_its_limit(lm_run):
    port = free_port()
    server = make_server(lm_run, port=port, limits=Limits(max_length=10**6, graceful=1.0))
    thread = threading.Thread(target=server.run)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read: the server's writes block
    sock.connect(("127.0.0.1", port))
    body = json.dumps({**GENERATE, "length": 10**6}).encode()
    sock.sendall(f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    time.sleep(1)
    began = time.monotonic()
    server.should_exit = True  # what SIGTERM sets
    thread.join(30)
    sock.close()
    assert not thread.is_alive() and time.monotonic() - began < 5


@pytest.mark.slow
def test_the_api_key_can_come_from_a_file_and_stays_out_of_ps(trained_run, tmp_path):
    (tmp_path / "key").write_text("s3cret-from-a-file\n")
    server, base = start(trained_run, "--api-key-file", str(tmp_path / "key"), threads=1)
    try:
        assert "s3cret" not in open(f"/proc/{server.pid}/cmdline").read()
        assert httpx.post(f"{base}/v1/classify", json={"texts": ["fine"]}).status_code == 401
        key = {"Authorization": "Bearer s3cret-from-a-file"}
        assert httpx.post(f"{base}/v1/classify", json={"texts": ["fine"]}, headers=key).status_code == 200
    finally:
        server.kill()
        server.wait()
    (tmp_path / "empty").write_text("\n")
    for path, message in ((tmp_path / "empty", "its first line is empty"), (tmp_path / "none", "cannot read")):
        done = subprocess.run([sys.executable, "-m", "seqtext", "serve", str(trained_run), "--api-key-file", str(path)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith(f"seqtext: error: --api-key-file {path}: {message}"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_streamed_request_refused_before_its_first_event_frees_its_slot(lm_client):
    bad = {"prompt": "ROMEO€", "length": 5, "stream": True}  # '€' is outside the vocabulary: 400 before any event
    for _ in range(9):  # more than the four slots
        assert lm_client.post("/v1/generate", json=bad).status_code == 400
    assert lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 5}).status_code == 200
