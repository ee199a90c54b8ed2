"""Download files built by the Reflex backend (.md, .txt, .json, annotated images, one zip): the browser
gets the bytes, never the API key; expired links are re-signed by reopening the result."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from ocr_web.edge import fetch_link
from ocr_web.results import plain_text
from ocr_web.settings import FrontendSettings

KINDS = ("md", "txt", "json", "image", "zip")


def stem(name: str) -> str:
    """A file name stem safe on every system, from the uploaded file's name."""
    base = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name or "page")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.")[:60] or "page"


def content_of(reply: dict[str, Any]) -> str:
    """The recognised text as the API gave it (a document's pages separated by `<!-- page N -->`)."""
    return str(((reply.get("choices") or [{}])[0].get("message") or {}).get("content") or "")


def annotated_links(reply: dict[str, Any]) -> list[tuple[int, str]]:
    """(page, url) of every annotated image in the result."""
    ocr = reply.get("ocr") or {}
    pages = ocr.get("pages") or [{**ocr, "page": 1}]
    return [(int(p.get("page") or 1), p["annotated_image"]["url"]) for p in pages
            if (p.get("annotated_image") or {}).get("url")]  # fmt: skip


async def build(settings: FrontendSettings, kind: str, reply: dict[str, Any], name: str) -> tuple[str, bytes]:
    """(file name, bytes) of one download."""
    base = stem(name)
    text = content_of(reply)
    if kind == "md":
        return f"{base}.md", text.encode()
    if kind == "txt":
        return f"{base}.txt", plain_text(text).encode()
    if kind == "json":
        return f"{base}.json", json.dumps(reply, ensure_ascii=False, indent=2).encode()
    links = annotated_links(reply)
    if kind == "image":
        if not links:
            raise ValueError("This result has no annotated image (no boxes were found).")
        if len(links) == 1:
            return f"{base}-annotated.png", await fetch_link(settings, links[0][1])
        return f"{base}-annotated.zip", _zip({f"{base}-page-{p:04d}.png": await fetch_link(settings, url)
                                              for p, url in links})  # fmt: skip
    files = {f"{base}.md": text.encode(), f"{base}.txt": plain_text(text).encode(),
             f"{base}.json": json.dumps(reply, ensure_ascii=False, indent=2).encode()}  # fmt: skip
    for page, url in links:
        files[f"annotated/{base}-page-{page:04d}.png"] = await fetch_link(settings, url)
    return f"{base}.zip", _zip(files)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()
