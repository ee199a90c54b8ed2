"""Multi-page requests: a PDF on /v1/chat/completions becomes one OCR request per page, run through the same
batching loop together, answered as one chat completion (`content` = pages in order, `ocr.pages` per page).

Serving calls `accept_document` when the request's file is a PDF; a single image never comes here.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from gpu_worker.documents import RenderedPage, render_pdf
from gpu_worker.protocol import (
    PDF_MEDIA_TYPE,
    ChatCompletion,
    Choice,
    DataImage,
    ImageSize,
    OcrExtension,
    OcrSpec,
    PageOcr,
    ResponseMessage,
    ServiceError,
    Timings,
    UpstreamError,
    Usage,
    parse_image_url,
)
from gpu_worker.results import S3_ERRORS
from gpu_worker.serving import Drawing, Job
from gpu_worker.storage import result_prefix
from gpu_worker.types import OcrRequest, OcrResult

if TYPE_CHECKING:
    from gpu_worker.batching import Pending
    from gpu_worker.serving import OcrService

SYNC_HINT = " Send longer documents as a job: upload the PDF, then POST /v1/jobs."


def is_document(url: str) -> bool:
    """A PDF: a `data:application/pdf` URL, or an upload whose key says PDF (the edge names them `*.pdf`)."""
    return url.startswith(f"data:{PDF_MEDIA_TYPE}") or (
        url.startswith("s3://") and url.lower().endswith(".pdf")
    )


def page_separator(number: int) -> str:
    """What comes before each page's text after the first."""
    return f"\n\n<!-- page {number} -->\n\n"


async def accept_document(
    service: OcrService, spec: OcrSpec, request_id: str, owner: str | None, received: float
) -> Job:
    """Read and render the PDF (4xx before any work), queue every page, and return one job for all of them."""
    settings = service.settings
    data = await _document_bytes(service, spec.image_url, owner, received)
    pages: list[RenderedPage] = await service._bounded(
        service.decode_pool, received, "rendering the PDF",
        lambda: render_pdf(data, max_bytes=settings.max_pdf_bytes, max_pages=settings.max_sync_pages,
                           dpi=settings.pdf_dpi, max_pixels=settings.max_image_pixels, limit_hint=SYNC_HINT),
    )  # fmt: skip
    requests = [service.page_request(spec, f"{request_id}.p{page.number}", page.image) for page in pages]
    budget = service._remaining(received) * settings.admission_wait_fraction
    # A stream carries the first page's text as it is generated; the pages after it follow when all are done
    # (the engine says when a page's text is complete only by finishing the batch).
    pieces: asyncio.Queue[str] | None = asyncio.Queue() if spec.stream else None
    pendings: list[Pending] = []
    try:
        for index, request in enumerate(requests):
            on_piece = pieces.put_nowait if pieces is not None and index == 0 else None
            pendings.append(service.loop.submit(request, on_piece, budget))
    except ServiceError:
        for pending in pendings:  # half a document is no answer: drop the pages already queued
            pending.future.cancel()
        raise
    # The job's own request/pending are the first page's (its size and queue time); `_finish_document` owns the rest.
    job = Job(request_id, spec, requests[0], pendings[0], received, owner, pieces)
    job.task = asyncio.create_task(_finish_document(service, job, pages, requests, pendings))
    service._jobs.add(job.task)
    job.task.add_done_callback(service._jobs.discard)
    return job


async def _document_bytes(service: OcrService, url: str, owner: str | None, received: float) -> bytes:
    settings = service.settings
    reference = parse_image_url(url, max_bytes=settings.max_pdf_bytes)
    if isinstance(reference, DataImage):
        return reference.data
    service.store.check_upload(reference.bucket, reference.key, owner)
    try:
        return await service._bounded(
            service.s3_pool, received, "reading the uploaded PDF from S3",
            lambda: service.store.fetch_upload(reference.bucket, reference.key, settings.max_pdf_bytes),
        )  # fmt: skip
    except S3_ERRORS as exc:
        raise UpstreamError(
            f"Could not read the uploaded PDF from S3 ({type(exc).__name__}); retry shortly.",
            headers={"Retry-After": "5"},
        ) from None


async def _finish_document(
    service: OcrService,
    job: Job,
    pages: list[RenderedPage],
    requests: list[OcrRequest],
    pendings: list[Pending],
) -> ChatCompletion:
    results: list[OcrResult] = [await pending.future for pending in pendings]
    prefix = result_prefix(service.settings.results_prefix, job.request_id)
    failed = next((r.error for r in results if r.error is not None), None)
    if failed is not None:
        service.store_failure(job, prefix, failed)
        raise failed
    # Pages that shared a batch shared its engine time: count each batch once.
    engine_ms = sum(
        {pending.batch: r.inference_ms for pending, r in zip(pendings, results, strict=True)}.values()
    )
    response = _response(service, job, pages, results, (time.perf_counter() - job.received) * 1000, engine_ms)
    drawings = [
        Drawing(page_folder(prefix, page.number) + "annotated.png", page.image, result.boxes, entry)
        for page, result, entry in zip(pages, results, response.ocr.pages or [], strict=True)
        if result.boxes
    ]
    service.store_result(job, prefix, response, drawings)
    service.metrics.tokens.labels(kind="prompt").inc(response.usage.prompt_tokens)
    service.metrics.tokens.labels(kind="completion").inc(response.usage.completion_tokens)
    service.metrics.requests.labels(status="200").inc()
    service.metrics.latency.observe(response.ocr.timings_ms.total / 1000)
    return response


def _response(
    service: OcrService, job: Job, pages: list[RenderedPage], results: list[OcrResult], total_ms: float,
    engine_ms: float,
) -> ChatCompletion:  # fmt: skip
    content, raw = results[0].text, results[0].raw
    for page, result in zip(pages[1:], results[1:], strict=True):
        content += page_separator(page.number) + result.text
        raw += page_separator(page.number) + result.raw
    per_page = [
        PageOcr(
            page=page.number,
            image=ImageSize(width=page.image.width, height=page.image.height),
            boxes=result.boxes,
            raw=result.raw,
            text=result.text,
            repetition_detected=result.repetition_detected,
            image_tokens=result.image_tokens,
            tiles=result.tiles,
        )  # fmt: skip
        for page, result in zip(pages, results, strict=True)
    ]
    first = pages[0].image
    ocr = OcrExtension(
        request_id=job.request_id, task=job.spec.task, mode=job.spec.mode, engine=service.engine.name,
        image=ImageSize(width=first.width, height=first.height), boxes=[], raw=raw,
        repetition_detected=any(r.repetition_detected for r in results), pages=per_page,
        image_tokens=sum(r.image_tokens for r in results),  # what the whole document cost; per page in `pages`
        timings_ms=Timings(queue=round(job.pending.queue_ms, 1), total=round(total_ms, 1),
                           inference=round(engine_ms, 1)),
    )  # fmt: skip
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    finish = "length" if any(r.finish_reason == "length" for r in results) else "stop"
    return ChatCompletion(
        id=job.request_id, model=service.engine.model_id, ocr=ocr,
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
        choices=[Choice(message=ResponseMessage(content=content), finish_reason=finish)],
    )  # fmt: skip


def page_folder(prefix: str, number: int) -> str:
    """Where one page's stored files go: `<prefix>pages/NNNN/`."""
    return f"{prefix}pages/{number:04d}/"
