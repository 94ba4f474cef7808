"""``seqtext serve RUN``: a trained classifier or language model behind an HTTP JSON API and a web page.

    POST /v1/classify   {"texts": [...], "explain": false}  -> {"predictions": [{"label", "probs", "attention"?}], "model"}
    POST /v1/generate   {"prompt", "length", "temperature", "top_k", "top_p", "seed", "stream"} -> {"text", "model"},
                        or with "stream": true, Server-Sent Events: data: {"text": piece} ... event: done
    GET  /health        {"status": "ok"}, never behind the API key
    GET  /v1/model      the model card; GET /docs, the OpenAPI documentation; GET /, the web page

Classify requests that arrive within ``Limits.batch_wait`` of each other share one model call (``Batcher``),
up to a budget of characters, so that many clients get near the throughput of one offline batch. Every
rejected request is a 4xx answer ``{"error": "one line"}``, and the server goes on serving; an error of
the server's own is a 500 with the same shape, its traceback in the log and never in the answer.

Secure by default: the server binds 127.0.0.1 unless told otherwise; with an API key, every endpoint but
``/health`` and the page itself (which holds no data, and asks for the key) answers 401 without
``Authorization: Bearer KEY``; no request names a path or URL for the server to read: the model is the
one given on the command line. SIGHUP reloads it from the same place; a checkpoint that does not load
whole (a save still being written) leaves the old model serving. SIGTERM stops accepting connections and
lets the requests in flight finish (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqtext import api, checkpoint
from seqtext.errors import SeqtextError

log = logging.getLogger("seqtext.serve")
OPEN_PATHS = ("/health", "/")  # answered without the API key: liveness, and the page that asks for the key


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts in one classify request
    max_chars: int = 20_000  # characters in one text or prompt
    max_length: int = 2_000  # tokens one generate request may ask for
    batch_wait: float = 0.0  # seconds to also wait for more requests (those that came while the model was busy join anyway)
    batch_chars: int = 200_000  # characters one shared model call may hold (a budget known before tokenizing)
    generations: int = 4  # generate requests answered at once; more get 503 (each keeps a thread busy)
    max_body: int = 4 * 2**20  # bytes of one request body


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(min_length=1)
    explain: StrictBool = False


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: StrictStr = ""
    length: StrictInt = Field(200, ge=0)
    temperature: Annotated[StrictFloat | StrictInt, Field(ge=0)] = 1.0
    top_k: StrictInt | None = Field(None, ge=1)
    top_p: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1)] | None = None
    seed: StrictInt | None = Field(None, ge=0, lt=2**63)
    stream: StrictBool = False


class RequestError(Exception):
    """A request the server will not answer: its status and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Batcher:
    """Classify requests as they come, grouped: while the model answers one group, the requests that arrive
    queue up, and the next call takes all of them (up to ``budget`` characters) as one list, on one worker
    thread. An idle server answers a lone request at once; ``wait`` seconds more may be spent gathering."""

    def __init__(self, predict, wait: float, budget: int):
        self.predict, self.wait, self.budget = predict, wait, budget
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqtext-batch")
        self.task: asyncio.Task | None = None
        self.calls = 0  # model calls made, for tests and the log

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        while self.queue is not None and not self.queue.empty():
            _, future = self.queue.get_nowait()
            future.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown)

    async def submit(self, texts: list[str]) -> list:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = None
        while True:
            first = pending or await self.queue.get()
            group, size, pending = [first], sum(map(len, first[0])), None
            deadline = loop.time() + self.wait
            while pending is None:
                if not self.queue.empty():  # what came while the model was busy: the next batch, at once
                    item = self.queue.get_nowait()
                elif (left := deadline - loop.time()) > 0:  # an optional wait for more
                    try:
                        item = await asyncio.wait_for(self.queue.get(), left)
                    except TimeoutError:
                        break
                else:
                    break
                if size + sum(map(len, item[0])) > self.budget:
                    pending = item  # starts the next group
                    break
                group.append(item)
                size += sum(map(len, item[0]))
            texts = [text for item, _ in group for text in item]
            try:
                found = await loop.run_in_executor(self.executor, self.predict, texts)
                self.calls += 1
            except Exception:  # noqa: BLE001 - one request's failure must not fail the others: each alone
                for item, future in group:
                    await self._alone(item, future)
                continue
            start = 0
            for item, future in group:
                if not future.done():
                    future.set_result(found[start : start + len(item)])
                start += len(item)

    async def _alone(self, texts: list[str], future: asyncio.Future) -> None:
        try:
            found = await asyncio.get_running_loop().run_in_executor(self.executor, self.predict, texts)
        except Exception as err:  # noqa: BLE001 - this request's own failure
            if not future.done():
                future.set_exception(err)
            return
        if not future.done():
            future.set_result(found)


