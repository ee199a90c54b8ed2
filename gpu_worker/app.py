"""HTTP: the worker's FastAPI app. Routes only translate HTTP <-> serving; one error shape, mapped here."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi_offline import FastAPIOffline
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpu_worker.consumer import start_jobs_consumer
from gpu_worker.engines import Engine, create_engine
from gpu_worker.limits import BodyLimit
from gpu_worker.metrics import WorkerMetrics
from gpu_worker.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelList,
    ServiceError,
    error_body,
    http_error_body,
    validation_error_body,
)
from gpu_worker.serving import OcrService, request_id_from
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore

log = logging.getLogger(__name__)
SECRET_HEADER = "x-worker-secret"  # the edge proves itself with this; only then are owner and id trusted


def error_response(exc: Exception, request_id: str | None = None) -> JSONResponse:
    """The one mapping from an exception to a status and the OpenAI error body."""
    if isinstance(exc, ServiceError):
        status, body, headers = exc.status, exc.to_body(), dict(exc.headers)
    elif isinstance(exc, RequestValidationError):
        (status, body), headers = validation_error_body(list(exc.errors())), {}
    elif isinstance(exc, StarletteHTTPException):
        status, body = exc.status_code, http_error_body(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
    else:
        log.exception("unhandled error", exc_info=exc)
        status, body, headers = 500, error_body("Internal server error.", "server_error", None, None), {}
    if request_id:
        headers["X-Request-ID"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


async def release(event: asyncio.Event) -> None:
    """Set `event` on the event loop: Starlette runs a plain function given as a background in a worker thread,
    and an asyncio.Event must not be set from another thread (nor is a thread hop worth it)."""
    event.set()


def trusted(settings: WorkerSettings, presented: str | None) -> bool:
    """True when the caller sent the shared secret (constant-time compare); never when none is configured."""
    secret = settings.worker_shared_secret
    if secret is None or not secret.get_secret_value() or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), secret.get_secret_value().encode())


def build_app(
    settings: WorkerSettings, engine: Engine | None = None, store: ResultStore | None = None
) -> FastAPI:
    """The worker app; the engine loads in the lifespan (in the background: /livez answers meanwhile)."""
    metrics = WorkerMetrics()
    service = OcrService(settings, engine or create_engine(settings), store or ResultStore(settings), metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        consumer = start_jobs_consumer(service)  # the jobs queue: a peer of these routes (None when unset)
        yield
        if consumer is not None:
            await consumer.stop(settings.request_timeout_s)
        await service.stop()

    # /docs and /redoc serve Swagger UI and ReDoc from this server (a CDN cannot be reached offline).
    app = FastAPIOffline(title="DeepSeek-OCR worker", version="0.1.0", lifespan=lifespan)
    app.state.service = service
    app.state.metrics = metrics
    body_limit = settings.max_image_bytes * 4 // 3 + 1024 * 1024  # base64 image + JSON around it

    @app.exception_handler(ServiceError)
    @app.exception_handler(RequestValidationError)
    @app.exception_handler(StarletteHTTPException)
    @app.exception_handler(Exception)
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        from_edge = trusted(settings, request.headers.get(SECRET_HEADER))
        return error_response(exc, request.headers.get("x-request-id") if from_edge else None)

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        """The process is up (always 200)."""
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once the engine is loaded and has run (`degraded` naming S3 when it fails); 503 before."""
        report = service.health()
        return JSONResponse(report, status_code=200 if service.ready else 503)

    @app.get("/v1/models", response_model=ModelList)
    @app.get("/models", response_model=ModelList, include_in_schema=False)
    async def models() -> ModelList:
        """Models with their presets (token budgets) and tasks."""
        return service.models()

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        """Prometheus metrics."""
        metrics.queue_depth.set(service.loop.depth)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        responses={
            code: {"description": "OpenAI error shape"} for code in (400, 404, 413, 415, 422, 429, 503, 504)
        },
    )
    async def chat_completions(
        request: Request,
        body: ChatCompletionRequest,
        x_request_id: Annotated[str | None, Header()] = None,
        x_ocr_owner: Annotated[str | None, Header()] = None,
        x_worker_secret: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Response:
        """OCR one page image, as an OpenAI chat completion (or a stream of chunks)."""
        # Only the edge (holding the shared secret) may choose the request id or act for an owner.
        from_edge = trusted(settings, x_worker_secret)
        request_id = request_id_from(x_request_id if from_edge else None)
        owner = x_ocr_owner if from_edge else None
        received = getattr(request.state, "received", None) or time.perf_counter()
        headers = {"X-Request-ID": request_id}
        job, handed_over = None, False
        try:
            job = await service.accept(body, request_id, owner, received)
            # The result is written once the answer has gone out (the background runs after the last send).
            answered = BackgroundTask(release, job.answered)
            if body.stream:
                handed_over = True
                return StreamingResponse(
                    service.stream(job), media_type="text/event-stream", background=answered,
                    headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )  # fmt: skip
            response = await service.wait(job)
            # pydantic writes the JSON itself (no dict and json.dumps in between)
            answer = Response(
                response.model_dump_json(),
                media_type="application/json",
                headers=headers,
                background=answered,
            )
            handed_over = True
            return answer
        except ServiceError as exc:
            service.metrics.requests.labels(status=str(exc.status)).inc()
            return error_response(exc, request_id)
        finally:  # any other answer (an error, raised or returned): the write need not wait for it
            if job is not None and not handed_over:
                job.answered.set()

    app.add_middleware(
        BodyLimit,
        limit=body_limit,
        timeout_s=settings.body_timeout_s,
        respond=lambda exc, scope: error_response(exc),
    )
    return app
