"""The edge: one FastAPI app, run by Mangum in Lambda and by uvicorn locally.

The app holds the shared parts (settings, the worker client, the S3 store, metrics) on `app.state`, maps
every error in one place, logs one line per request, and takes its routes from one router per resource.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_api import chat, jobs, results, uploads
from edge_api.deps import aws_event
from edge_api.errors import RelayedError, error_response
from edge_api.forward import WorkerClient
from edge_api.limits import BodyLimit
from edge_api.observability import EdgeMetrics, make_logger
from edge_api.settings import EdgeSettings
from edge_api.store import EdgeStore
from gpu_worker.protocol import ServiceError

ROUTERS = (chat.router, uploads.router, results.router, jobs.router)


def build_app(
    settings: EdgeSettings,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    worker: WorkerClient | None = None,
    store: EdgeStore | None = None,
) -> FastAPI:
    """The edge app; clients are built on first use and reused across requests (and warm Lambda invocations)."""
    log = logger or make_logger()
    meter = EdgeMetrics(metrics, settings.emit_metrics)
    worker = worker or WorkerClient(settings)
    app = FastAPI(title="DeepSeek-OCR API", version="0.1.0")
    app.state.settings, app.state.worker, app.state.meter = settings, worker, meter
    app.state.store = store or EdgeStore(settings)
    install_errors(app, log)
    # Added before the access log, so it sits inside it: refused bodies are logged and metered too.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout_s=settings.http_body_timeout_s,
                       respond=lambda exc, scope: error_response(exc, Request(scope), log))  # fmt: skip
    install_access_log(app, log, meter)

    @app.get("/health", response_model=None)
    async def health() -> dict[str, str]:
        """The edge's own health (200 even when the worker is down; it says so)."""
        return {"status": "ok", "worker": await worker.healthy()}

    for router in ROUTERS:
        app.include_router(router)
    return app


def install_errors(app: FastAPI, log: Any) -> None:
    """Every exception, ours or the framework's, answers in the one error shape."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, request, log)

    for kind in (ServiceError, RelayedError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)


def install_access_log(app: FastAPI, log: Any, meter: EdgeMetrics) -> None:
    """One log line and the metrics per request; the request id (API Gateway's, or a new one) on every answer."""

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
            response = error_response(exc, request, log)
        latency_ms = (time.perf_counter() - started) * 1000
        response.headers.setdefault("X-Request-ID", request_id)
        error_type = getattr(request.state, "error_type", None)
        # Never the key, the Authorization header or the worker secret: only the key's non-secret id.
        log.info(
            "request",
            extra={"method": request.method, "path": request.url.path, "status": response.status_code,
                   "latency_ms": round(latency_ms, 1), "request_id": request_id, "api_key_id": request.state.key_id},
        )  # fmt: skip
        meter.request(request.url.path, response.status_code, latency_ms, error_type)
        return response
