"""`/v1/jobs` and `/v1/usage`: documents of any length, read by the workers through the jobs queue.

The edge checks the upload (ours, this key's, a PDF or an image), writes the job record, and sends one split
message; the workers do the rest (gpu_worker/consumer.py). Same keys, validation and error shape as the rest.

Every DynamoDB, SQS and S3 call of these routes runs in the backend's own bounded pool (edge_api/store.py's
BoundedPool) with short botocore timeouts, under one deadline per request: a hung table or queue answers 503 with
Retry-After within `jobs_deadline_s`, and never holds up chat forwarding, uploads or /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from edge_api.deps import Caller
from edge_api.settings import EdgeSettings
from edge_api.store import BoundedPool
from edge_api.webhooks import check_webhook_url
from gpu_worker.presign import LinkSigner
from gpu_worker.protocol import (
    IDEMPOTENCY_KEY_RE,
    IMAGE_MEDIA_TYPES,
    JOB_ID_RE,
    MODEL_ALIAS,
    MODEL_ID_DEEPSEEK,
    MODEL_ID_RAPIDOCR,
    PDF_MEDIA_TYPE,
    InvalidRequest,
    JobCreate,
    JobList,
    JobPage,
    JobResult,
    Link,
    ModelNotFound,
    NotFound,
    NotReady,
    OcrJob,
    PayloadTooLarge,
    PermissionDenied,
    S3Image,
    UnsupportedMediaType,
    UsageDay,
    UsageReport,
    build_prompt,
    page_result_prefix,
    parse_image_url,
    parse_page_selection,
    split_message,
)

if TYPE_CHECKING:
    from gpu_worker.protocol.job_table import JobTable

AWS_ERRORS = (ClientError, BotoCoreError)
log = logging.getLogger(__name__)


def backend(request: Request) -> JobsBackend:
    """The app's jobs backend, built on first use and kept on app.state (reused by warm Lambda invocations)."""
    state = request.app.state
    if getattr(state, "jobs", None) is None:
        state.jobs = JobsBackend(state.settings, state.store.client, state.store.signer)
    return state.jobs  # type: ignore[no-any-return]


Backend = Annotated["JobsBackend", Depends(backend)]


async def record_inline_usage(request: Request, key: str, result: dict[str, Any] | None) -> None:
    """Count one /v1/chat/completions request (pages and tokens when known) in this key's daily usage.

    Only where the jobs table exists; a table fault is logged, never turned into a failed OCR answer. Run it as
    the response's background task (edge_api/chat.py): the answer never waits on DynamoDB or on building the
    jobs backend (a cold start's boto3 import).
    """
    if not request.app.state.settings.jobs_table:
        return
    usage = (result or {}).get("usage") or {}
    pages = len(((result or {}).get("ocr") or {}).get("pages") or [None])
    counts = {"requests": 1, "pages": pages, "prompt_tokens": int(usage.get("prompt_tokens") or 0),
              "completion_tokens": int(usage.get("completion_tokens") or 0)}  # fmt: skip
    try:
        # Built in a thread (boto3's import and clients on a cold start): the event loop serves other requests.
        jobs = await asyncio.to_thread(backend, request)
        table = jobs.require()
        # A counter is not worth delaying an OCR answer: at most a second, then logged and dropped.
        until = time.monotonic() + min(1.0, jobs.settings.jobs_deadline_s)
        await jobs.run(lambda: table.add_usage(key, **counts), until)
    except NotReady as exc:
        log.warning("usage for %s not counted: %s", key, type(exc).__name__)
    except Exception:  # a background task's error has no caller to answer: log it, never crash the server
        log.exception("usage for %s not counted", key)


