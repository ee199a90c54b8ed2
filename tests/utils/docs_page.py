"""Checks that an API docs page (Swagger UI or ReDoc) loads everything from its own server, none from a CDN."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from tests.utils.apigw import STAGE, LambdaContext, rest_event

# path -> (status, content type, body); the path as the page's HTML names it (with any stage prefix)
Fetch = Callable[[str], tuple[int, str, bytes]]
REFERENCE = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|\burl: '([^']*)'""")
ANOTHER_HOST = re.compile(r"""://|["'(]//""")  # an absolute or protocol-relative URL
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",),
                 ".png": ("image/png",), ".json": ("application/json",)}  # fmt: skip


def lambda_fetch(handler: Callable[..., dict[str, Any]], principal: str | None = None) -> Fetch:
    """What a browser at https://API/prod/... gets: API Gateway takes the stage off `path`, keeps it in the context."""

    def get(path: str) -> tuple[int, str, bytes]:
        assert path.startswith(f"/{STAGE}/"), f"{path} is outside the stage: a browser would miss it"
        result = handler(rest_event("GET", path[len(STAGE) + 1 :], principal=principal), LambdaContext())
        body = result["body"] or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = {k.lower(): v for k, v in result["headers"].items()}
        return result["statusCode"], headers.get("content-type", ""), raw

    return get


def references(html: str) -> list[str]:
    """What the page loads: stylesheets, icons, scripts and the OpenAPI document."""
    return [a or b for a, b in REFERENCE.findall(html)]


def assert_docs_offline(fetch: Fetch, docs_path: str, prefix: str = "") -> dict[str, Any]:
    """The page, each thing it references (from this server, with the right type) and the OpenAPI document."""
    status, content_type, body = fetch(prefix + docs_path)
    assert status == 200 and content_type.startswith("text/html"), (status, content_type)
    html = body.decode()
    assert not ANOTHER_HOST.search(html), html
    found = references(html)
    assert any(ref.endswith(".js") for ref in found) and prefix + "/openapi.json" in found, found
    openapi: dict[str, Any] = {}
    for ref in found:
        assert ref.startswith(prefix + "/"), (ref, prefix)
        status, content_type, body = fetch(ref)
        suffix = ref[ref.rfind(".") :]
        assert status == 200, (ref, status)
        assert content_type.split(";")[0].strip() in CONTENT_TYPES[suffix], (ref, content_type)
        if suffix == ".js":
            assert len(body) > 100_000 and b"://cdn" not in body[:2000], ref  # the real bundle
        if suffix == ".json":
            openapi = json.loads(body)
    assert openapi["openapi"].startswith("3.") and openapi["paths"], openapi
    return openapi


def assert_asset_folder_closed(base_url: str) -> None:
    """The docs' asset folder serves its own files only: no listing, no way out of it, 404 in the error shape."""
    import httpx

    for path in (
        "/static-offline-docs/",
        "/static-offline-docs/..%2Fcore.py",
        "/static-offline-docs/missing.js",
    ):
        response = httpx.get(base_url + path)
        assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error", path
