"""seqtext serve: the JSON API in-process (every bad request, batching, streaming, the API key, reload), and
the real server over loopback (its default address, graceful shutdown on SIGTERM)."""

import json
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import seqtext
from seqtext.cli import build_parser
from seqtext.serve import Limits, create_app

from .server import start, worker_pids

TEXTS = ["a gorgeous , witty , seductive movie .", "dull and lifeless", "it 's a charming and often affecting journey ."]


@pytest.fixture(scope="module")
def classifier_client(trained_run):
    with TestClient(create_app(trained_run, limits=Limits(max_texts=8, max_chars=500, batch_wait=0.05))) as client:
        yield client


@pytest.fixture(scope="module")
def lm_client(lm_run):
    with TestClient(create_app(lm_run, limits=Limits(max_length=300))) as client:
        yield client


def test_classify_answers_what_predict_answers(classifier_client, trained_run):
    answer = classifier_client.post("/v1/classify", json={"texts": TEXTS, "explain": True})
    assert answer.status_code == 200
    body = answer.json()
    expected = seqtext.load(trained_run).predict(TEXTS)
    assert body["model"] == "sst2" and len(body["predictions"]) == 3
    for got, want in zip(body["predictions"], expected):
        assert got["label"] == want.label and got["probs"] == pytest.approx(want.probs, abs=1e-6)
        assert [a["token"] for a in got["attention"]] == [token for token, _ in want.attention]
    plain = classifier_client.post("/v1/classify", json={"texts": TEXTS[:1]}).json()["predictions"][0]
    assert set(plain) == {"label", "probs"}  # attention only when asked
    form = {"content-type": "application/x-www-form-urlencoded"}  # what curl -d sends
    sent_as_form = classifier_client.post("/v1/classify", content=json.dumps({"texts": TEXTS[:1]}), headers=form)
    assert sent_as_form.json()["predictions"][0] == plain


BAD_CLASSIFY = [
    ("{not json", 400, "the body is not valid JSON (Expecting property name enclosed in double quotes)"),
    ("[]", 422, "body: Input should be a valid dictionary or object to extract fields from"),
    ({}, 422, "texts is missing"),
    ({"texts": "one text"}, 422, "texts: Input should be a valid list"),
    ({"texts": [3]}, 422, "texts.0: Input should be a valid string"),
    ({"texts": []}, 422, "texts: List should have at least 1 item after validation, not 0"),
    ({"texts": ["fine", "   "]}, 400, "texts[1] is empty"),
    ({"texts": ["fine"] * 9}, 413, "texts has 9 texts; the limit is 8 a request"),
    ({"texts": ["x" * 501]}, 413, "texts[0] has 501 characters; the limit is 500"),
    ({"texts": ["fine"], "explain": "yes"}, 422, "explain: Input should be a valid boolean"),
    ({"texts": ["fine"], "path": "/etc/passwd"}, 422, "path is not a field of this request"),
    ('{"texts": ["fine", "a \\ud800 b"]}', 400, "texts[1] holds '\\ud800' at character 2, which is not a Unicode character"),
]


def test_every_bad_request_is_a_4xx_json_error_and_the_server_goes_on(classifier_client):
    for body, status, message in BAD_CLASSIFY:
        sent = {"content": body} if isinstance(body, str) else {"json": body}
        answer = classifier_client.post("/v1/classify", headers={"content-type": "application/json"}, **sent)
        assert (answer.status_code, answer.json()) == (status, {"error": message}), body
    answer = classifier_client.post("/v1/generate", json={"prompt": "ROMEO:"})
    assert (answer.status_code, answer.json()) == (400, {"error": "this server holds a classifier: POST /v1/classify"})
    assert classifier_client.get("/v1/nothing").json() == {"error": "Not Found"}
    assert classifier_client.get("/v1/classify").status_code == 405
    assert classifier_client.post("/v1/classify", json={"texts": TEXTS}).status_code == 200  # still serving


def test_bad_generate_requests_are_4xx_json_errors(lm_client):
    cases = [
        ({"prompt": "ROMEO:", "length": 301}, 413, "length is 301; the limit is 300"),
        ({"prompt": "ROMEO:", "length": -1}, 422, "length: Input should be greater than or equal to 0"),
        ({"prompt": "ROMEO:", "length": "ten"}, 422, "length: Input should be a valid integer"),
        ({"prompt": "ROMEO€"}, 400, "prompt has characters outside the model's vocabulary: '€'"),
        ({"prompt": "ROMEO:", "temperature": -1}, 422, "temperature: Input should be greater than or equal to 0"),
        ({"prompt": "ROMEO:", "top_p": 1.5}, 422, "top_p: Input should be less than or equal to 1"),
        ({"prompt": "ROMEO€", "stream": True}, 400, "prompt has characters outside the model's vocabulary: '€'"),
        ({"prompt": "R" * 20_001}, 413, "prompt has 20,001 characters; the limit is 20,000"),
        ({"prompt": "ROMEO:", "seed": 2**53}, 422, "seed: Input should be less than or equal to 9007199254740991"),
        ({"prompt": "ROMEO:", "seed": -1}, 422, "seed: Input should be greater than or equal to 0"),
    ]
    for body, status, message in cases:
        answer = lm_client.post("/v1/generate", json=body)
        assert (answer.status_code, answer.json()) == (status, {"error": message}), body
    answer = lm_client.post("/v1/classify", json={"texts": ["ROMEO:"]})
    assert answer.json() == {"error": "this server holds a language_model: POST /v1/generate"}
    tiny = lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 20, "temperature": 1e-40, "seed": 1})
    greedy = lm_client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 20, "temperature": 0})
    assert tiny.status_code == 200 and tiny.json()["text"] == greedy.json()["text"]  # the limit of a small temperature


