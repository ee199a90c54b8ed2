"""The edge: one FastAPI app, run by Mangum in Lambda and by uvicorn locally.

The app holds the shared parts (settings, the worker client, the S3 store, metrics) on `app.state`, maps
every error in one place, logs one line per request, and takes its routes from one router per resource.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from edge_api import chat, jobs, results, uploads
from edge_api.deps import aws_event
from edge_api.errors import RelayedError, error_response
from edge_api.forward import WorkerClient
from edge_api.observability import EdgeMetrics, make_logger
from edge_api.settings import EdgeSettings
from edge_api.store import EdgeStore
from gpu_worker.limits import BodyLimit
from gpu_worker.protocol import ServiceError

ROUTERS = (chat.router, uploads.router, results.router, jobs.router)
SAFE_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")  # a stage name or a custom domain's base path


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
    # /docs and /redoc serve Swagger UI and ReDoc from this app (public, like /health: no key, no CDN).
    app = FastAPIOffline(title="DeepSeek-OCR API", version="0.1.0")
    app.state.settings, app.state.worker, app.state.meter = settings, worker, meter
    app.state.store = store or EdgeStore(settings)
    install_errors(app, log)
    app.add_middleware(StagePrefix)  # inside the access log: it logs the path as API Gateway gave it
    # Added before the access log, so it sits inside it: refused bodies are logged and metered too.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout_s=settings.http_body_timeout_s,
                       respond=lambda exc, scope: error_response(exc, Request(scope), log),
                       hint="; upload large images with POST /v1/uploads")  # fmt: skip
    install_access_log(app, log, meter)

    @app.get("/health", response_model=None)
    async def health() -> dict[str, str]:
        """The edge's own health (200 even when the worker is down; it says so)."""
        return {"status": "ok", "worker": await worker.healthy()}

    for router in ROUTERS:
        app.include_router(router)
    return app


class StagePrefix:
    """Behind API Gateway, the stage (`/prod`) becomes the ASGI root_path, so /docs links its assets under it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = stage_prefix(scope.get("aws.event")) if scope["type"] == "http" else ""
        if prefix:  # a copy: the access log outside keeps the path as API Gateway gave it
            scope = {**scope, "root_path": prefix, "path": prefix + scope["path"]}
        await self.app(scope, receive, send)


def stage_prefix(event: dict[str, Any] | None) -> str:
    """What the client's path has before the app's: `/prod` for `requestContext.path` `/prod/v1/x`, `path` `/v1/x`."""
    if not event:
        return ""
    path, seen = event.get("path") or "", (event.get("requestContext") or {}).get("path") or ""
    if not path.startswith("/") or not seen.endswith(path) or not seen.startswith("/"):
        return ""  # an unexpected shape: serve as before (links from the host's root)
    prefix = seen[: len(seen) - len(path)].rstrip("/")
    return prefix if SAFE_PREFIX.fullmatch(prefix) else ""  # it goes into the docs page's HTML and script


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
