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

import asyncio
import functools
import json
import logging
import os
import secrets
import signal
import threading
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated

import h11
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from seqtext import api, checkpoint, kinds
from seqtext.classifier.predict import readable_problem
from seqtext.errors import ConfigError, SeqtextError
from seqtext.language_model.generate import GREEDY_BELOW, TEMPERATURE_MAX, TOP_P_MIN

log = logging.getLogger("seqtext.serve")
OPEN_PATHS = ("/health", "/")  # answered without the API key: liveness, and the page that asks for the key
WORKER_START = 120.0  # seconds a new worker may take to import torch and load the model (a large one, a busy machine)


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts in one classify request
    max_chars: int = 20_000  # characters in one text or prompt
    max_length: int = 2_000  # tokens one generate request may ask for
    batch_wait: float = 0.0  # seconds to also wait for more requests (those that came while the model was busy join anyway)
    batch_chars: int = 50_000  # characters one shared model call may hold (a budget known before tokenizing)
    generations: int = 4  # generate requests answered at once; more get 503 (each keeps a thread busy)
    max_body: int = 4 * 2**20  # bytes of one request body
    drain_body: int = 64 * 2**20  # bytes of a body over max_body read and dropped, so that its client gets the 413
    header_timeout: float = 10.0  # seconds a connection may take to send a request's headers
    graceful: float = 30.0  # seconds SIGTERM waits for requests in flight (a client that stopped reading too)


def request_models(limits: Limits) -> tuple[type[BaseModel], type[BaseModel]]:
    """The two request bodies, their schema carrying this server's limits. Those limits are published, not
    validated here: the handlers answer them with 413 and a message naming the limit, and an empty text
    with 400, as a client should be told (a 422 is for a body of the wrong shape)."""
    text = {"type": "string", "minLength": 1, "maxLength": limits.max_chars, "pattern": "\\S"}

    class ClassifyRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[StrictStr] = Field(min_length=1, json_schema_extra={"maxItems": limits.max_texts, "items": text})
        explain: StrictBool = False

    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompt: StrictStr = Field("", json_schema_extra={"maxLength": limits.max_chars})
        length: StrictInt = Field(200, ge=0, json_schema_extra={"maximum": limits.max_length})
        temperature: Annotated[StrictFloat | StrictInt, Field(ge=0, le=TEMPERATURE_MAX)] = Field(
            1.0, description=f"0, or anything below {GREEDY_BELOW:g}, takes the most likely token (greedy)"
        )
        top_k: StrictInt | None = Field(None, ge=1, le=2**31 - 1)
        top_p: Annotated[StrictFloat | StrictInt, Field(ge=TOP_P_MIN, le=1)] | None = None
        seed: StrictInt | None = Field(None, ge=0, le=2**53 - 1)  # exact in a JSON number, whatever the client parses with
        stream: StrictBool = False

    return ClassifyRequest, GenerateRequest


def _error(description: str) -> dict:
    schema = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# What every endpoint but the open ones may answer besides 200, in the OpenAPI schema
ERRORS = {401: _error("missing or wrong API key"), 413: _error("the body is over the limit (GET /v1/model: limits)")}
REQUEST_ERRORS = {**ERRORS, 400: _error("not valid JSON, or a value the model cannot take"),
                  422: _error("a field missing, of the wrong type or out of range")}  # fmt: skip
EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string", "enum": ["message", "done", "error"]}, "data": {"type": "string"}}}  # fmt: skip
EVENTS = {"description": "with stream: Server-Sent Events, `data: {\"text\": piece}` ... `event: done`",
          "content": {"text/event-stream": {"schema": EVENT}}}  # fmt: skip