def test_concurrent_requests_share_model_calls_and_get_single_answers(trained_run, data_dir):
    import gzip

    with gzip.open(data_dir / "sst2" / "validation.jsonl.gz", "rt") as f:
        sentences = [json.loads(line)["text"] for line in f][:48]
    alone = {text: seqtext.load(trained_run).predict(text).probs for text in sentences}
    with TestClient(create_app(trained_run, limits=Limits(batch_wait=0.2))) as client:
        batcher = client.app.state.batcher
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda text: client.post("/v1/classify", json={"texts": [text]}).json(), sentences))
        assert batcher.calls < len(sentences) / 2  # requests were grouped
    for text, answer in zip(sentences, answers):
        assert answer["predictions"][0]["probs"] == pytest.approx(alone[text], abs=1e-5)


def test_a_request_that_fails_the_model_fails_alone(trained_run, monkeypatch):
    app = create_app(trained_run, limits=Limits(batch_wait=0.3))
    model = app.state.served.model
    real = model.predict

    def predict(texts, **kwargs):
        if "poison" in texts:
            raise RuntimeError("the model broke on this text")
        return real(texts, **kwargs)

    monkeypatch.setattr(model, "predict", predict)
    with TestClient(app, raise_server_exceptions=False) as client, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda text: client.post("/v1/classify", json={"texts": [text]}), [*TEXTS, "poison"]))
    assert [a.status_code for a in answers] == [200, 200, 200, 500]
    assert answers[3].json() == {"error": "the server failed (RuntimeError); its log has the details"}
    assert "Traceback" not in answers[3].text


def _events(lines):
    events, current = [], {}
    for line in lines:
        if not line:
            events.append(current)
            current = {}
        elif ": " in line:
            key, value = line.split(": ", 1)
            current[key] = value
    return events


def test_streamed_generation_is_the_same_text_as_events(lm_client, lm_run):
    request = {"prompt": "ROMEO:", "length": 80, "temperature": 0.8, "seed": 3}
    whole = lm_client.post("/v1/generate", json=request).json()["text"]
    assert whole == seqtext.load(lm_run).generate("ROMEO:", length=80, temperature=0.8, seed=3)
    with lm_client.stream("POST", "/v1/generate", json={**request, "stream": True}) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = _events(answer.iter_lines())
    assert events[-1] == {"event": "done", "data": "{}"}
    pieces = [json.loads(event["data"])["text"] for event in events[:-1]]
    assert len(pieces) == 80 and "".join(pieces) == whole  # one event a character, as they are drawn


