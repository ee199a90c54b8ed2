"""Chat-completion request bodies as clients send them."""

from __future__ import annotations

import base64
from typing import Any


def data_url(data: bytes, media_type: str = "image/png") -> str:
    """A `data:` URL of some bytes."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def image_message(url: str, text: str | None = None) -> list[dict[str, Any]]:
    """One user message with one image (and optional text)."""
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}]
    if text is not None:
        content.insert(0, {"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def file_message(pdf: bytes, text: str | None = None, filename: str = "a.pdf") -> list[dict[str, Any]]:
    """One user message carrying a PDF the way the openai SDK documents it (a `file` part)."""
    part = {"type": "file", "file": {"file_data": data_url(pdf, "application/pdf"), "filename": filename}}
    content: list[dict[str, Any]] = [part] if text is None else [{"type": "text", "text": text}, part]
    return [{"role": "user", "content": content}]


def chat_body(url: str, **extra: Any) -> dict[str, Any]:
    """A full request body."""
    return {"model": "deepseek-ocr", "messages": image_message(url), **extra}