class RequestError(Exception):
    """A request the server will not answer: its status and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class _Job:
    """A classify request in the batcher: the pieces of its texts still to label, what was found so far."""

    pieces: deque
    future: asyncio.Future
    found: list = field(default_factory=list)


def _pieces(texts: list[str], size: int) -> list[list[str]]:
    """``texts`` cut into runs of consecutive texts of at most ``size`` characters (a longer text alone)."""
    pieces, current, chars = [], [], 0
    for text in texts:
        if current and chars + len(text) > size:
            pieces.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    return [*pieces, current] if current else pieces


class Batcher:
    """Classify requests as they come, grouped and interleaved: while the model answers one group, the
    requests that arrive queue up, and the next call takes a piece of each (up to ``budget`` characters in
    all) as one list, on one worker thread. A request larger than a piece (``budget // 4`` characters) is
    answered over several calls, so that a one-word request that comes behind 64 long texts joins the next
    call rather than waiting for all of them. An idle server answers a lone request at once; ``wait``
    seconds more may be spent gathering."""

    def __init__(self, predict, wait: float, budget: int):
        self.predict, self.wait, self.budget = predict, wait, budget
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqtext-batch")
        self.task: asyncio.Task | None = None
        self.calls = 0  # model calls made: fewer than requests when requests share a call

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        while self.queue is not None and not self.queue.empty():
            self.queue.get_nowait().future.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown)

    async def submit(self, texts: list[str]) -> list:
        if not texts:
            return []
        job = _Job(deque(_pieces(texts, max(1, self.budget // 4))), asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _run(self) -> None:
        waiting: deque[_Job] = deque()  # requests with pieces left, in the order they are next served
        while True:
            if not waiting:
                waiting.append(await self.queue.get())
                await self._gather(waiting)
            fresh = []
            while not self.queue.empty():  # what came while the model was busy: served first in the next call
                fresh.append(self.queue.get_nowait())
            waiting.extendleft(reversed(fresh))
            group = self._group(waiting)
            texts = [text for _, piece in group for text in piece]
            try:
                found = await asyncio.get_running_loop().run_in_executor(self.executor, self.predict, texts)
                self.calls += 1
            except Exception:  # noqa: BLE001 - one request's failure must not fail the others: each piece alone
                for job, piece in group:
                    await self._alone(job, piece)
            else:
                start = 0
                for job, piece in group:
                    job.found.extend(found[start : start + len(piece)])
                    start += len(piece)
            for job, _ in group:
                if not job.pieces and not job.future.done():
                    job.future.set_result(job.found)

    async def _gather(self, waiting: deque) -> None:
        """The optional ``wait`` for more requests before the first call of a quiet server."""
        deadline = asyncio.get_running_loop().time() + self.wait
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                waiting.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                return

    def _group(self, waiting: deque) -> list[tuple[_Job, list[str]]]:
        """One piece from each waiting request in turn, up to the budget (at least one piece); the requests
        served move behind those that were not, and those done leave."""
        group, size, served = [], 0, []
        for job in list(waiting):
            if job.future.done():  # cancelled: its client went away
                waiting.remove(job)
                continue
            piece_size = sum(map(len, job.pieces[0]))
            if group and size + piece_size > self.budget:
                continue
            group.append((job, job.pieces.popleft()))
            size += piece_size
            served.append(job)
            waiting.remove(job)
        waiting.extend(job for job in served if job.pieces)
        return group

    async def _alone(self, job: _Job, piece: list[str]) -> None:
        try:
            found = await asyncio.get_running_loop().run_in_executor(self.executor, self.predict, piece)
        except Exception as err:  # noqa: BLE001 - this request's own failure
            job.pieces.clear()
            if not job.future.done():
                job.future.set_exception(err)
            return
        job.found.extend(found)


class Served:
    """The model the server answers with, replaced whole by ``reload``."""

    def __init__(self, source: str | Path, int8: bool, precision: str = "fp32"):
        self.source, self.int8, self.precision = source, int8, precision
        self.model, self.card = self._load()
        if kinds.get(self.model.kind).route is None:
            which = ", ".join(f"{kind.name.replace('_', ' ')}s" for kind in kinds.every() if kind.route)
            raise ConfigError(f"a {self.model.kind.replace('_', ' ')} answers no requests: the server holds {which}")
        self.lock = threading.Lock()  # one reload at a time

    def _load(self):
        """The model and its card, read once: the card on disk may change under a later save."""
        model = api.wrap(checkpoint.load(self.source, repair=False), self.int8, self.precision)  # never touch a save in progress
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
    """A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task a request): with an API key every
    path but ``OPEN_PATHS`` needs ``Authorization: Bearer KEY``, and a body is read here, counted as it
    arrives, before the app sees it. A body over ``max_body`` bytes (by its Content-Length, or chunked and
    counted) is never held: it is read and dropped up to ``drain_body`` bytes, so that a client still
    sending gets its 413 answer rather than a reset connection, and then answered 413."""

    def __init__(self, app, api_key: str | None, max_body: int, drain_body: int):
        self.app, self.max_body, self.drain_body = app, max_body, drain_body
        self.wanted = None if api_key is None else f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.wanted is not None and scope["path"] not in OPEN_PATHS:
            if not secrets.compare_digest(headers.get(b"authorization", b""), self.wanted):
                message = "missing or wrong API key: send Authorization: Bearer KEY"
                return await JSONResponse({"error": message}, status_code=401)(scope, receive, send)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            if int(length) <= self.drain_body and b"100-continue" not in headers.get(b"expect", b"").lower():
                await _drain(receive, int(length))
            return await _too_large(f"{int(length):,} bytes", self.max_body, scope, receive, send)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await _read_body(receive, self.max_body)
            if body is None:
                await _drain(receive, self.drain_body - self.max_body)
                return await _too_large(f"more than {self.max_body:,} bytes", self.max_body, scope, receive, send)
            receive = _replay(body, receive)
        if scope["method"] == "POST" and not headers.get(b"content-type", b"").startswith(b"application/json"):
            # every body here is JSON: read it so whatever the client called it (curl -d says form data)
            kept = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
            scope = {**scope, "headers": [*kept, (b"content-type", b"application/json")]}
        return await self.app(scope, receive, send)


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes ``limit`` bytes (what came is dropped)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(parts)
        size += len(message.get("body", b""))
        if size > limit:
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _drain(receive, budget: int) -> None:
    """Read and drop up to ``budget`` more bytes of a body, or to its end."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


