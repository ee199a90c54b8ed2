"""The edge: one FastAPI app, run by Mangum in Lambda and by uvicorn locally."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_api.auth import authenticate
from edge_api.forward import (
    RelayedError,
    WorkerClient,
    error_body_of,
    read_checked,
    relay_headers,
    upstream_error,
)
from edge_api.observability import EdgeMetrics, make_logger
from edge_api.results import EdgeStore
from edge_api.settings import EdgeSettings
from gpu_worker.protocol import (
    REQUEST_ID_RE,
    ChatCompletionRequest,
    InvalidRequest,
    PayloadTooLarge,
    PermissionDenied,
    S3Image,
    ServiceError,
    error_body,
    http_error_body,
    parse_image_url,
    validation_error_body,
)


class UploadRequest(BaseModel):
    """`POST /v1/uploads` body."""

    content_type: str = Field(max_length=100)
    size: int = Field(ge=1, description="Bytes of the image to upload.")


def aws_event(request: Request) -> dict[str, Any] | None:
    """The API Gateway event when running under Mangum."""
    return request.scope.get("aws.event")


def caller(request: Request) -> str:
    """The caller's API key id (401/403 otherwise); remembered on the request for the access log."""
    key = authenticate(request.headers, aws_event(request), request.app.state.settings)
    request.state.key_id = key
    return key


Caller = Annotated[str, Depends(caller)]


def build_app(
    settings: EdgeSettings,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    worker: WorkerClient | None = None,
    store: EdgeStore | None = None,
) -> FastAPI:
    """The edge app; clients are built once and reused across requests (and warm Lambda invocations)."""
    log = logger or make_logger()
    meter = EdgeMetrics(metrics, settings.emit_metrics)
    worker = worker or WorkerClient(settings)
    store = store or EdgeStore(settings)
    app = FastAPI(title="DeepSeek-OCR API", version="0.1.0")
    app.state.settings, app.state.worker, app.state.store = settings, worker, store

    def error_response(exc: Exception, request: Request) -> JSONResponse:
        """The one exception -> status + OpenAI error body mapping; the error type is kept for the metrics."""
        if isinstance(exc, ServiceError):
            status, body, headers = exc.status, exc.to_body(), dict(exc.headers)
        elif isinstance(exc, RelayedError):
            status, body, headers = (
                exc.status,
                exc.body,
                {k: v for k, v in exc.headers.items() if k != "content-type"},
            )
        elif isinstance(exc, RequestValidationError | ValidationError):
            (status, body), headers = validation_error_body(list(exc.errors())), {}
        elif isinstance(exc, StarletteHTTPException):
            status, body, headers = exc.status_code, http_error_body(exc.status_code, str(exc.detail)), {}
        else:
            log.exception("unhandled error")
            status, body, headers = 500, error_body("Internal server error.", "server_error"), {}
        request.state.error_type = (body.get("error") or {}).get("type")
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            headers["X-Request-ID"] = request_id
        return JSONResponse(body, status_code=status, headers=headers)

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Response:
        event = aws_event(request)
        request_id = ((event or {}).get("requestContext") or {}).get("requestId") or f"req-{uuid.uuid4().hex}"
        request.state.request_id = request_id
        request.state.key_id = None
        request.state.error_type = None
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception as exc:  # errors raised past the handlers (should not happen) keep the shape
            response = error_response(exc, request)
        latency_ms = (time.perf_counter() - started) * 1000
        response.headers.setdefault("X-Request-ID", request_id)
        error_type = getattr(request.state, "error_type", None)
        # Never the key or the Authorization header: only its non-secret id.
        log.info(
            "request",
            extra={"method": request.method, "path": request.url.path, "status": response.status_code,
                   "latency_ms": round(latency_ms, 1), "request_id": request_id, "api_key_id": request.state.key_id},
        )  # fmt: skip
        meter.request(request.url.path, response.status_code, latency_ms, error_type)
        return response

    @app.exception_handler(ServiceError)
    @app.exception_handler(RelayedError)
    @app.exception_handler(RequestValidationError)
    @app.exception_handler(StarletteHTTPException)
    @app.exception_handler(Exception)
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The edge's own health (200 even when the worker is down; it says so)."""
        return {"status": "ok", "worker": await worker.healthy()}

    @app.get("/v1/models")
    async def models(request: Request, key: Caller) -> dict[str, Any]:
        """The worker's models, cached briefly."""
        return await worker.models(request.state.request_id)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request, key: Caller) -> Response:
        """Validate, then forward to the worker and relay its answer (SSE relayed, buffered by Lambda)."""
        request_id = request.state.request_id
        raw = await read_limited(request, settings.max_body_bytes)
        body = ChatCompletionRequest.model_validate_json(raw or b"null")
        spec = body.to_ocr_request()
        check_image_url(spec.image_url, key, settings)
        upstream = await worker.send(
            "POST", "/v1/chat/completions", request_id, content=raw,
            headers={"content-type": "application/json", "x-request-id": request_id, "x-ocr-owner": key},
        )  # fmt: skip
        if upstream.status_code != 200:
            data = await upstream.aread()
            await upstream.aclose()
            raise upstream_error(
                upstream.status_code, error_body_of(upstream.status_code, data), relay_headers(upstream)
            )
        if spec.stream:
            meter.usage(key, None)
            return StreamingResponse(
                upstream.aiter_raw(), media_type="text/event-stream", background=BackgroundTask(upstream.aclose),
                headers={"X-Request-ID": request_id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )  # fmt: skip
        result = await read_checked(upstream)
        meter.usage(key, result.get("usage"))
        return JSONResponse(result, headers={"X-Request-ID": request_id})

    @app.post("/v1/uploads")
    async def uploads(payload: UploadRequest, key: Caller) -> dict[str, Any]:
        """A presigned POST to upload one image to S3; OCR it afterwards by its `image_url`."""
        return await asyncio.to_thread(store.presign_upload, key, payload.content_type, payload.size)

    @app.get("/v1/results/{request_id}")
    async def results(request_id: str, key: Caller) -> JSONResponse:
        """A finished request's stored result (this key's only), or 404 while it is still running."""
        if not REQUEST_ID_RE.match(request_id):
            raise InvalidRequest("Malformed request id.", param="request_id")
        status, body = await asyncio.to_thread(store.find_result, request_id, key)
        return JSONResponse(body, status_code=status)

    return app


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes (Lambda's payload limit) with a hint to upload."""
    too_large = PayloadTooLarge(
        f"The request body is larger than {limit} bytes; upload large images with POST /v1/uploads.",
        code="payload_too_large",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def check_image_url(url: str, key: str, settings: EdgeSettings) -> None:
    """Only inline images, or uploads under this key's own prefix of our bucket."""
    reference = parse_image_url(url, max_bytes=settings.max_body_bytes)
    if isinstance(reference, S3Image):
        prefix = f"{settings.upload_prefix}{key}/"
        if reference.bucket != settings.results_bucket or not reference.key.startswith(prefix):
            raise PermissionDenied(
                "This image reference does not belong to your API key; upload it with POST /v1/uploads.",
                param="messages",
                code="invalid_image_reference",
            )