def test_an_api_key_guards_every_endpoint_but_health(trained_run, lm_run):
    with TestClient(create_app(trained_run, api_key="s3cret")) as client:
        for method, path in [("get", "/v1/model"), ("post", "/v1/classify"), ("get", "/docs"), ("get", "/openapi.json")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                answer = getattr(client, method)(path, headers=headers)
                assert answer.status_code == 401 and "API key" in answer.json()["error"], (path, headers)
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/").status_code == 200  # the page holds no data; it asks for the key
        key = {"Authorization": "Bearer s3cret"}
        assert client.post("/v1/classify", json={"texts": TEXTS}, headers=key).status_code == 200
        assert client.get("/v1/model", headers=key).json()["labels"] == ["negative", "positive"]
    with TestClient(create_app(lm_run, api_key="s3cret")) as client:
        assert client.post("/v1/generate", json={"prompt": "ROMEO:", "length": 5}).status_code == 401


def test_the_page_is_served_from_the_package_with_nothing_from_the_network(classifier_client):
    page = classifier_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'id="classify"' in html and 'id="generate"' in html
    for remote in ("http://", "https://", "//cdn", 'src="//'):
        assert remote not in html.replace("http://www.w3.org", ""), remote


def test_a_reload_swaps_a_whole_checkpoint_and_keeps_the_old_one_otherwise(trained_run, sst2_model, lm_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    app = create_app(run)
    served = app.state.served
    with TestClient(app) as client:
        before = client.post("/v1/classify", json={"texts": TEXTS}).json()
        (run / "best" / "model.safetensors").write_bytes(b"half written")  # a broken save
        assert served.reload() is False
        assert client.post("/v1/classify", json={"texts": TEXTS}).json() == before
        shutil.rmtree(run / "best")
        assert served.reload() is False  # between a save's two renames there is no best/ at all
        assert not (run / "best").exists()  # and the server did not move anything back
        shutil.copytree(lm_run / "best", run / "best")  # another kind of model
        assert served.reload() is False and served.model.kind == "classifier"
        shutil.rmtree(run / "best")
        shutil.copytree(sst2_model / "best", run / "best")
        assert served.reload() is True
        after = client.post("/v1/classify", json={"texts": TEXTS}).json()
        expected = seqtext.load(sst2_model).predict(TEXTS)
        assert [p["probs"] for p in after["predictions"]] == [pytest.approx(p.probs, abs=1e-6) for p in expected]
        assert client.get("/v1/model").json()["card"]["validation"] == seqtext.load(sst2_model).card["validation"]


@pytest.mark.slow
def test_sighup_reloads_the_served_checkpoint(trained_run, sst2_model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    server, base = start(run, threads=1)
    try:
        before = httpx.get(f"{base}/v1/model").json()["card"]["validation"]
        shutil.rmtree(run / "best")
        shutil.copytree(sst2_model / "best", run / "best")
        server.send_signal(signal.SIGHUP)
        wanted = seqtext.load(sst2_model).card["validation"]
        for _ in range(100):
            if httpx.get(f"{base}/v1/model").json()["card"]["validation"] == wanted:
                break
            time.sleep(0.1)
        assert httpx.get(f"{base}/v1/model").json()["card"]["validation"] == wanted != before
    finally:
        server.kill()
        server.wait()


def test_the_server_binds_this_machine_only_unless_told():
    args = build_parser().parse_args(["serve", "runs/x"])
    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 8000, None)


@pytest.mark.slow
def test_sigterm_lets_the_request_in_flight_finish(lm_run):
    server, base = start(lm_run, "--max-length", "30000", threads=1)
    try:
        results, begun = {}, threading.Event()

        def long_request():
            request = {"prompt": "ROMEO:", "length": 30000, "seed": 1, "stream": True}
            with httpx.stream("POST", f"{base}/v1/generate", json=request, timeout=120) as answer:
                lines = []
                for line in answer.iter_lines():
                    lines.append(line)
                    begun.set()
                results["status"], results["events"] = answer.status_code, _events(lines)

        thread = threading.Thread(target=long_request)
        thread.start()
        assert begun.wait(30)  # the first piece has come: the request is in flight
        server.send_signal(signal.SIGTERM)
        thread.join(120)
        assert results["status"] == 200 and results["events"][-1] == {"event": "done", "data": "{}"}
        assert sum(len(json.loads(e["data"])["text"]) for e in results["events"][:-1]) == 30000
        assert server.wait(30) == -signal.SIGTERM  # uvicorn ends by the signal it caught, once the requests are done
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/health", timeout=1)
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_workers_answer_as_one_worker_does_and_reload_and_stop_together(trained_run, sst2_model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    single, single_base = start(run, "--workers", "1", threads=1)
    several, base = start(run, "--workers", "2", threads=1)
    try:
        assert len(worker_pids(several)) == 2
        request = {"texts": TEXTS, "explain": True}
        wanted = httpx.post(f"{single_base}/v1/classify", json=request).json()["predictions"]
        with ThreadPoolExecutor(8) as pool:  # enough at once that both workers answer
            answers = list(pool.map(lambda _: httpx.post(f"{base}/v1/classify", json=request).json(), range(40)))
        for answer in answers:
            for ours, theirs in zip(answer["predictions"], wanted, strict=True):
                assert ours["label"] == theirs["label"] and ours["attention"] == theirs["attention"]
                assert all(abs(ours["probs"][k] - v) < 1e-6 for k, v in theirs["probs"].items())
        assert httpx.get(f"{base}/v1/model").json()["card"] == httpx.get(f"{single_base}/v1/model").json()["card"]
        shutil.rmtree(run / "best")
        shutil.copytree(sst2_model / "best", run / "best")
        several.send_signal(signal.SIGHUP)  # each worker is replaced by one that loads the new checkpoint
        new = seqtext.load(sst2_model).card["validation"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = {json.dumps(httpx.get(f"{base}/v1/model").json()["card"]["validation"]) for _ in range(10)}
            if seen == {json.dumps(new)}:
                break
            time.sleep(0.2)
        assert seen == {json.dumps(new)}
        workers = worker_pids(several)
        several.send_signal(signal.SIGTERM)
        assert several.wait(30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        for server in (single, several):
            server.kill()
            server.wait()


def test_each_server_keeps_its_own_header_deadline(trained_run):
    from seqtext.serve import make_server

    quick = make_server(trained_run, limits=Limits(header_timeout=0.5))
    usual = make_server(trained_run)
    assert (quick.config.http.timeout, usual.config.http.timeout) == (0.5, Limits().header_timeout)
