"""Serving: OpenAI chat request <-> OCR request; jobs that outlive their callers; results to S3."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from gpu_worker.annotate import annotate_png
from gpu_worker.batching import BatchLoop, Pending
from gpu_worker.engines.base import Engine
from gpu_worker.grounding import StreamCleaner
from gpu_worker.intake import decode_image
from gpu_worker.metrics import WorkerMetrics
from gpu_worker.protocol import (
    MODEL_ALIAS,
    REQUEST_ID_RE,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    DataImage,
    DeltaMessage,
    GatewayTimeout,
    ImageSize,
    ModelCard,
    ModelList,
    ModelNotFound,
    NotReady,
    OcrExtension,
    OcrSpec,
    ResponseMessage,
    ServiceError,
    Timings,
    UpstreamError,
    Usage,
    mode_cards,
    parse_image_url,
)
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore, result_prefix
from gpu_worker.types import OcrRequest, OcrResult

log = logging.getLogger(__name__)


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
    pieces: asyncio.Queue[str] | None = None
    task: asyncio.Task[ChatCompletion] | None = None


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
        self.ready = False
        self.load_error: str | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._load_task: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop and load the engine in the background (so /livez answers meanwhile)."""
        self.loop.start()
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
        log.info(
            "engine %s ready on %s in %.1f s",
            self.engine.name,
            self.engine.device,
            time.perf_counter() - started,
        )

    async def stop(self) -> None:
        """Finish queued and running requests and store their results, then stop."""
        timeout = self.settings.request_timeout_s
        await self.loop.drain(timeout)
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=timeout)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()

    def health(self) -> dict[str, Any]:
        """What /health reports."""
        status = "ok" if self.ready else ("error" if self.load_error else "loading")
        return {
            "status": status,
            "engine": self.engine.name,
            "model": self.engine.model_id,
            "device": self.engine.device,
            "queue_depth": self.loop.depth,
            "error": self.load_error,
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

    async def accept(self, body: ChatCompletionRequest, request_id: str, owner: str | None) -> Job:
        """Validate, read the image, and queue: every 4xx is raised here, before any work is done."""
        received = time.perf_counter()
        if body.model not in (MODEL_ALIAS, self.engine.model_id):
            raise ModelNotFound(
                f"The model {body.model!r} does not exist; use {MODEL_ALIAS!r} or {self.engine.model_id!r}.",
                param="model",
            )
        spec = body.to_ocr_request()
        self.engine.check_task(spec.task)
        if not self.ready:
            raise NotReady(self._not_ready_message(), headers={"Retry-After": "10"})
        image = await asyncio.to_thread(self._read_image, spec.image_url)
        request = OcrRequest(
            request_id=request_id,
            image=image,
            task=spec.task,
            mode=spec.mode,
            prompt=spec.prompt,
            ref_text=spec.ref_text,
            max_new_tokens=min(spec.max_tokens or self.settings.max_new_tokens, self.settings.max_new_tokens),
            temperature=spec.temperature,
        )
        pieces: asyncio.Queue[str] | None = asyncio.Queue() if spec.stream else None
        pending = self.loop.submit(request, pieces.put_nowait if pieces is not None else None)
        job = Job(request_id, spec, request, pending, received, pieces)
        job.task = asyncio.create_task(self._finish(job, owner))
        self._jobs.add(job.task)
        job.task.add_done_callback(self._jobs.discard)
        return job

    def _not_ready_message(self) -> str:
        if self.load_error:
            return f"The OCR engine failed to load: {self.load_error}"
        return "The OCR engine is still loading; retry shortly."

    def _read_image(self, url: str) -> Image.Image:
        reference = parse_image_url(url, max_bytes=self.settings.max_image_bytes)
        if isinstance(reference, DataImage):
            data = reference.data
        else:
            try:
                data = self.store.fetch_upload(reference.bucket, reference.key, self.settings.max_image_bytes)
            except (ClientError, BotoCoreError) as exc:
                raise UpstreamError(
                    f"Could not read the uploaded image from S3 ({type(exc).__name__})."
                ) from None
        return decode_image(
            data, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels
        )

    async def wait(self, job: Job) -> ChatCompletion:
        """The finished response, or a 504 carrying the request id (the job still finishes and stores)."""
        assert job.task is not None
        remaining = self.settings.request_timeout_s - (time.perf_counter() - job.received)
        try:
            return await asyncio.wait_for(asyncio.shield(job.task), max(remaining, 0.001))
        except TimeoutError:
            raise GatewayTimeout(
                f"The request timed out after {self.settings.request_timeout_s:g} s; its result will be stored "
                f"under request id {job.request_id}.",
                headers={"X-Request-ID": job.request_id},
            ) from None

    async def _finish(self, job: Job, owner: str | None) -> ChatCompletion:
        result = await job.pending.future
        total_ms = (time.perf_counter() - job.received) * 1000
        prefix = result_prefix(self.settings.results_prefix, job.request_id)
        if result.error is not None:
            await asyncio.to_thread(self._store_error, prefix, job, owner, result.error)
            self.metrics.requests.labels(status=str(_status_of(result.error))).inc()
            raise result.error
        response = self._response(job, result, total_ms)
        await asyncio.to_thread(self._store, prefix, job, owner, result, response)
        self.metrics.tokens.labels(kind="prompt").inc(result.prompt_tokens)
        self.metrics.tokens.labels(kind="completion").inc(result.completion_tokens)
        self.metrics.requests.labels(status="200").inc()
        self.metrics.latency.observe(total_ms / 1000)
        return response

    def _response(self, job: Job, result: OcrResult, total_ms: float) -> ChatCompletion:
        width, height = job.request.image.size
        ocr = OcrExtension(
            request_id=job.request_id,
            task=job.spec.task,
            mode=job.spec.mode,
            engine=self.engine.name,
            image=ImageSize(width=width, height=height),
            boxes=result.boxes,
            raw=result.raw,
            repetition_detected=result.repetition_detected,
            image_tokens=result.image_tokens,
            tiles=result.tiles,
            timings_ms=Timings(
                queue=round(job.pending.queue_ms, 1),
                inference=round(result.inference_ms, 1),
                total=round(total_ms, 1),
            ),
        )
        return ChatCompletion(
            id=job.request_id,
            model=self.engine.model_id,
            choices=[
                Choice(message=ResponseMessage(content=result.text), finish_reason=result.finish_reason)
            ],
            usage=Usage(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                total_tokens=result.prompt_tokens + result.completion_tokens,
            ),
            ocr=ocr,
        )

    def _store(
        self, prefix: str, job: Job, owner: str | None, result: OcrResult, response: ChatCompletion
    ) -> None:
        """Write annotated.png (when there are boxes) and result.json; on failure, warn instead."""
        try:
            if result.boxes:
                key = prefix + "annotated.png"
                self.store.put(key, annotate_png(job.request.image, result.boxes), "image/png")
                response.ocr.annotated_image = self.store.link(key)
            key = prefix + "result.json"
            response.ocr.result = self.store.link(key)
            self.store.put_json(key, _stored(job, owner, 200, response.model_dump(mode="json")))
        except (ClientError, BotoCoreError, OSError) as exc:
            log.warning("storing result %s failed: %s", job.request_id, exc)
            self.metrics.s3_failures.inc()
            response.ocr.result = None
            response.ocr.warnings.append(f"The result could not be stored in S3 ({type(exc).__name__}).")

    def _store_error(self, prefix: str, job: Job, owner: str | None, error: Exception) -> None:
        status = _status_of(error)
        body = error.to_body() if isinstance(error, ServiceError) else {"error": {"message": str(error)}}
        try:
            self.store.put_json(prefix + "result.json", _stored(job, owner, status, body))
        except (ClientError, BotoCoreError, OSError) as exc:
            log.warning("storing error result %s failed: %s", job.request_id, exc)
            self.metrics.s3_failures.inc()

    # ---- streaming -------------------------------------------------------------------------------

    async def stream(self, job: Job) -> AsyncIterator[str]:
        """SSE lines: a role chunk, content deltas, a final chunk with `ocr`, then [DONE]."""
        pieces = job.pieces if job.pieces is not None else asyncio.Queue()
        cleaner = StreamCleaner()
        model = self.engine.model_id

        def chunk(**kwargs: Any) -> str:
            return (
                "data: "
                + ChatCompletionChunk(id=job.request_id, model=model, **kwargs).model_dump_json(
                    exclude_none=True
                )
                + "\n\n"
            )

        yield chunk(choices=[ChunkChoice(delta=DeltaMessage(role="assistant", content=""))])
        assert job.task is not None
        deadline = job.received + self.settings.request_timeout_s
        try:
            while not job.task.done():
                getter = asyncio.ensure_future(pieces.get())
                remaining = deadline - time.perf_counter()
                done, _ = await asyncio.wait({getter, job.task}, timeout=max(remaining, 0.001))
                if getter in done:
                    delta = cleaner.feed(getter.result())
                    if delta:
                        yield chunk(choices=[ChunkChoice(delta=DeltaMessage(content=delta))])
                else:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                if not done:
                    raise GatewayTimeout(
                        f"The request timed out after {self.settings.request_timeout_s:g} s; its result will be "
                        f"stored under request id {job.request_id}."
                    )
            response = await job.task
            rest = ""
            while not pieces.empty():
                rest += cleaner.feed(pieces.get_nowait())
            rest += cleaner.finish(response.choices[0].message.content)
            if rest:
                yield chunk(choices=[ChunkChoice(delta=DeltaMessage(content=rest))])
            yield chunk(
                choices=[ChunkChoice(delta=DeltaMessage(), finish_reason=response.choices[0].finish_reason)],
                usage=response.usage,
                ocr=response.ocr,
            )
        except ServiceError as exc:
            yield "data: " + json.dumps(exc.to_body()) + "\n\n"
        except Exception as exc:  # never end a stream without its error chunk and [DONE]
            log.exception("stream %s failed", job.request_id)
            yield (
                "data: "
                + json.dumps(ServiceError(f"Internal error ({type(exc).__name__}).").to_body())
                + "\n\n"
            )
        yield "data: [DONE]\n\n"


def _status_of(error: Exception) -> int:
    return error.status if isinstance(error, ServiceError) else 500


def _stored(job: Job, owner: str | None, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": job.request_id,
        "owner": owner,
        "status": status,
        "created": int(time.time()),
        "stored_at": dt.datetime.now(dt.UTC).isoformat(),
        "body": body,
    }
