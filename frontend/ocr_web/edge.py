"""The Reflex backend's client of the edge: inline or presigned upload, then OCR; errors in plain words."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from ocr_web.settings import FrontendSettings

PDF = "application/pdf"
TextCallback = Callable[[str], None]


class OcrFailed(Exception):
    """A failure worded for a person (no stack trace, no internals); `code` is the API's error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def sniff_file(data: bytes) -> str | None:
    """The media type from the file's first bytes (names and browsers' types are not trusted)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return PDF
    return None


def sniff_image(data: bytes) -> str | None:
    """The image media type, or None (a PDF is not an image)."""
    media_type = sniff_file(data)
    return media_type if media_type != PDF else None


def human_message(status: int, body: Any, retry_after: str | None, request_id: str | None) -> str:
    """What to tell the person for an error answer of the edge."""
    detail = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = str(body["error"].get("message") or "")
    if status in (401, 403) and "reference" not in detail:
        return "The OCR service refused this web app's API key. Ask the operator to check EDGE_API_KEY."
    if status == 413:
        return f"The file is too large. {detail}".strip()
    if status == 415:
        return "This file is not one the service can read. Send a PNG, JPEG or WebP image, or a PDF."
    if status == 429:
        wait = f" Try again in {retry_after} s." if retry_after else " Try again shortly."
        return "The service is busy or this app's quota is used up." + wait
    if status in (502, 503):
        return "The OCR worker is not available right now (it may be starting or stopped). Try again in a minute."
    if status == 504:
        rid = f" Its request id is {request_id}: the result can be looked up later." if request_id else ""
        return "The OCR request timed out." + rid
    if status in (400, 404, 409, 422):
        return f"The request was refused: {detail}" if detail else "The request was refused."
    return f"The OCR service failed (HTTP {status}). Try again later."


def error_code(body: Any) -> str | None:
    """The `code` of an OpenAI-shaped error body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code else None
    return None


def chat_body(file_url: str, media_type: str, name: str, task: str, mode: str,
              ref_text: str | None, prompt: str | None, stream: bool = False) -> dict[str, Any]:  # fmt: skip
    """The chat-completions request: an image part or a PDF `file` part; a free prompt as a text part."""
    part: dict[str, Any]
    if media_type == PDF and file_url.startswith("data:"):
        part = {"type": "file", "file": {"file_data": file_url, "filename": name}}
    else:
        part = {"type": "image_url", "image_url": {"url": file_url}}
    content: list[dict[str, Any]] = [part]
    body: dict[str, Any] = {"model": "deepseek-ocr", "mode": mode, "stream": stream}
    if task == "custom":
        content.append({"type": "text", "text": prompt or ""})
    else:
        body["task"] = task
        if task == "locate":
            body["ref_text"] = ref_text
    body["messages"] = [{"role": "user", "content": content}]
    return body


async def run_ocr(
    settings: FrontendSettings,
    data: bytes,
    task: str,
    mode: str,
    ref_text: str | None,
    *,
    prompt: str | None = None,
    name: str = "page",
    on_text: TextCallback | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """OCR one image or short PDF through the edge (streamed on engines that stream); the chat.completion."""
    media_type = sniff_file(data)
    if media_type is None:
        raise OcrFailed("This file is not a PNG, JPEG or WebP image, or a PDF.")
    if len(data) > settings.upload_max_bytes:
        raise OcrFailed(f"The file is larger than {settings.upload_max_bytes // 2**20} MB.")
    try:
        client = _client(settings.request_timeout_s)
        if len(data) > settings.inline_max_bytes:
            file_url = await upload(settings, data, media_type, name)
        else:
            file_url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
        body = chat_body(file_url, media_type, name, task, mode, ref_text, prompt, stream)
        if not stream:
            response = await client.post(
                f"{_base(settings)}/v1/chat/completions", json=body, headers=_auth(settings)
            )
            return _checked(response)
        async with client.stream(
            "POST", f"{_base(settings)}/v1/chat/completions", json=body, headers=_auth(settings)
        ) as response:
            if response.status_code != 200:
                await response.aread()
                _checked(response)
            return await _read_stream(response, on_text)
    except httpx.TimeoutException:
        raise OcrFailed("The OCR service did not answer in time. Try again later.") from None
    except httpx.HTTPError:
        raise OcrFailed("The OCR service cannot be reached. Check that it is running.") from None


async def _read_stream(response: httpx.Response, on_text: TextCallback | None) -> dict[str, Any]:
    """Rebuild the chat.completion from SSE chunks: the text deltas, then the final chunk's `ocr`."""
    pieces: list[str] = []
    final: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if "error" in chunk:
            message = str((chunk.get("error") or {}).get("message") or "unknown error")
            raise OcrFailed(f"The OCR failed while reading: {message}", error_code(chunk))
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                pieces.append(piece)
                if on_text is not None:
                    on_text("".join(pieces))
            if choice.get("finish_reason"):
                final = {**chunk, "finish_reason": choice["finish_reason"]}
    if "ocr" not in final:
        raise OcrFailed("The OCR service ended the answer early. Try again.")
    return {
        "id": final.get("id"),
        "object": "chat.completion",
        "model": final.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "finish_reason": final["finish_reason"],
            }
        ],  # fmt: skip
        "usage": final.get("usage"),
        "ocr": final["ocr"],
    }