class JobsBackend:
    """The table, the queue and S3 signing for the jobs routes (blocking calls: run them in a thread)."""

    def __init__(self, settings: EdgeSettings, s3: Any, signer: LinkSigner) -> None:
        # boto3 on the first jobs request, not in every Lambda cold start (bench/edge_cold_import.py).
        import boto3
        from botocore.config import Config

        from gpu_worker.protocol.job_table import JobTable

        self.settings, self.s3, self.signer = settings, s3, signer
        # The edge's S3 timeouts and attempts for DynamoDB and SQS too (the worker's are longer).
        config = Config(connect_timeout=settings.s3_connect_timeout_s, read_timeout=settings.s3_read_timeout_s,
                        retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
                        max_pool_connections=settings.jobs_max_concurrency)  # fmt: skip
        self.table = (
            JobTable(settings.jobs_table, region=settings.aws_region, config=config)
            if settings.jobs_table
            else None
        )
        self.sqs: Any = boto3.client("sqs", region_name=settings.aws_region, config=config)
        self.pool = BoundedPool(settings.jobs_max_concurrency, "edge-jobs", self.unavailable)

    def unavailable(self, what: str = "not answering; retry shortly") -> NotReady:
        """The 503 a caller gets while DynamoDB, SQS or S3 hang, refuse or fail."""
        return NotReady(
            f"The jobs store is {what}.", code="jobs_unavailable",
            headers={"Retry-After": str(self.settings.s3_retry_after_s)},
        )  # fmt: skip

    async def run(self, call: Callable[[], Any], until: float) -> Any:
        """`call` (blocking AWS I/O) in the jobs pool; a 503 past `until` or on an AWS fault, never a 500."""

        def guarded() -> Any:
            try:
                return call()
            except AWS_ERRORS as exc:
                raise self.unavailable(f"unavailable ({type(exc).__name__}); retry shortly") from None

        return await self.pool.run(guarded, until)

    def require(self) -> JobTable:
        """The table, or a 503 when this deployment has no jobs configured."""
        if self.table is None or not self.settings.jobs_queue_url:
            raise NotReady("Jobs are not configured on this deployment (JOBS_TABLE, JOBS_QUEUE_URL).")
        return self.table

    def link(self, key: str) -> Link:
        """A presigned GET for one object of a job (signed locally: a job of 500 pages lists 1,000 of them)."""
        url, expires_at = self.signer.sign(key)
        return Link(key=key, url=url, expires_at=expires_at)

    def check_file(self, file: str, owner: str) -> None:
        """The upload exists, is this key's, and is a PDF or an image within its size limit."""
        settings = self.settings
        # The scheme first: a data: URL is the wrong kind of reference (400), not an inline image over 1 byte.
        if not file.startswith("s3://"):
            raise InvalidRequest(
                "`file` must be an `s3://` reference from POST /v1/uploads.",
                param="file",
                code="invalid_file_reference",
            )
        reference = parse_image_url(file, max_bytes=1)
        prefix = f"{settings.upload_prefix}{owner}/"
        if not isinstance(reference, S3Image):
            raise InvalidRequest(
                "`file` must be an `s3://` reference from POST /v1/uploads.",
                param="file",
                code="invalid_file_reference",
            )
        if reference.bucket != settings.results_bucket or not reference.key.startswith(prefix):
            raise PermissionDenied(
                "This file does not belong to your API key; upload it with POST /v1/uploads.",
                param="file",
                code="invalid_file_reference",
            )
        try:
            head = self.s3.head_object(Bucket=reference.bucket, Key=reference.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "403"):
                raise InvalidRequest(
                    "The uploaded file was not found (not uploaded yet, or expired).",
                    param="file",
                    code="file_not_found",
                ) from None
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            # S3 refusing the reference itself (a key too long, a malformed name) is the caller's 400; a timeout
            # or throttling (408, 429) and every 5xx are ours: the 503 run() makes of them.
            if 400 <= status < 500 and status not in (408, 429):
                raise InvalidRequest(
                    f"S3 refused this file reference ({exc.response.get('Error', {}).get('Code')}).",
                    param="file",
                    code="invalid_file_reference",
                ) from None
            raise
        content_type = (head.get("ContentType") or "").split(";")[0].strip().lower()
        if content_type not in (*IMAGE_MEDIA_TYPES, PDF_MEDIA_TYPE):
            raise UnsupportedMediaType(f"Jobs read PDFs and images, not {content_type!r}.", param="file")
        if int(head.get("ContentLength", 0)) > settings.upload_max_pdf_bytes:
            raise PayloadTooLarge(
                f"The file is larger than {settings.upload_max_pdf_bytes} bytes.", param="file"
            )

    def create(
        self, owner: str, body: JobCreate, idempotency_key: str | None, until: float
    ) -> tuple[dict[str, Any], bool]:
        """The new job (queued, split message sent), or the job this Idempotency-Key already made.

        Order: the record first, then the split message, and 202 only once both are written.
        - A message cannot go first: the worker reads the job from its record, so a message that outran its
          record would be dropped and the record would wait forever.
        - The record write fails or times out (its outcome unknown: it may still land): the split message is sent
          anyway, and the worker retries a split whose record is missing before dropping it, so a late record is
          still read. The caller gets a 503 that says the job may exist.
        - The message cannot be sent after the record was written (the compensation): the record is marked
          failed ("could not be queued") and the Idempotency-Key released, so nothing sits `queued` without a
          message and a retry with the same key starts afresh.
        - Repair: a retry with the same key that finds its job still queued and not yet split sends the split
          again (splitting twice is harmless), so even a failed compensation is mended by the client's retry.
        """
        table = self.require()
        self.check_file(body.file, owner)
        job_id = f"job-{uuid.uuid4().hex}"
        if idempotency_key is not None:
            held = table.claim_idempotency_key(owner, idempotency_key, body.fingerprint(), job_id)
            if held is not None:
                existing = table.get_job(held)
                if existing is not None:
                    if existing["status"] == "queued" and existing.get("pages_total") is None:
                        self.send_split(held)
                    return existing, False
                job_id = held  # its record never landed: write it now, under the id the key holds
        if time.monotonic() > until:  # the caller already had its 503: write nothing more
            raise self.unavailable()
        secret = secrets.token_urlsafe(32) if body.webhook_url else None
        try:
            job = table.create_job(job_id, owner, body, secret)
        except AWS_ERRORS as exc:
            with contextlib.suppress(*AWS_ERRORS):
                self.send_split(job_id)
            raise self.unavailable(
                f"unavailable ({type(exc).__name__}) and the job may or may not have been created; retry shortly "
                "with the same Idempotency-Key to be sure of one job"
            ) from None
        try:
            self.send_split(job_id)
        except AWS_ERRORS as exc:
            with contextlib.suppress(*AWS_ERRORS):
                table.complete(
                    job_id, "failed", None, "The job could not be queued; submit it again.", notify=False
                )
                if idempotency_key is not None:
                    table.release_idempotency_key(owner, idempotency_key, job_id)
            raise self.unavailable(
                f"unavailable ({type(exc).__name__}): the job was not queued; retry shortly"
            ) from None
        return job, True

    def send_split(self, job_id: str) -> None:
        """The job's first message: the worker renders the document and fans out its pages."""
        self.sqs.send_message(QueueUrl=self.settings.jobs_queue_url, MessageBody=split_message(job_id))

    def view(self, job: dict[str, Any], with_pages: bool) -> OcrJob:
        """The public shape of a job record, with fresh links."""
        keys = job.get("result_keys") or {}
        result = (
            JobResult.model_validate(
                {"markdown": self.link(keys["markdown"]), "json": self.link(keys["json"])}
            )
            if keys
            else None
        )
        pages = None
        if with_pages and self.table is not None:
            pages = []
            for record in self.table.pages(job["id"]):
                number = int(record["page"])
                done = record["status"] == "succeeded"
                prefix = page_result_prefix(job["id"], number)
                pages.append(
                    JobPage(
                        page=number,
                        status=record["status"],
                        error=record.get("error"),
                        result=self.link(prefix + "result.json") if done else None,
                        annotated_image=self.link(prefix + "annotated.png")
                        if done and record.get("annotated")
                        else None,
                    )  # fmt: skip
                )
        return OcrJob(
            id=job["id"], status=job["status"], task=job["task"], mode=job["mode"],
            pages_total=job.get("pages_total"), pages_done=job.get("pages_done", 0),
            pages_failed=job.get("pages_failed", 0), created=job["created"], updated=job["updated"],
            finished=job.get("finished"), error=job.get("error"), result=result, pages=pages,
        )  # fmt: skip