class Served:
    """The model the server answers with, replaced whole by ``reload``."""

    def __init__(self, source: str | Path, int8: bool):
        self.source, self.int8 = source, int8
        self.model, self.card = self._load()
        self.lock = threading.Lock()  # one reload at a time

    def _load(self):
        """The model and its card, read once: the card on disk may change under a later save."""
        model = api.wrap(checkpoint.load(self.source, repair=False), self.int8)  # never touch a save in progress
        return model, model.card

    @property
    def name(self) -> str:
        path = Path(self.model.checkpoint.path)
        return path.parent.name if path.name in ("best", "last") else path.name

    def reload(self) -> bool:
        """Load the model again from its source; on any failure keep serving the old one."""
        with self.lock:
            try:
                fresh, card = self._load()
            except Exception as err:  # noqa: BLE001 - a half-written or broken checkpoint must not stop the server
                log.warning("seqtext: reload of %s failed, still serving the old model: %s", self.source, err)
                return False
            if fresh.kind != self.model.kind:
                found, serving = fresh.kind, self.model.kind
                log.warning("seqtext: reload of %s found a %s, not a %s: still serving the old one", self.source, found, serving)
                return False
            self.model, self.card = fresh, card  # one assignment each: a request sees the old model or the new
        log.info("seqtext: reloaded %s", self.source)
        return True


class Gate:
    """A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task a request): bodies over the limit
    get 413, and with an API key every path but ``OPEN_PATHS`` needs ``Authorization: Bearer KEY``."""

    def __init__(self, app, api_key: str | None, max_body: int):
        self.app, self.max_body = app, max_body
        self.wanted = None if api_key is None else f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            message = f"the body has {int(length):,} bytes; the limit is {self.max_body:,}"
            return await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
        if self.wanted is not None and scope["path"] not in OPEN_PATHS:
            if not secrets.compare_digest(headers.get(b"authorization", b""), self.wanted):
                message = "missing or wrong API key: send Authorization: Bearer KEY"
                return await JSONResponse({"error": message}, status_code=401)(scope, receive, send)
        if scope["method"] == "POST" and not headers.get(b"content-type", b"").startswith(b"application/json"):
            # every body here is JSON: read it so whatever the client called it (curl -d says form data)
            kept = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
            scope = {**scope, "headers": [*kept, (b"content-type", b"application/json")]}
        return await self.app(scope, receive, send)


def create_app(source: str | Path, *, api_key: str | None = None, int8: bool = False, limits: Limits = Limits()) -> FastAPI:
    """The server's ASGI app for the model at ``source`` (loaded now: a bad path fails before any port is bound)."""
    served = Served(source, int8)

    def predict(texts: list[str]) -> list:
        model = served.model
        return model.predict(texts)

    batcher = Batcher(predict, limits.batch_wait, limits.batch_chars)
    generating = threading.BoundedSemaphore(limits.generations)

    async def lifespan(app: FastAPI):
        batcher.start()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, served.reload))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or no SIGHUP
            pass
        yield
        await batcher.stop()

    app = FastAPI(title="seqtext", summary=f"{served.model.kind} {served.name}", lifespan=lifespan)
    app.state.served, app.state.batcher, app.state.limits = served, batcher, limits

    app.add_middleware(Gate, api_key=api_key, max_body=limits.max_body)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError):
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return JSONResponse({"error": _validation_message(err)}, status_code=400 if _is_json_error(err) else 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception):
        log.exception("seqtext: error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"the server failed ({type(err).__name__}); its log has the details"}, status_code=500)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model_card() -> dict:
        model, card = served.model, served.card
        return {"kind": model.kind, "name": served.name, "labels": getattr(model, "labels", None), "int8": int8,
                "limits": limits.__dict__, "card": card}  # fmt: skip

    @app.post("/v1/classify")
    async def classify(request: ClassifyRequest) -> JSONResponse:
        if served.model.kind != "classifier":
            raise RequestError(400, f"this server holds a {served.model.kind}: POST /v1/generate")
        _check_texts(request.texts, limits)
        predictions = await batcher.submit(request.texts)
        for number, prediction in enumerate(predictions):
            if prediction.error is not None:
                raise RequestError(400, f"texts[{number}] {prediction.error}")
        answer = {"predictions": [_prediction(p, request.explain) for p in predictions], "model": served.name}
        return JSONResponse(answer)  # as it is: FastAPI's check of a returned dict costs more than the model here

    @app.post("/v1/generate")
    async def generate(request: GenerateRequest):
        model = served.model
        if model.kind != "language_model":
            raise RequestError(400, f"this server holds a {model.kind}: POST /v1/classify")
        if len(request.prompt) > limits.max_chars:
            raise RequestError(413, f"prompt has {len(request.prompt):,} characters; the limit is {limits.max_chars:,}")
        _check_unicode(request.prompt, "prompt")
        if request.length > limits.max_length:
            raise RequestError(413, f"length is {request.length:,}; the limit is {limits.max_length:,}")
        options = {"prompt": request.prompt, "length": request.length, "temperature": request.temperature,
                   "top_k": request.top_k, "top_p": request.top_p, "seed": request.seed}  # fmt: skip
        if not generating.acquire(blocking=False):
            raise RequestError(503, f"the server is answering {limits.generations} generate requests already; try again")
        loop = asyncio.get_running_loop()
        try:
            if request.stream:  # a bad prompt fails here, before any event
                pieces = await loop.run_in_executor(None, lambda: _checked(lambda: model.generate(**options, stream=True)))
                events = _events(pieces, generating.release)
                return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store"})
            text = await loop.run_in_executor(None, lambda: _checked(lambda: model.generate(**options)))
        except BaseException:
            generating.release()
            raise
        generating.release()
        return {"text": text, "model": served.name}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("seqtext").joinpath("static/index.html").read_text(encoding="utf-8"))

    return app


