"""Long documents as jobs (`/v1/jobs`): upload, create, poll for pages done, then the pages' results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ocr_web.edge import PDF, OcrFailed, fetch_link, get_json, sniff_file, upload
from ocr_web.settings import FrontendSettings

FINAL = {"succeeded", "partial", "failed", "cancelled"}
Progress = Callable[[dict[str, Any]], Awaitable[None]]


async def start_job(settings: FrontendSettings, data: bytes, name: str, task: str, mode: str,
                    ref_text: str | None) -> dict[str, Any]:  # fmt: skip
    """Upload the document and queue it; returns the job record (`id`, `status`, ...)."""
    media_type = sniff_file(data) or PDF
    reference = await upload(settings, data, media_type, name)
    body: dict[str, Any] = {"file": reference, "task": task, "mode": mode, "model": "deepseek-ocr"}
    if task == "locate":
        body["ref_text"] = ref_text
    return await get_json(settings, "/v1/jobs", "POST", json=body)


async def wait_job(settings: FrontendSettings, job_id: str, on_progress: Progress,
                   interval: float = 1.0) -> dict[str, Any]:  # fmt: skip
    """Poll the job until it ends, reporting each answer; returns the final record."""
    while True:
        job = await get_json(settings, f"/v1/jobs/{job_id}")
        await on_progress(job)
        if job.get("status") in FINAL:
            return job
        await asyncio.sleep(interval)


async def png_size(settings: FrontendSettings, url: str) -> dict[str, int] | None:
    """A PNG's size from its first bytes (a ranged GET: the page image itself is not downloaded)."""
    try:
        head = await fetch_link(settings, url, headers={"Range": "bytes=0-31"})
    except OcrFailed:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
        return None
    return {"width": int.from_bytes(head[16:20], "big"), "height": int.from_bytes(head[20:24], "big")}


async def page_of(settings: FrontendSettings, entry: dict[str, Any]) -> dict[str, Any]:
    """One page of a job as the views want it (text, raw, boxes, image size, annotated image)."""
    number = entry.get("page")
    link = (entry.get("result") or {}).get("url")
    if not link:
        return {"page": number, "text": f"(page {number} {entry.get('status') or 'not read'}: "
                f"{entry.get('error') or 'no result'})", "image": {"width": 1, "height": 1}, "boxes": [], "raw": ""}  # fmt: skip
    stored = json.loads(await fetch_link(settings, link))
    if "choices" in stored:  # a whole chat.completion
        text = str(((stored["choices"][0]).get("message") or {}).get("content") or "")
        stored = {**(stored.get("ocr") or {}), "text": text}
    annotated = entry.get("annotated_image") or stored.get("annotated_image")
    size = stored.get("image")
    if not size and annotated and annotated.get("url"):
        size = await png_size(settings, annotated["url"])  # boxes are in pixels of the page image
    return {
        **stored,
        "page": number,
        "annotated_image": annotated,
        "image": size or {"width": 1, "height": 1},
    }


async def job_reply(settings: FrontendSettings, job: dict[str, Any]) -> dict[str, Any]:
    """The finished job as one chat.completion-like answer with `ocr.pages`, for the same views."""
    pages = [await page_of(settings, entry) for entry in job.get("pages") or []]
    if not pages:
        raise OcrFailed(f"The job ended {job.get('status')}: {job.get('error') or 'no page was read'}.")
    texts = [("" if i == 0 else f"\n\n<!-- page {p['page']} -->\n\n") + str(p.get("text") or "")
             for i, p in enumerate(pages)]  # fmt: skip
    failed = int(job.get("pages_failed") or 0)
    return {
        "id": job.get("id"),
        "object": "chat.completion",
        "model": "job",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(texts)}, "finish_reason": "stop"}],
        "ocr": {"request_id": job.get("id"), "task": job.get("task"), "mode": job.get("mode"), "engine": "job",
                "image": pages[0].get("image"), "boxes": [], "raw": "", "pages": pages,
                "warnings": [f"{failed} page(s) could not be read."] if failed else [],
                "result": (job.get("result") or {}).get("json")},
    }  # fmt: skip