def _replay(body: bytes, receive):
    """A ``receive`` that gives the body already read, then whatever the connection says next (a disconnect)."""
    given = False

    async def replayed():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _too_large(size: str, limit: int, scope, receive, send) -> None:
    message = f"the body has {size}; the limit is {limit:,}"
    headers = {"Connection": "close"}
    await JSONResponse({"error": message}, status_code=413, headers=headers)(scope, receive, send)


def create_app(source: "str | Path | Served", *, api_key: str | None = None, int8: bool = False, precision: str = "fp32",
               limits: Limits = Limits()) -> FastAPI:  # fmt: skip
    """The server's ASGI app for the model at ``source`` (loaded now: a bad path fails before any port is
    bound), or for a model already loaded (a ``Served``; ``int8`` and ``precision`` are then its own)."""
    served = source if isinstance(source, Served) else Served(source, int8, precision)
    batcher = Batcher(lambda texts: served.model.predict(texts), limits.batch_wait, limits.batch_chars)
    ClassifyRequest, GenerateRequest = request_models(limits)

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
    app.add_middleware(Gate, api_key=api_key, max_body=limits.max_body, drain_body=limits.drain_body)
    _add_error_handlers(app)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", responses=ERRORS)
    async def model_card() -> dict:
        model, card = served.model, served.card
        return {"kind": model.kind, "name": served.name, "labels": getattr(model, "labels", None), "int8": served.int8,
                "precision": model.precision, "limits": limits.__dict__, "card": _without_paths(card)}  # fmt: skip

    _add_classify(app, served, batcher, limits, ClassifyRequest)
    _add_generate(app, served, limits, GenerateRequest)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("seqtext").joinpath("static/index.html").read_text(encoding="utf-8"))

    return app


def _check_route(served: "Served", route: str) -> None:
    """A 400 unless the served model's kind answers POST /v1/``route``, naming the route that does."""
    kind = served.model.kind
    answers = kinds.get(kind).route
    if answers != route:
        elsewhere = f"POST /v1/{answers}" if answers else "it answers no requests"
        raise RequestError(400, f"this server holds a {kind}: {elsewhere}")


def _add_classify(app: FastAPI, served: "Served", batcher: "Batcher", limits: Limits, ClassifyRequest) -> None:
    """POST /v1/classify: the texts through the batcher (requests that come together share a model call)."""

    @app.post("/v1/classify", responses=REQUEST_ERRORS)
    async def classify(request: ClassifyRequest) -> JSONResponse:
        _check_route(served, "classify")
        _check_texts(request.texts, limits)
        predictions = await batcher.submit(request.texts)
        for number, prediction in enumerate(predictions):
            if prediction.error is not None:
                raise RequestError(400, f"texts[{number}] {prediction.error}")
        answer = {"predictions": [_prediction(p, request.explain) for p in predictions], "model": served.name}
        if sum(map(len, request.texts)) < limits.batch_chars:
            return JSONResponse(answer)  # as it is: FastAPI's check of a returned dict costs more than the model here
        body = await asyncio.get_running_loop().run_in_executor(None, json.dumps, answer)  # megabytes: off the event loop
        return Response(body, media_type="application/json")


