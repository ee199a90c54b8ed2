"""Serving: OpenAI chat request <-> OCR request; jobs that outlive their callers; results stored off the response path.

Three bounded pools keep the parts apart: S3 calls (`s3`), image decoding (`decode`) and the engine
(the batching loop's own thread), so a hung S3 cannot starve decoding, the batch loop or /health.
Every deadline counts from the moment the request arrived (`received`), image reading included.
Streaming lives in `streaming.py`, result writes and the spool in `results.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from PIL import Image

from gpu_worker.annotate import annotate_png
from gpu_worker.batching import BatchLoop, Pending
from gpu_worker.engines.base import Engine
from gpu_worker.intake import decode_image
from gpu_worker.metrics import WorkerMetrics
from gpu_worker.protocol import (
    MODEL_ALIAS,
    REQUEST_ID_RE,
    Box,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    DataImage,
    GatewayTimeout,
    ImageSize,
    ModelCard,
    ModelList,
    ModelNotFound,
    NotReady,
    OcrExtension,
    OcrSpec,
    PageOcr,
    ResponseMessage,
    ServiceError,
    Timings,
    UpstreamError,
    Usage,
    mode_cards,
    parse_image_url,
)
from gpu_worker.results import S3_ERRORS, ResultWriter
from gpu_worker.settings import WorkerSettings
from gpu_worker.spool import ResultSpool, StoredObject
from gpu_worker.storage import ResultStore, result_prefix
from gpu_worker.streaming import sse_events
from gpu_worker.types import OcrRequest, OcrResult

log = logging.getLogger(__name__)
T = TypeVar("T")


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a sane id, else a new one."""
    if header and REQUEST_ID_RE.match(header):
        return header
    return f"ocr-{uuid.uuid4().hex}"


@dataclass
class Job:
    """One accepted request: queued, run, stored; it finishes even when its caller has gone."""

    request_id: str
    spec: OcrSpec
    request: OcrRequest
    pending: Pending
    received: float
    owner: str | None = None
    pieces: asyncio.Queue[str] | None = None
    task: asyncio.Task[ChatCompletion] | None = None
    # Set by the route once the answer is handed to the server: the result write starts after it, so its
    # botocore work never competes with serialising and sending the answer.
    answered: asyncio.Event = field(default_factory=asyncio.Event)


