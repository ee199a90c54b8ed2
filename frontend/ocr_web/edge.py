"""The Reflex backend's client of the edge: inline or presigned upload, then OCR; errors in plain words."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx

from ocr_web.settings import FrontendSettings


class OcrFailed(Exception):
    """A failure worded for a person (no stack trace, no internals)."""


def sniff_image(data: bytes) -> str | None:
    """The image media type from the file's first bytes (names and browsers' types are not trusted)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def human_message(status: int, body: Any, retry_after: str | None, request_id: str | None) -> str:
    """What to tell the person for an error answer of the edge."""
    detail = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = str(body["error"].get("message") or "")
    if status in (401, 403) and "reference" not in detail:
        return "The OCR service refused this web app's API key. Ask the operator to check EDGE_API_KEY."
    if status == 413:
        return f"The image is too large. {detail}".strip()
    if status == 415:
        return "This file is not an image the service can read. Send a PNG, JPEG or WebP page image."
    if status == 429:
        wait = f" Try again in {retry_after} s." if retry_after else " Try again shortly."
        return "The service is busy or this app's quota is used up." + wait
    if status in (502, 503):
        return "The OCR worker is not available right now (it may be starting or stopped). Try again in a minute."
    if status == 504:
        rid = f" Its request id is {request_id}: the result can be looked up later." if request_id else ""
        return "The OCR request timed out." + rid
    if status in (400, 404, 422):
        return f"The request was refused: {detail}" if detail else "The request was refused."
    return f"The OCR service failed (HTTP {status}). Try again later."


async def run_ocr(
    settings: FrontendSettings, data: bytes, task: str, mode: str, ref_text: str | None
) -> dict[str, Any]:
    """OCR one image through the edge; returns the chat.completion JSON or raises OcrFailed."""
    media_type = sniff_image(data)
    if media_type is None:
        raise OcrFailed("This file is not a PNG, JPEG or WebP image.")
    if len(data) > settings.upload_max_bytes:
        raise OcrFailed(f"The image is larger than {settings.upload_max_bytes // 2**20} MB.")
    headers = {"Authorization": f"Bearer {settings.edge_api_key}"}
    base = settings.edge_url.rstrip("/")
    try:
        client = _client(settings.request_timeout_s)
        if len(data) > settings.inline_max_bytes:
            image_url = await _upload(client, base, headers, data, media_type)
        else:
            image_url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
        body: dict[str, Any] = {
            "model": "deepseek-ocr",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url}}]}
            ],
            "task": task,
            "mode": mode,
        }
        if task == "locate":
            body["ref_text"] = ref_text
        response = await client.post(f"{base}/v1/chat/completions", json=body, headers=headers)
        return _checked(response)
    except httpx.TimeoutException:
        raise OcrFailed("The OCR service did not answer in time. Try again later.") from None
    except httpx.HTTPError:
        raise OcrFailed("The OCR service cannot be reached. Check that it is running.") from None


_pooled: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None


def _client(timeout: float) -> httpx.AsyncClient:
    """One pooled client for the backend's event loop: the TLS handshake to the API is paid once."""
    global _pooled
    loop = asyncio.get_running_loop()
    if _pooled is None or _pooled[0] is not loop or _pooled[1].is_closed:
        _pooled = (loop, httpx.AsyncClient(timeout=timeout))
    return _pooled[1]


async def _upload(
    client: httpx.AsyncClient, base: str, headers: dict[str, str], data: bytes, media_type: str
) -> str:
    grant = _checked(
        await client.post(
            f"{base}/v1/uploads", json={"content_type": media_type, "size": len(data)}, headers=headers
        )
    )
    posted = await client.post(grant["url"], data=grant["fields"], files={"file": ("page", data, media_type)})
    if posted.status_code not in (200, 201, 204):
        raise OcrFailed("The image could not be uploaded to storage. Try again later.")
    return str(grant["image_url"])


def _checked(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        raise OcrFailed(
            human_message(
                response.status_code,
                body,
                response.headers.get("retry-after"),
                response.headers.get("x-request-id"),
            )  # fmt: skip
        )
    return body