def _add_generate(app: FastAPI, served: "Served", limits: Limits, GenerateRequest) -> None:
    """POST /v1/generate: at most ``limits.generations`` at once, each holding a slot that comes back
    whatever happens to its client."""
    generating = threading.BoundedSemaphore(limits.generations)

    @app.post("/v1/generate", responses={**REQUEST_ERRORS, 200: EVENTS, 503: _error("all generation slots busy")})
    async def generate(request: GenerateRequest):
        model = served.model
        _check_route(served, "generate")
        if len(request.prompt) > limits.max_chars:
            raise RequestError(413, f"prompt has {len(request.prompt):,} characters; the limit is {limits.max_chars:,}")
        _check_unicode(request.prompt, "prompt")
        if request.length > limits.max_length:
            raise RequestError(413, f"length is {request.length:,}; the limit is {limits.max_length:,}")
        options = {"prompt": request.prompt, "length": request.length, "temperature": request.temperature,
                   "top_k": request.top_k, "top_p": request.top_p, "seed": request.seed}  # fmt: skip
        slot = _Slot(generating)
        if not slot.take():
            raise RequestError(503, f"the server is answering {limits.generations} generate requests already; try again")
        loop = asyncio.get_running_loop()
        try:
            if request.stream:  # a bad prompt fails here, before any event
                pieces = await loop.run_in_executor(None, lambda: _checked(lambda: model.generate(**options, stream=True)))
                return _GenerationStream(pieces, slot)  # which releases the slot when its response ends
            text = await loop.run_in_executor(None, lambda: _checked(lambda: model.generate(**options)))
        except BaseException:
            slot.release()
            raise
        slot.release()
        return {"text": text, "model": served.name}


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "one line"}``: the request's own (4xx), or the server's (500, logged)."""

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


def _without_paths(value):
    """The card as clients may see it: a path on the server's disk becomes its last part (``/home/a/data/x.csv``
    -> ``x.csv``), so that the answer does not show how the server's machine is laid out."""
    if isinstance(value, dict):
        return {key: _without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_paths(item) for item in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or value[1:3] in (":\\", ":/")):
        return Path(value).name
    return value


def _checked(call):
    """``call()``, a seqtext error in it a 400 answer naming what was wrong."""
    try:
        return call()
    except SeqtextError as err:
        raise RequestError(400, str(err)) from None


class _Slot:
    """One of the server's generation slots, released once whatever happens: by the response that streams
    from it, by the request that failed before its response, or when its response is collected unsent."""

    def __init__(self, semaphore: threading.BoundedSemaphore):
        self.semaphore, self.held = semaphore, False
        self.lock = threading.Lock()

    def take(self) -> bool:
        self.held = self.semaphore.acquire(blocking=False)
        return self.held

    def release(self) -> None:
        with self.lock:
            if self.held:
                self.held = False
                self.semaphore.release()


class _GenerationStream(StreamingResponse):
    """Generated pieces as Server-Sent Events, the generation slot released when the response ends however
    it ends: done, failed, or its client gone before or during it (Starlette then cancels the stream, and a
    generator that never started runs no ``finally`` of its own)."""

    def __init__(self, pieces, slot: _Slot):
        self.pieces, self.slot, self.stop = pieces, slot, threading.Event()
        super().__init__(_events(pieces, self.stop), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
        weakref.finalize(self, slot.release)  # a response never sent (its request cancelled) still frees its slot

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stop.set()  # a piece being drawn in a worker thread now is the last
            self.slot.release()


def _events(pieces, stop: threading.Event):
    """Server-Sent Events for generated pieces: one ``data`` event a piece, then ``done`` (or ``error``);
    drawing ends early once ``stop`` is set (the client went away)."""
    try:
        for piece in pieces:
            if stop.is_set():
                return
            if piece:
                yield f"data: {json.dumps({'text': piece})}\n\n"
        yield "event: done\ndata: {}\n\n"
    except Exception as err:  # noqa: BLE001 - the answer has begun: the error becomes an event
        log.exception("seqtext: generation failed")
        yield f"event: error\ndata: {json.dumps({'error': f'generation failed ({type(err).__name__})'})}\n\n"
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def _check_texts(texts: list[str], limits: Limits) -> None:
    if len(texts) > limits.max_texts:
        raise RequestError(413, f"texts has {len(texts):,} texts; the limit is {limits.max_texts:,} a request")
    for number, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise RequestError(413, f"texts[{number}] has {len(text):,} characters; the limit is {limits.max_chars:,}")
        if (problem := readable_problem(text)) is not None:  # empty, invisible, or not Unicode: as predict says
            raise RequestError(400, f"texts[{number}] {problem}")


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
          int8: bool = False, precision: str = "fp32", limits: Limits = Limits(), workers: int | None = None) -> int:  # fmt: skip
    """Serve until SIGTERM or Ctrl-C; requests in flight finish first. One process ends by the signal it
    caught, as a supervisor expects; ``workers`` > 1 processes share the port, each with its own copy of the
    model and one torch thread (``serve_workers``). None: one a core for a classifier (``default_workers``),
    one for a language model (each would hold the model and its generation slots). The model loads first,
    so a bad checkpoint fails before any port is bound."""
    served = Served(source, int8, precision)
    if workers is None:
        workers = default_workers() if kinds.get(served.model.kind).worker_per_core else 1
    if workers > 1:
        return serve_workers(served, host, port, workers, api_key=api_key, limits=limits)
    server = make_server(served, host, port, api_key=api_key, limits=limits)
    _say_serving(served, host, port, api_key, "")
    server.run()
    return 0 if server.started else 2  # not started: uvicorn logged why (the port is taken, say)