class OcrService:
    """Everything between the routes and the batching loop."""

    def __init__(self, settings: WorkerSettings, engine: Engine, store: ResultStore, metrics: WorkerMetrics):
        self.settings = settings
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.loop = BatchLoop(
            engine, metrics, max_batch=settings.max_batch_size, timeout_ms=settings.batch_timeout_ms,
            max_queue=settings.max_queue,
        )  # fmt: skip
        self.s3_pool = ThreadPoolExecutor(max_workers=settings.s3_threads, thread_name_prefix="s3")
        self.decode_pool = ThreadPoolExecutor(
            max_workers=settings.decode_threads, thread_name_prefix="decode"
        )
        spool_dir = settings.spool_dir or str(
            Path(tempfile.gettempdir()) / f"ocr-worker-spool-{settings.port}"
        )
        self.writer = ResultWriter(
            store, ResultSpool(spool_dir, settings.spool_max_bytes), metrics, self.s3_pool,
            retry_s=settings.spool_retry_s, probe_interval_s=settings.s3_probe_interval_s,
            probe_timeout_s=settings.s3_probe_timeout_s,
        )  # fmt: skip
        self.ready = False
        self.load_error: str | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._load_task: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop, the result writer, and load the engine in the background (/livez answers meanwhile)."""
        self.loop.start()
        self.writer.start()
        self._load_task = asyncio.create_task(self._load())

    async def _load(self) -> None:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self.engine.load)
        except Exception as exc:
            self.load_error = str(exc) or type(exc).__name__
            log.error("engine %s failed to load: %s", self.engine.name, self.load_error)
            return
        self.ready = True
        log.info("engine %s ready on %s in %.1f s", self.engine.name, self.engine.device,
                 time.perf_counter() - started)  # fmt: skip

    async def stop(self) -> None:
        """Finish queued and running requests and store (or spool) their results, then stop."""
        timeout = self.settings.request_timeout_s
        await self.loop.drain(timeout)
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=timeout)
        await self.writer.stop(timeout)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        self.s3_pool.shutdown(wait=False, cancel_futures=True)
        self.decode_pool.shutdown(wait=False, cancel_futures=True)

    def health(self) -> dict[str, Any]:
        """What /health reports: the engine's state, plus `degraded` naming a dependency that fails."""
        s3 = self.writer.health()
        status = "ok" if self.ready else ("error" if self.load_error else "loading")
        if status == "ok" and not s3["ok"]:
            status = "degraded"
        return {
            "status": status,
            "engine": self.engine.name,
            "model": self.engine.model_id,
            "device": self.engine.device,
            "queue_depth": self.loop.depth,
            "error": self.load_error,
            "degraded": [] if s3["ok"] else ["s3"],
            "dependencies": {"s3": s3},
        }

    def models(self) -> ModelList:
        """The model ids this worker answers to, each with its presets and tasks."""
        cards = [
            ModelCard(id=model_id, engine=self.engine.name, tasks=list(t for t in self.engine.tasks if t != "custom"),
                      modes=mode_cards())
            for model_id in dict.fromkeys([self.engine.model_id, MODEL_ALIAS])
        ]  # fmt: skip
        return ModelList(data=cards)

    # ---- requests --------------------------------------------------------------------------------

    async def accept(
        self, body: ChatCompletionRequest, request_id: str, owner: str | None, received: float | None = None
    ) -> Job:
        """Validate, read the image, and queue: every 4xx is raised here, before any work is done."""
        received = received if received is not None else time.perf_counter()
        if body.model not in (MODEL_ALIAS, self.engine.model_id):
            raise ModelNotFound(
                f"The model {body.model!r} does not exist; use {MODEL_ALIAS!r} or {self.engine.model_id!r}.",
                param="model",
            )
        spec = body.to_ocr_request()
        self.engine.check_task(spec.task)
        if not self.ready:
            raise NotReady(self._not_ready_message(), headers={"Retry-After": "10"})
        from gpu_worker.pages import accept_document, is_document  # pages builds on this module

        if is_document(spec.image_url):  # a PDF: one request per page, answered together
            return await accept_document(self, spec, request_id, owner, received)
        self.loop.incoming += 1  # tells the loop more work is on its way (worth holding a batch open for)
        try:
            image = await self._read_image(spec.image_url, owner, received)
            request = self.page_request(spec, request_id, image)
            pieces: asyncio.Queue[str] | None = asyncio.Queue() if spec.stream else None
            budget = self._remaining(received) * self.settings.admission_wait_fraction
            pending = self.loop.submit(request, pieces.put_nowait if pieces is not None else None, budget)
        finally:
            self.loop.incoming -= 1
        job = Job(request_id, spec, request, pending, received, owner, pieces)
        job.task = asyncio.create_task(self._finish(job))
        self._jobs.add(job.task)
        job.task.add_done_callback(self._jobs.discard)
        return job

    def page_request(self, spec: OcrSpec, request_id: str, image: Image.Image) -> OcrRequest:
        """What the engine runs for one page of a request (its token cap within the worker's); whether it
        streams is the batch loop's to say (`BatchLoop.submit`)."""
        cap = self.settings.max_new_tokens
        return OcrRequest(
            request_id=request_id, image=image, task=spec.task, mode=spec.mode, prompt=spec.prompt,
            ref_text=spec.ref_text, temperature=spec.temperature, max_new_tokens=min(spec.max_tokens or cap, cap),
        )  # fmt: skip

    def _not_ready_message(self) -> str:
        if self.load_error:
            return f"The OCR engine failed to load: {self.load_error}"
        return "The OCR engine is still loading; retry shortly."

    def _remaining(self, received: float) -> float:
        return self.settings.request_timeout_s - (time.perf_counter() - received)

    async def _bounded(
        self, pool: ThreadPoolExecutor, received: float, what: str, call: Callable[[], T]
    ) -> T:
        """Run a blocking call in `pool`, within what is left of the request's budget."""
        future: Awaitable[T] = asyncio.get_running_loop().run_in_executor(pool, call)
        try:
            return await asyncio.wait_for(future, max(self._remaining(received), 0.001))
        except TimeoutError:
            raise GatewayTimeout(
                f"The request timed out after {self.settings.request_timeout_s:g} s while {what}; it was not "
                "run and no result will be stored."
            ) from None

    async def _read_image(self, url: str, owner: str | None, received: float) -> Image.Image:
        reference = parse_image_url(url, max_bytes=self.settings.max_image_bytes)
        if isinstance(reference, DataImage):
            data = reference.data
        else:
            self.store.check_upload(reference.bucket, reference.key, owner)
            if self.writer.s3_error is not None:  # a known outage: answer now, not after the S3 timeouts
                raise NotReady(
                    f"S3 is unavailable ({self.writer.s3_error.split(':')[0]}), so the uploaded image cannot be read; "
                    "retry shortly.",
                    code="s3_unavailable",
                    headers={"Retry-After": str(max(1, round(self.settings.s3_probe_interval_s)))},
                )
            limit = self.settings.max_image_bytes
            try:
                data = await self._bounded(
                    self.s3_pool, received, "reading the uploaded image from S3",
                    lambda: self.store.fetch_upload(reference.bucket, reference.key, limit),
                )  # fmt: skip
            except S3_ERRORS as exc:
                raise UpstreamError(
                    f"Could not read the uploaded image from S3 ({type(exc).__name__}); retry shortly.",
                    headers={"Retry-After": "5"},
                ) from None
        max_bytes, max_pixels = self.settings.max_image_bytes, self.settings.max_image_pixels
        return await self._bounded(
            self.decode_pool, received, "decoding the image",
            lambda: decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels),
        )  # fmt: skip

    def _timeout_error(self, job: Job) -> GatewayTimeout:
        """The 504 for a job that reached the model: it promises a stored result only when one will be."""
        head = f"The request timed out after {self.settings.request_timeout_s:g} s; "
        if self.writer.can_promise():
            tail = f"it is still running and its result will be stored under request id {job.request_id}."
        else:
            tail = (
                f"it is still running (request id {job.request_id}), but S3 is unavailable and the local "
                "spool is full, so its result may not be stored."
            )
        return GatewayTimeout(head + tail, headers={"X-Request-ID": job.request_id})

    async def wait(self, job: Job) -> ChatCompletion:
        """The finished response, or a 504 carrying the request id (the job still finishes and stores)."""
        assert job.task is not None
        try:
            return await asyncio.wait_for(asyncio.shield(job.task), max(self._remaining(job.received), 0.001))
        except TimeoutError:
            raise self._timeout_error(job) from None

    def stream(self, job: Job) -> AsyncIterator[str]:
        """SSE lines for one job (see `streaming.py`)."""
        deadline = job.received + self.settings.request_timeout_s
        return sse_events(job, self.engine.model_id, deadline, lambda: self._timeout_error(job))

    async def _finish(self, job: Job) -> ChatCompletion:
        result = await job.pending.future
        prefix = result_prefix(self.settings.results_prefix, job.request_id)
        if result.error is not None:
            self.store_failure(job, prefix, result.error)
            raise result.error
        total_ms = (time.perf_counter() - job.received) * 1000
        response = self._response(job, result, total_ms)
        drawing = Drawing(prefix + "annotated.png", job.request.image, result.boxes, response.ocr)
        self.store_result(job, prefix, response, [drawing] if result.boxes else [])
        self.metrics.tokens.labels(kind="prompt").inc(result.prompt_tokens)
        self.metrics.tokens.labels(kind="completion").inc(result.completion_tokens)
        self.metrics.requests.labels(status="200").inc()
        self.metrics.latency.observe(total_ms / 1000)
        return response

    def store_failure(self, job: Job, prefix: str, error: Exception) -> None:
        """A failed request's result.json (its status and error body), written once its answer has gone out."""
        status = _status_of(error)
        body = error.to_body() if isinstance(error, ServiceError) else {"error": {"message": str(error)}}
        document = _stored(job, status, body)
        self.writer.submit(
            job.request_id, lambda: [_json_object(prefix + "result.json", document)], job.answered
        )
        self.metrics.requests.labels(status=str(status)).inc()

    def _response(self, job: Job, result: OcrResult, total_ms: float) -> ChatCompletion:
        width, height = job.request.image.size
        ocr = OcrExtension(
            request_id=job.request_id, task=job.spec.task, mode=job.spec.mode, engine=self.engine.name,
            image=ImageSize(width=width, height=height), boxes=result.boxes, raw=result.raw,
            repetition_detected=result.repetition_detected, image_tokens=result.image_tokens, tiles=result.tiles,
            timings_ms=Timings(queue=round(job.pending.queue_ms, 1), inference=round(result.inference_ms, 1),
                               total=round(total_ms, 1)),
        )  # fmt: skip
        usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                      total_tokens=result.prompt_tokens + result.completion_tokens)  # fmt: skip
        return ChatCompletion(
            id=job.request_id, model=self.engine.model_id, usage=usage, ocr=ocr,
            choices=[Choice(message=ResponseMessage(content=result.text), finish_reason=result.finish_reason)],
        )  # fmt: skip

    def store_result(self, job: Job, prefix: str, response: ChatCompletion, drawings: list[Drawing]) -> None:
        """Sign the links the answer carries (locally: no call to S3), then hand each annotated.png and the
        result.json to the writer, which builds them once the answer has gone out (off the response path)."""
        if not self.writer.can_promise():
            self.metrics.results_lost.inc()
            response.ocr.warnings.append(
                "The result could not be stored: S3 is unavailable and the worker's local spool is full."
            )
            return
        json_key = prefix + "result.json"
        try:  # signing is local, but needs credentials: without them no write could succeed either
            links = [self.store.link(drawing.key) for drawing in drawings]
            response.ocr.result = self.store.link(json_key)
        except S3_ERRORS as exc:
            log.error("cannot sign result links for %s: %s", job.request_id, exc)
            self.metrics.results_lost.inc()
            response.ocr.warnings.append(f"The result could not be stored ({type(exc).__name__}).")
            return
        for drawing, link in zip(drawings, links, strict=True):
            drawing.target.annotated_image = link

        def build() -> list[StoredObject]:
            images = [StoredObject(d.key, annotate_png(d.image, d.boxes), "image/png") for d in drawings]
            return [*images, _json_object(json_key, _stored(job, 200, response.model_dump(mode="json")))]

        self.writer.submit(job.request_id, build, job.answered)


class Drawing(NamedTuple):
    """An annotated.png to store: its key, the page and its boxes, and the part of the answer that links to it."""

    key: str
    image: Image.Image
    boxes: list[Box]
    target: OcrExtension | PageOcr


def _status_of(error: Exception) -> int:
    return error.status if isinstance(error, ServiceError) else 500


def _json_object(key: str, document: dict[str, Any]) -> StoredObject:
    return StoredObject(key, json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json")


def _stored(job: Job, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": job.request_id,
        "owner": job.owner,
        "status": status,
        "created": int(time.time()),
        "stored_at": dt.datetime.now(dt.UTC).isoformat(),
        "body": body,
    }
