"""API keys as clients send them, and their non-secret ids: the standard library only, so the authorizer Lambda,
which runs before every request, loads nothing else (no FastAPI, no pydantic) on a cold start."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a client sent: `Authorization: Bearer KEY` (the openai client) or `x-api-key: KEY`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    authorization = (lowered.get("authorization") or "").strip()
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    api_key = (lowered.get("x-api-key") or "").strip()
    return api_key or None


def key_id(api_key: str) -> str:
    """A stable, non-secret id for an API key (logs, S3 prefixes, result ownership)."""
    # surrogatepass: a header in a Lambda event is JSON, which can carry a lone surrogate; it is still an id
    return "key-" + hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