async def upload(settings: FrontendSettings, data: bytes, media_type: str, name: str = "page") -> str:
    """Put the file in storage through a presigned POST; returns its `s3://` reference."""
    client = _client(settings.request_timeout_s)
    grant = _checked(
        await client.post(
            f"{_base(settings)}/v1/uploads",
            json={"content_type": media_type, "size": len(data)},
            headers=_auth(settings),
        )
    )
    posted = await client.post(grant["url"], data=grant["fields"], files={"file": (name, data, media_type)})
    if posted.status_code not in (200, 201, 204):
        raise OcrFailed("The file could not be uploaded to storage. Try again later.")
    return str(grant.get("image_url") or grant.get("file") or "")


async def get_json(
    settings: FrontendSettings, path: str, method: str = "GET", **kwargs: Any
) -> dict[str, Any]:
    """One call to the edge with the key (models, results, jobs); errors in words."""
    try:
        response = await _client(settings.request_timeout_s).request(
            method, f"{_base(settings)}{path}", headers=_auth(settings), **kwargs
        )
    except httpx.TimeoutException:
        raise OcrFailed("The OCR service did not answer in time. Try again later.") from None
    except httpx.HTTPError:
        raise OcrFailed("The OCR service cannot be reached. Check that it is running.") from None
    return _checked(response)


async def fetch_link(settings: FrontendSettings, url: str, headers: dict[str, str] | None = None) -> bytes:
    """The bytes behind a presigned result link (fetched by the backend for downloads)."""
    client = _client(settings.request_timeout_s)
    try:
        response = await client.get(url, headers=headers)
        # The worker answers first and writes the page images just after: a link can be a few
        # seconds ahead of its object, so a missing one is asked for again before giving up.
        for pause in (0.3, 0.6, 1.0, 1.5, 2.0, 3.0):
            if response.status_code != 404:
                break
            await asyncio.sleep(pause)
            response = await client.get(url, headers=headers)
    except httpx.HTTPError:
        raise OcrFailed("A stored result could not be fetched. Reopen the result for fresh links.") from None
    if response.status_code not in (200, 206):
        raise OcrFailed(
            "A stored file is not available (its link expired, or it is still being written). Try again, or reopen the result for fresh links."
        )
    return response.content


_pooled: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None


def _client(timeout: float) -> httpx.AsyncClient:
    """One pooled client for the backend's event loop: the TLS handshake to the API is paid once."""
    global _pooled
    loop = asyncio.get_running_loop()
    if _pooled is None or _pooled[0] is not loop or _pooled[1].is_closed:
        _pooled = (loop, httpx.AsyncClient(timeout=timeout))
    return _pooled[1]


def _base(settings: FrontendSettings) -> str:
    return settings.edge_url.rstrip("/")


def _auth(settings: FrontendSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.edge_api_key}"}


def _checked(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code not in (200, 201, 202) or not isinstance(body, dict):
        raise OcrFailed(
            human_message(
                response.status_code,
                body,
                response.headers.get("retry-after"),
                response.headers.get("x-request-id"),
            ),
            error_code(body),
        )
    return body