def check_body(body: JobCreate, settings: EdgeSettings) -> None:
    """Everything about a job request that needs no AWS call: model, prompt rules, pages, webhook URL."""
    if body.model not in (MODEL_ALIAS, MODEL_ID_DEEPSEEK, MODEL_ID_RAPIDOCR):
        raise ModelNotFound(f"The model {body.model!r} does not exist; use {MODEL_ALIAS!r}.", param="model")
    build_prompt(body.task, body.ref_text)
    parse_page_selection(body.pages, max_pages=settings.max_job_pages)
    if body.webhook_url is not None:
        check_webhook_url(body.webhook_url, local=settings.allow_http_webhooks)


router = APIRouter()


def deadline(jobs: JobsBackend) -> float:
    """The time.monotonic() by which this request answers, whatever AWS does."""
    return time.monotonic() + jobs.settings.jobs_deadline_s


def job_id_or_404(job_id: str) -> str:
    """A well-formed job id, or the 404 any unknown id gets."""
    if not JOB_ID_RE.match(job_id):
        raise NotFound(f"No job {job_id[:80]!r}.", code="job_not_found", param="id")
    return job_id


@router.post("/v1/jobs", status_code=202)
async def create_job(
    request: Request,
    body: JobCreate,
    key: Caller,
    jobs: Backend,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Queue a document (an upload from POST /v1/uploads); poll GET /v1/jobs/{id}."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise InvalidRequest(
            "Idempotency-Key must be 1-255 visible ASCII characters.", param="Idempotency-Key"
        )
    check_body(body, jobs.settings)
    until = deadline(jobs)

    def create() -> tuple[OcrJob, bool]:
        job, created = jobs.create(key, body, idempotency_key, until)
        view = jobs.view(job, with_pages=False)  # signing links may fail (no credentials): inside run's guard
        # The job is this key's (the Idempotency-Key is claimed per key, for the same body): a replay sees the
        # secret too, or a client whose first answer was lost could never verify its webhooks.
        if job.get("owner") == key:
            view.webhook_secret = job.get("webhook_secret")
        return view, created

    view, created = await jobs.run(create, until)
    if created:
        request.app.state.meter.job_event("JobsCreated", key)
    return JSONResponse(view.model_dump(mode="json", by_alias=True), status_code=202 if created else 200)