def _say_serving(served: "Served", host: str, port: int, api_key: str | None, workers: str) -> None:
    where = f"http://{host}:{port}/"
    key = " (API key required)" if api_key else ""
    print(f"seqtext: serving {served.model.kind} {served.name} at {where}{workers}{key}", flush=True)


def default_workers() -> int:
    """Worker processes for serving a classifier: one a core this process may run on, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8))


def serve_workers(served: "Served", host: str, port: int, workers: int, *, api_key: str | None, limits: Limits) -> int:
    """``workers`` processes (uvicorn's supervisor) on one socket, each building the app with
    ``app_from_settings`` (handed over pickled, never through the environment: it holds the API key) with
    one torch thread, so that one Python process no longer parses every request; each runs at the
    precision ``served`` resolved. SIGHUP replaces the workers one at a time, each new one loading the
    checkpoint again; the first that cannot load it (a save still being written) is dropped and the restart
    stops there: the workers not yet replaced keep the old model, those replaced serve the new one.
    SIGTERM stops them all, each letting its requests in flight finish; returns 0 then, 2 when a worker
    could not start."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    settings = {"source": str(served.source), "api_key": api_key, "int8": served.int8,
                "precision": served.model.precision, "limits": limits}  # fmt: skip
    config = uvicorn.Config(functools.partial(app_from_settings, settings), factory=True, host=host, port=port,
                            workers=workers, log_level="warning", timeout_graceful_shutdown=limits.graceful,
                            access_log=False, http=HeaderDeadline, timeout_worker_healthcheck=WORKER_START)  # fmt: skip
    socket = config.bind_socket()
    _say_serving(served, host, port, api_key, f" ({workers} worker processes)")
    supervisor = Multiprocess(config, sockets=[socket])
    supervisor.run()
    return 2 if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes) else 0


def app_from_settings(settings: dict) -> FastAPI:
    """The app of one worker of ``serve_workers``; a checkpoint it cannot load ends the worker as one
    that failed to start (uvicorn's code), so that a restart keeps the old worker."""
    import sys

    import torch
    from uvicorn.config import STARTUP_FAILURE

    settings = dict(settings)
    limits = settings.pop("limits")
    HeaderDeadline.timeout = limits.header_timeout  # this process serves this one app
    torch.set_num_threads(1)  # one process a core
    try:
        return create_app(settings.pop("source"), limits=limits, **settings)
    except SeqtextError as err:
        log.error("seqtext: a worker could not load its model: %s", err)
        sys.exit(STARTUP_FAILURE)


def make_server(source: "str | Path | Served", host: str = "127.0.0.1", port: int = 8000, *, api_key: str | None = None,
                int8: bool = False, precision: str = "fp32", limits: Limits = Limits()):  # fmt: skip
    """The uvicorn server ``serve`` runs (its ``run()`` blocks; in a thread other than the main one it
    leaves signals alone)."""
    import uvicorn

    app = create_app(source, api_key=api_key, int8=int8, precision=precision, limits=limits)
    protocol = type("HeaderDeadline", (HeaderDeadline,), {"timeout": limits.header_timeout})  # this server's own
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=limits.graceful,
                            access_log=False, http=protocol)  # fmt: skip
    return uvicorn.Server(config)


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers: a connection that opens and then
    sends its headers a byte at a time (or nothing) is closed after ``timeout`` seconds, instead of
    holding a connection slot for as long as it likes. uvicorn's own keep-alive timeout covers idle
    connections only once a first response is done. ``timeout`` is the process's (``Limits.header_timeout``:
    ``make_server`` gives each server a subclass of its own; a worker of ``serve_workers`` sets it)."""

    timeout: float = Limits.header_timeout
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        waiting = self.cycle is None or self.cycle.response_complete  # no request whose headers came since
        if waiting and self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
