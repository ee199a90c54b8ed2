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


async def job_reply(settings: FrontendSettings, job: dict[str, Any]) -> dict[str, Any]:
    """The finished job as one chat.completion-like answer with `ocr.pages`, for the same views."""
    pages: list[dict[str, Any]] = []
    texts: list[str] = []
    for entry in job.get("pages") or []:
        link = (entry.get("result") or {}).get("url")
        if not link:
            pages.append({"page": entry.get("page"), "text": f"(page failed: {entry.get('error') or 'no result'})",
                          "image": {"width": 1, "height": 1}, "boxes": [], "raw": ""})  # fmt: skip
            continue
        stored = json.loads(await fetch_link(settings, link))
        ocr = stored.get("ocr") or {}
        text = str((((stored.get("choices") or [{}])[0]).get("message") or {}).get("content") or "")
        pages.append({**ocr, "page": entry.get("page"), "text": text,
                      "annotated_image": entry.get("annotated_image") or ocr.get("annotated_image")})  # fmt: skip
    for page in pages:
        prefix = "" if page is pages[0] else f"\n\n<!-- page {page['page']} -->\n\n"
        texts.append(prefix + str(page.get("text") or ""))
    if not pages:
        raise OcrFailed(f"The job ended {job.get('status')}: {job.get('error') or 'no page was read'}.")
    return {
        "id": job.get("id"),
        "object": "chat.completion",
        "model": (pages[0].get("engine") or "?"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(texts)}, "finish_reason": "stop"}],
        "ocr": {"request_id": job.get("id"), "task": job.get("task"), "mode": job.get("mode"),
                "engine": pages[0].get("engine") or "?", "image": pages[0].get("image"), "boxes": [], "raw": "",
                "pages": pages, "warnings": [f"{job.get('pages_failed')} page(s) failed."] if job.get("pages_failed") else [],
                "result": (job.get("result") or {}).get("json")},
    }  # fmt: skip
