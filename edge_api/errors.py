"""The edge's errors: its own typed errors, and the one place where any exception becomes a status and body."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpu_worker.protocol import NotReady, ServiceError, error_body, http_error_body, validation_error_body


class StorageUnavailable(NotReady):
    """S3 hangs, refuses or fails: a true 503 with Retry-After, never a 500."""

    code = "storage_unavailable"


class RelayedError(Exception):
    """A worker 4xx, passed to the client as it is."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers


def error_response(exc: Exception, request: Request, log: Any) -> JSONResponse:
    """Exception -> status + OpenAI error body; the error type is kept on the request for the metrics."""
    if isinstance(exc, ServiceError):
        status, body, headers = exc.status, exc.to_body(), dict(exc.headers)
    elif isinstance(exc, RelayedError):
        status, body, headers = exc.status, exc.body, dict(exc.headers)
    elif isinstance(exc, RequestValidationError | ValidationError):
        (status, body), headers = validation_error_body(list(exc.errors())), {}
    elif isinstance(exc, StarletteHTTPException):
        status, body, headers = exc.status_code, http_error_body(exc.status_code, str(exc.detail)), {}
    else:
        log.exception("unhandled error")
        status, body, headers = 500, error_body("Internal server error.", "server_error"), {}
    request.state.error_type = (body.get("error") or {}).get("type")
    # Header names differ in case between sources (the worker's `x-request-id`, ours `X-Request-ID`): one of
    # each, ours, so a client copying the id gets exactly the id GET /v1/results takes.
    headers = {
        k: v
        for k, v in headers.items()
        if k.lower() not in ("x-request-id", "content-type", "content-length")
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        headers["X-Request-ID"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)