@router.get("/v1/jobs/{job_id}")
async def get_job(job_id: str, key: Caller, jobs: Backend) -> JSONResponse:
    """A job's progress, and its results once finished (another key's job is 404)."""
    table = jobs.require()
    job_id = job_id_or_404(job_id)
    view = await jobs.run(lambda: jobs.view(table.get_owned(job_id, key), True), deadline(jobs))
    return JSONResponse(view.model_dump(mode="json", by_alias=True))


@router.get("/v1/jobs")
async def list_jobs(
    key: Caller, jobs: Backend, limit: Annotated[int, Query(ge=1, le=100)] = 20, after: str | None = None
) -> JSONResponse:
    """This key's jobs, newest first."""
    table = jobs.require()
    start = job_id_or_404(after) if after else None

    def listing() -> JobList:
        items, more = table.list_jobs(key, limit, start)
        # Links are signed here, in run's guard: a signing fault (no credentials) is a 503, not a 500.
        return JobList(data=[jobs.view(item, with_pages=False) for item in items], has_more=more)

    answer = await jobs.run(listing, deadline(jobs))
    return JSONResponse(answer.model_dump(mode="json", by_alias=True))


@router.delete("/v1/jobs/{job_id}")
async def cancel_job(request: Request, job_id: str, key: Caller, jobs: Backend) -> JSONResponse:
    """Cancel the pages not yet started; finished pages stay readable."""
    table = jobs.require()
    job_id = job_id_or_404(job_id)
    until = deadline(jobs)
    before = await jobs.run(lambda: table.get_owned(job_id, key), until)
    view = await jobs.run(lambda: jobs.view(table.cancel(job_id, key), with_pages=False), until)
    if before["status"] != view.status:
        request.app.state.meter.job_event("JobsCancelled", key)
    return JSONResponse(view.model_dump(mode="json", by_alias=True))


@router.get("/v1/usage")
async def usage(key: Caller, jobs: Backend, days: Annotated[int, Query(ge=1, le=90)] = 7) -> Response:
    """This key's requests, pages, tokens and jobs per day (UTC), oldest first."""
    table = jobs.require()
    rows = await jobs.run(lambda: table.usage(key, days), deadline(jobs))
    return JSONResponse(UsageReport(days=[UsageDay(**row) for row in rows]).model_dump(mode="json"))
