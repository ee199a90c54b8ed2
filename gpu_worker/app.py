"""HTTP: the worker's FastAPI app. Routes only translate HTTP <-> serving; one error shape, mapped here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_worker.engines import Engine, create_engine
from gpu_worker.metrics import WorkerMetrics
from gpu_worker.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelList,
    PayloadTooLarge,
    ServiceError,
    error_body,
    http_error_body,
    validation_error_body,
)
from gpu_worker.serving import OcrService, request_id_from
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore

log = logging.getLogger(__name__)


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


class BodyLimit:
    """Refuses request bodies over `limit` bytes with a 413: by Content-Length, or while reading a chunked body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(PayloadTooLarge(f"The request body is larger than {self.limit} bytes."))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        # Read the body here (FastAPI would read all of it anyway) so an oversize one never reaches the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive() that hands out `messages`, then defers to `then` (e.g. to see a disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def build_app(
    settings: WorkerSettings, engine: Engine | None = None, store: ResultStore | None = None
) -> FastAPI:
    """The worker app; the engine loads in the lifespan (in the background: /livez answers meanwhile)."""
    metrics = WorkerMetrics()
    service = OcrService(settings, engine or create_engine(settings), store or ResultStore(settings), metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title="DeepSeek-OCR worker", version="0.1.0", lifespan=lifespan)
    app.state.service = service
    app.state.metrics = metrics
    body_limit = settings.max_image_bytes * 4 // 3 + 1024 * 1024  # base64 image + JSON around it

    @app.exception_handler(ServiceError)
    @app.exception_handler(RequestValidationError)
    @app.exception_handler(StarletteHTTPException)
    @app.exception_handler(Exception)
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, request.headers.get("x-request-id"))

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        """The process is up (always 200)."""
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once the engine is loaded and has run; 503 before or after a failed load."""
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
        body: ChatCompletionRequest,
        x_request_id: Annotated[str | None, Header()] = None,
        x_ocr_owner: Annotated[str | None, Header()] = None,
    ) -> Response:
        """OCR one page image, as an OpenAI chat completion (or a stream of chunks)."""
        request_id = request_id_from(x_request_id)
        headers = {"X-Request-ID": request_id}
        try:
            job = await service.accept(body, request_id, x_ocr_owner)
            if body.stream:
                return StreamingResponse(
                    service.stream(job), media_type="text/event-stream",
                    headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )  # fmt: skip
            response = await service.wait(job)
        except ServiceError as exc:
            service.metrics.requests.labels(status=str(exc.status)).inc()
            return error_response(exc, request_id)
        return JSONResponse(response.model_dump(mode="json"), headers=headers)

    app.add_middleware(BodyLimit, limit=body_limit)
    return app
