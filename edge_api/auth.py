"""Who is calling: the key from `Authorization: Bearer` or `x-api-key`, checked locally or by API Gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_api.keys import key_from_headers, key_id
from edge_api.settings import EdgeSettings
from gpu_worker.protocol import AuthenticationFailed, PermissionDenied


def authorizer_identity(event: Mapping[str, Any] | None) -> str | None:
    """The key id that our REQUEST authorizer put in the API Gateway event, if this came through it."""
    if not event:
        return None
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    principal = context.get("principalId")
    return principal if isinstance(principal, str) and principal.startswith("key-") else None


def authenticate(headers: Mapping[str, str], event: Mapping[str, Any] | None, settings: EdgeSettings) -> str:
    """The caller's key id. Behind API Gateway the authorizer and usage plan already checked the key."""
    identity = authorizer_identity(event)
    if identity is not None:
        return identity
    key = key_from_headers(headers)
    if key is None:
        raise AuthenticationFailed(
            "Missing API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`.", code="missing_api_key"
        )
    identity = key_id(key)
    if identity not in settings.local_keys:
        raise PermissionDenied("Invalid API key.", code="invalid_api_key")
    return identity
