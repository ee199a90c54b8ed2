"""Errors: one shape everywhere (`{"error": {message, type, param, code}}`), typed exceptions inside."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ServiceError(Exception):
    """An error with a status and the OpenAI error shape; the HTTP layers map it in one place."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        """The `{"error": {...}}` body."""
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(ServiceError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class AuthenticationFailed(ServiceError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class PermissionDenied(ServiceError):
    status, type, code = 403, "permission_error", "permission_denied"


class NotFound(ServiceError):
    status, type, code = 404, "not_found_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(ServiceError):
    status, type, code = 409, "invalid_request_error", "conflict"


class PayloadTooLarge(ServiceError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, type, code = 415, "invalid_request_error", "unsupported_media_type"


class RateLimited(ServiceError):
    status, type, code = 429, "rate_limit_error", "rate_limited"


class UpstreamError(ServiceError):
    status, type, code = 502, "api_error", "upstream_unavailable"


class NotReady(ServiceError):
    status, type, code = 503, "api_error", "not_ready"


class RequestTimeout(ServiceError):
    """The client did not send its body in time (a slow client is cut, not waited for)."""

    status, type, code = 408, "invalid_request_error", "request_timeout"


class GatewayTimeout(ServiceError):
    status, type, code = 504, "timeout_error", "timeout"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The one error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


HTTP_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
    422: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error",
}  # fmt: skip


def http_error_body(status: int, message: str) -> dict[str, Any]:
    """The error shape for a bare HTTP status (unknown route, wrong method, a proxy's own error page)."""
    return error_body(
        message, HTTP_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    )


def validation_error_body(errors: list[Any]) -> tuple[int, dict[str, Any]]:
    """Status and body for pydantic/FastAPI validation errors: 400 for broken JSON, else 422 naming the field."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return 400, error_body(
            "The request body is not valid JSON.", "invalid_request_error", None, "invalid_json"
        )
    loc = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{loc or 'body'}: {first.get('msg', 'invalid value')}"
    return 422, error_body(message, "invalid_request_error", loc or None, "invalid_schema")
