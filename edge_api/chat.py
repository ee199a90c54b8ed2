"""`POST /v1/chat/completions` and `GET /v1/models`: validated at the edge, then forwarded to the worker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask, BackgroundTasks

from edge_api.deps import Caller, Settings, Worker
from edge_api.forward import error_body_of, read_checked, relay_headers, upstream_error
from edge_api.jobs import record_inline_usage
from edge_api.settings import EdgeSettings
from gpu_worker.protocol import (
    ChatCompletionRequest,
    PayloadTooLarge,
    PermissionDenied,
    S3Image,
    error_body,
    parse_image_url,
)

if TYPE_CHECKING:
    import httpx

router = APIRouter()


@router.get("/v1/models", response_model=None)
async def models(request: Request, key: Caller, worker: Worker) -> dict[str, Any]:
    """The worker's models, cached briefly."""
    return await worker.models(request.state.request_id)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, key: Caller, settings: Settings, worker: Worker) -> Response:
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
    meter = request.app.state.meter
    if upstream.status_code != 200:
        data = await upstream.aread()
        await upstream.aclose()
        raise upstream_error(
            upstream.status_code, error_body_of(upstream.status_code, data), relay_headers(upstream)
        )
    # GET /v1/usage's counter (edge_api/jobs.py) is written once the answer is sent: the answer never waits on
    # DynamoDB or on building the jobs backend. Under Lambda (Mangum) the invocation still ends only after it, so
    # the count is not lost in a frozen environment.
    if spec.stream:
        meter.usage(key, None)
        after = BackgroundTasks()
        after.add_task(upstream.aclose)
        after.add_task(record_inline_usage, request, key, None)
        return StreamingResponse(
            relay_stream(upstream, request_id), media_type="text/event-stream", background=after,
            headers={"X-Request-ID": request_id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip
    result = await read_checked(upstream)
    meter.usage(key, result.get("usage"))
    return JSONResponse(
        result,
        headers={"X-Request-ID": request_id},
        background=BackgroundTask(record_inline_usage, request, key, result),
    )


async def relay_stream(upstream: httpx.Response, request_id: str) -> AsyncIterator[bytes]:
    """The worker's SSE bytes as they come; if the worker goes away mid-stream, an error chunk and [DONE]."""
    import httpx

    try:
        async for piece in upstream.aiter_raw():
            yield piece
    except httpx.HTTPError as exc:
        message = (
            f"The OCR worker connection failed mid-stream ({type(exc).__name__}); retry the request "
            f"(request id {request_id})."
        )
        chunk = error_body(message, "api_error", None, "upstream_unavailable")
        # A blank line first: the error must not glue onto a half-relayed event.
        yield b"\n\ndata: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"


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