def _checked(call):
    """``call()``, a seqtext error in it a 400 answer naming what was wrong."""
    try:
        return call()
    except SeqtextError as err:
        raise RequestError(400, str(err)) from None


def _events(pieces, done):
    """Server-Sent Events for generated pieces: one ``data`` event a piece, then ``done`` (or ``error``);
    ``done()`` is called at the end, however it ends (the client may go away)."""
    try:
        for piece in pieces:
            if piece:
                yield f"data: {json.dumps({'text': piece})}\n\n"
        yield "event: done\ndata: {}\n\n"
    except Exception as err:  # noqa: BLE001 - the answer has begun: the error becomes an event
        log.exception("seqtext: generation failed")
        yield f"event: error\ndata: {json.dumps({'error': f'generation failed ({type(err).__name__})'})}\n\n"
    finally:
        done()


def _check_texts(texts: list[str], limits: Limits) -> None:
    if len(texts) > limits.max_texts:
        raise RequestError(413, f"texts has {len(texts):,} texts; the limit is {limits.max_texts:,} a request")
    for number, text in enumerate(texts):
        if not text.strip():
            raise RequestError(400, f"texts[{number}] is empty")
        if len(text) > limits.max_chars:
            raise RequestError(413, f"texts[{number}] has {len(text):,} characters; the limit is {limits.max_chars:,}")
        _check_unicode(text, f"texts[{number}]")


def _check_unicode(text: str, field: str) -> None:
    """JSON may carry a lone surrogate (\\ud800), which is no character and which the tokenizer cannot read."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        message = f"{field} holds {text[err.start]!r} at character {err.start}, which is not a Unicode character"
        raise RequestError(400, message) from None


def _prediction(prediction, explain: bool) -> dict:
    found = prediction.to_dict(explain)
    del found["text"]  # the client sent it
    return found


def _is_json_error(err: RequestValidationError) -> bool:
    return any(error.get("type") == "json_invalid" for error in err.errors())


def _validation_message(err: RequestValidationError) -> str:
    """One line for the first problem: where it is and what it is."""
    errors = err.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'malformed')})"
    where = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(where) if where else "body"
    if first.get("type") == "missing":
        return f"{field} is missing"
    if first.get("type") == "extra_forbidden":
        return f"{field} is not a field of this request"
    return f"{field}: {first.get('msg', 'not valid')}"


def serve(source: str | Path, host: str = "127.0.0.1", port: int = 8000, *, api_key: str | None = None,
          int8: bool = False, limits: Limits = Limits()) -> int:  # fmt: skip
    """Serve until SIGTERM or Ctrl-C; requests in flight finish first (uvicorn then ends the process by
    the signal it caught, as a supervisor expects)."""
    import uvicorn

    app = create_app(source, api_key=api_key, int8=int8, limits=limits)
    served = app.state.served
    where = f"http://{host}:{port}/"
    print(f"seqtext: serving {served.model.kind} {served.name} at {where}{' (API key required)' if api_key else ''}", flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30, access_log=False)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 2  # not started: uvicorn logged why (the port is taken, say)
