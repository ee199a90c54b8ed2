"""The jobs queue consumer: a peer of the HTTP routes. It turns queue messages into the same OCR requests the
routes make and submits them to the same batching loop, pulling only when the loop has room, so interactive
requests keep their latency under a job backlog.

Messages: `split` (render the document, store page images, fan out one message per page) and `page` (read one
page, store its result under jobs/<id>/pages/NNNN/, count it once; the last page finishes the job). Delivery
is at least once: a page already counted is skipped; a page that keeps failing is counted failed on its last
allowed attempt and left to the DLQ. The consumer also drains the DLQ: a page whose message got there uncounted
(its worker killed on the last attempt) is counted failed there, so its job still ends (`partial`).

S3 or DynamoDB briefly down while a page runs: each call is retried with backoff inside the attempt (the message's
visibility is extended meanwhile), so a short outage neither repeats the OCR nor spends the message's receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from gpu_worker.annotate import annotate_png
from gpu_worker.documents import looks_like_pdf, open_pdf
from gpu_worker.intake import decode_image
from gpu_worker.job_output import Notifier, fail_job, maybe_finish
from gpu_worker.protocol import (
    ACTIVE,
    S3Image,
    ServiceError,
    build_prompt,
    page_image_key,
    page_message,
    page_result_prefix,
    parse_image_url,
    parse_message,
    parse_page_selection,
    resolve_pages,
    too_many_pages,
)
from gpu_worker.protocol.job_table import CLIENT_CONFIG, JobTable
from gpu_worker.types import OcrRequest

if TYPE_CHECKING:
    from gpu_worker.serving import OcrService

log = logging.getLogger(__name__)
IO_PATIENCE_S = 45.0  # how long one page keeps retrying S3/DynamoDB before giving its message back
RETRYABLE_CODES = ("ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                   "InternalServerError", "ServiceUnavailable", "SlowDown", "TransactionConflictException")  # fmt: skip


def transient(exc: BaseException) -> bool:
    """An AWS failure worth retrying: no connection, a timeout, throttling or a 5xx (not a refusal)."""
    if isinstance(exc, BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if error.get("Code") == "TransactionCanceledException":
            # Another worker's count touched the same job item at the same moment: nothing was written,
            # so the count is simply tried again (a failed condition, a duplicate delivery, is not).
            reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
            return "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons
        return status >= 500 or error.get("Code") in RETRYABLE_CODES
    return False


class JobConsumer:
    """Long-polls the jobs queue while the batch loop has room; one task per message in flight."""

    def __init__(self, service: OcrService) -> None:
        settings = service.settings
        assert settings.jobs_queue_url and settings.jobs_table
        self.service, self.settings, self.store = service, settings, service.store
        self.queue_url = settings.jobs_queue_url
        self.sqs: Any = boto3.client("sqs", region_name=settings.aws_region, config=CLIENT_CONFIG)
        self.table = JobTable(settings.jobs_table, region=settings.aws_region)
        # Its own threads: a long poll or a slow S3 call never holds up the routes' pools.
        self.pool = ThreadPoolExecutor(max_workers=4 + settings.max_batch_size, thread_name_prefix="jobs")
        self.inflight: set[asyncio.Task[None]] = set()
        # Completion events (SNS, webhook) on their own pool: a slow receiver never holds a page slot.
        self.notify = Notifier(settings.jobs_topic_arn, settings.aws_region,
                               allow_loopback=settings.allow_loopback_webhooks, table=self.table)  # fmt: skip
        self.dlq_url = settings.jobs_dlq_url
        self._task: asyncio.Task[None] | None = None
        self._dlq_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start polling on the running event loop."""
        self._task = asyncio.create_task(self._run(), name="jobs-consumer")
        self._dlq_task = asyncio.create_task(self._drain_dlq(), name="jobs-dlq")
        self._sweep_task = asyncio.create_task(self._sweep_events(), name="jobs-events")

    async def stop(self, timeout: float) -> None:
        """Stop pulling; give pages in flight `timeout` s (unfinished ones are redelivered by SQS)."""
        self._stopping = True
        for task in (self._task, self._dlq_task, self._sweep_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.inflight:
            await asyncio.wait(self.inflight, timeout=timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.notify.shutdown()

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: function(*args, **kwargs))

    async def _patient(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`_call`, retried with backoff while the failure is transient, for at most IO_PATIENCE_S."""
        give_up, pause = time.monotonic() + IO_PATIENCE_S, 0.5
        while True:
            try:
                return await self._call(function, *args, **kwargs)
            except Exception as exc:
                if not transient(exc) or time.monotonic() + pause > give_up:
                    raise
                log.warning(
                    "jobs: %s failed (%s); retrying in %.1f s", function.__name__, type(exc).__name__, pause
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    def room(self) -> int:
        """Messages worth taking now: none while interactive requests wait, else up to one batch in flight."""
        loop = self.service.loop
        if not self.service.ready or loop.depth > 0 or loop.incoming > 0:
            return 0
        return max(0, self.settings.max_batch_size - len(self.inflight))

    async def _run(self) -> None:
        while not self._stopping:
            wanted = min(10, self.room())
            if wanted == 0:
                await asyncio.sleep(0.05)
                continue
            try:
                answer = await self._call(
                    self.sqs.receive_message, QueueUrl=self.queue_url, MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=self.settings.jobs_poll_s, MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    # Our own timeout, not the queue's default: the heartbeat below is paced by it.
                    VisibilityTimeout=self.settings.jobs_visibility_s,
                )  # fmt: skip
            except Exception as exc:  # the queue briefly down: wait and poll again, nothing is lost
                log.warning("jobs queue receive failed: %s", exc)
                await asyncio.sleep(2)
                continue
            for message in answer.get("Messages", []):
                task = asyncio.create_task(self._handle(message))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)

    async def _handle(self, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        parsed = parse_message(message.get("Body", ""))
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            if parsed is None:
                log.warning("dropping a message that is not a job message")
                done = True
            elif parsed["type"] == "split":
                # Rendering a long document can outlast the visibility timeout too.
                done = await self._heartbeat(receipt, self._call(self.split, parsed["job_id"], attempt))
            else:
                done = await self._heartbeat(receipt, self.page(parsed["job_id"], parsed["page"], attempt))
        except Exception:  # S3, DynamoDB or the engine failed: leave the message, SQS redelivers it
            log.exception("job message failed (attempt %d)", attempt)
            done = False
        if done:
            with contextlib.suppress(
                Exception
            ):  # a delete lost to an outage only means a harmless redelivery
                await self._patient(self.sqs.delete_message, QueueUrl=self.queue_url, ReceiptHandle=receipt)
        else:
            with contextlib.suppress(Exception):  # retry soon rather than after the whole visibility timeout
                await self._call(self.sqs.change_message_visibility, QueueUrl=self.queue_url,
                                 ReceiptHandle=receipt, VisibilityTimeout=self.settings.jobs_retry_delay_s)  # fmt: skip

    async def _heartbeat(self, receipt: str, work: Any) -> bool:
        """Run `work`, extending the message's visibility while it runs (a page can outlast the timeout)."""
        task = asyncio.ensure_future(work)
        every = max(self.settings.jobs_visibility_s / 3, 0.5)
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return bool(task.result())
            with contextlib.suppress(Exception):
                await self._call(self.sqs.change_message_visibility, QueueUrl=self.queue_url, ReceiptHandle=receipt,
                                 VisibilityTimeout=self.settings.jobs_visibility_s)  # fmt: skip

    # ---- split: render once, fan out ------------------------------------------------------------

    def split(self, job_id: str, attempt: int) -> bool:
        """Render the job's document to page images and queue one message per page (safe to repeat)."""
        job = self.table.get_job(job_id)
        if job is None:  # the edge's record write may have timed out yet land later: retry, then drop
            return attempt >= self.settings.jobs_max_receive
        if job["status"] not in ACTIVE:
            return True
        settings = self.settings
        try:
            # A task this engine cannot do would fail every page on every attempt: fail the job now, saying so.
            self.service.engine.check_task(build_prompt(job["task"], job.get("ref_text")).task)
            reference = parse_image_url(job["file"], max_bytes=settings.max_pdf_bytes)
            if not isinstance(reference, S3Image):
                raise ValueError("a job's file is always an upload")
            self.store.check_upload(reference.bucket, reference.key, job["owner"])
            data = self.store.fetch_upload(reference.bucket, reference.key, settings.max_pdf_bytes)
            selection = parse_page_selection(job.get("pages_spec"), max_pages=settings.max_job_pages)
            numbers = self._render_pages(job_id, data, selection)
        except ServiceError as exc:  # the document itself is the problem: the job fails with the reason
            fail_job(self.table, job, exc.message, self.notify)
            return True
        self.table.set_pages_total(job_id, numbers)
        for start in range(0, len(numbers), 10):
            entries = [
                {"Id": str(n), "MessageBody": page_message(job_id, n)} for n in numbers[start : start + 10]
            ]
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if answer.get("Failed"):  # a page without its message would never be read: split again (harmless)
                raise RuntimeError(f"{len(answer['Failed'])} page message(s) of {job_id} not queued")
        return True

    def _render_pages(self, job_id: str, data: bytes, selection: list[int] | None) -> list[int]:
        settings = self.settings
        if not looks_like_pdf(data):  # an image is a one-page document
            image = decode_image(data, max_bytes=settings.max_pdf_bytes, max_pixels=settings.max_image_pixels)
            numbers = resolve_pages(selection, 1)
            self.store.put(page_image_key(job_id, 1), _png(image), "image/png")
            return numbers
        with open_pdf(data, max_bytes=settings.max_pdf_bytes) as pdf:
            numbers = resolve_pages(selection, pdf.page_count)
            if len(numbers) > settings.max_job_pages:
                raise too_many_pages(len(numbers), settings.max_job_pages)
            for number in numbers:  # one page in memory at a time
                image = pdf.render(number, dpi=settings.pdf_dpi, max_pixels=settings.max_image_pixels)
                self.store.put(page_image_key(job_id, number), _png(image), "image/png")
        return numbers

    # ---- page: one OCR request through the batch loop -------------------------------------------

    async def page(self, job_id: str, number: int, attempt: int) -> bool:
        """Read one page and count it; True when the message is finished with."""
        table, settings = self.table, self.settings
        job = await self._patient(table.get_job, job_id)
        if job is None or job["status"] not in ACTIVE:
            return True  # cancelled or already finished: nothing more to do for this page
        record = await self._patient(table.page, job_id, number)
        if record is None:
            return True
        if record["status"] in ("succeeded", "failed"):  # a duplicate delivery: make sure the job can finish
            await self._finish(job_id)
            return True
        await self._patient(table.start_page, job_id, number)
        png = await self._patient(self._read, page_image_key(job_id, number))
        image = Image.open(io.BytesIO(png)).convert("RGB")
        prompt = build_prompt(job["task"], job.get("ref_text"))
        request = OcrRequest(request_id=f"{job_id}.p{number}", image=image, task=prompt.task, mode=job["mode"],
                             prompt=prompt.text, ref_text=prompt.ref_text,
                             max_new_tokens=settings.max_new_tokens)  # fmt: skip
        result = await self.service.loop.submit(request).future
        if result.error is not None:
            if attempt < settings.jobs_max_receive:
                return False  # retried; on its last attempt it is counted failed below and left to the DLQ
            reason = f"{type(result.error).__name__}: {result.error}"
            await self._patient(table.finish_page, job, number, error=reason)
            await self._finish(job_id)
            return False
        prefix = page_result_prefix(job_id, number)
        stored = {"page": number, "text": result.text, "raw": result.raw,
                  "boxes": [b.model_dump() for b in result.boxes], "repetition_detected": result.repetition_detected,
                  "finish_reason": result.finish_reason, "prompt_tokens": result.prompt_tokens,
                  "completion_tokens": result.completion_tokens,
                  # The page image's size: a viewer places the boxes without fetching the PNG's header.
                  "image": {"width": image.width, "height": image.height},
                  "image_tokens": result.image_tokens, "tiles": result.tiles}  # fmt: skip
        await self._patient(self._store_page, prefix, image, result.boxes, stored)
        await self._patient(table.finish_page, job, number, prompt_tokens=result.prompt_tokens,
                            completion_tokens=result.completion_tokens, annotated=bool(result.boxes))  # fmt: skip
        await self._finish(job_id)
        return True

    async def _finish(self, job_id: str) -> None:
        await self._patient(maybe_finish, self.table, self.store, job_id, self.notify)

    # ---- completion events whose sender died --------------------------------------------------------

    async def _sweep_events(self) -> None:
        """Send the events of jobs finished more than `jobs_event_retry_s` ago and still marked unsent."""
        every = max(1.0, self.settings.jobs_event_retry_s / 4)
        while not self._stopping:
            try:
                sent = await self._call(self.resend_overdue_events)
                if sent:
                    log.info("jobs: sent %d overdue completion event(s)", sent)
            except Exception as exc:  # the table briefly down: the marks wait for the next sweep
                log.warning("jobs: event sweep failed: %s", exc)
            await asyncio.sleep(every)

    def resend_overdue_events(self) -> int:
        """One sweep; how many events it queued. A claim is conditional: one worker sends each."""
        now = int(time.time())
        queued = 0
        for due in self.table.notify_due(before=now - self.settings.jobs_event_retry_s):
            if not self.table.claim_notify(due["id"], due["notify_after"], now):
                continue  # another worker took it
            job = self.table.get_job(due["id"])
            if job is not None:
                self.notify(job)
                queued += 1
        return queued

    # ---- the DLQ: pages whose messages gave up uncounted ----------------------------------------

    async def _drain_dlq(self) -> None:
        while not self._stopping and self.dlq_url is None:
            try:
                self.dlq_url = await self._call(self._find_dlq)
            except Exception as exc:  # no redrive policy or no permission: say so, look again later
                log.warning("jobs: cannot find the DLQ (set JOBS_DLQ_URL): %s", exc)
                await asyncio.sleep(60)
        while not self._stopping:
            try:
                answer = await self._call(
                    self.sqs.receive_message, QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                    WaitTimeSeconds=self.settings.jobs_poll_s,
                )  # fmt: skip
            except Exception as exc:
                log.warning("jobs DLQ receive failed: %s", exc)
                await asyncio.sleep(2)
                continue
            for message in answer.get("Messages", []):
                try:
                    await self._call(self.dead, message.get("Body", ""))
                except Exception:  # left in the DLQ; seen again after its visibility timeout
                    log.exception("settling a DLQ message failed")
                    continue
                with contextlib.suppress(Exception):
                    await self._call(self.sqs.delete_message, QueueUrl=self.dlq_url,
                                     ReceiptHandle=message["ReceiptHandle"])  # fmt: skip

    def _find_dlq(self) -> str:
        """The DLQ's URL, from the jobs queue's redrive policy."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
        arn = json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
        account, name = arn.split(":")[4:6]
        url: str = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return url

    def dead(self, body: str) -> None:
        """Settle a message that reached the DLQ: its page counted failed (once), the job finished if it was the last."""
        parsed = parse_message(body)
        if parsed is None:
            log.warning("dropping a DLQ message that is not a job message")
            return
        settings, job_id = self.settings, parsed["job_id"]
        job = self.table.get_job(job_id)
        if job is None or job["status"] not in ACTIVE:
            return
        why = (
            f"gave up after {settings.jobs_max_receive} attempt(s); its message reached the dead-letter queue"
        )
        if parsed["type"] == "split":
            fail_job(self.table, job, f"The document could not be split into pages: {why}.", self.notify)
            return
        # Conditional, like every count: a page already counted (succeeded or failed) stays as it is.
        self.table.finish_page(job, parsed["page"], error=f"The page {why}.")
        maybe_finish(self.table, self.store, job_id, self.notify)

    def _read(self, key: str) -> bytes:
        body: bytes = self.store.client.get_object(Bucket=self.store.bucket, Key=key)["Body"].read()
        return body

    def _store_page(self, prefix: str, image: Image.Image, boxes: list[Any], stored: dict[str, Any]) -> None:
        # Written before the page is counted, so whoever finishes the job can always read every page.
        if boxes:
            self.store.put(prefix + "annotated.png", annotate_png(image, boxes), "image/png")
        self.store.put(
            prefix + "result.json", json.dumps(stored, ensure_ascii=False).encode(), "application/json"
        )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # speed over size: these are working files
    return buffer.getvalue()


def start_jobs_consumer(service: OcrService) -> JobConsumer | None:
    """Start consuming the jobs queue when the worker has one configured."""
    if not (service.settings.jobs_queue_url and service.settings.jobs_table):
        return None
    consumer = JobConsumer(service)
    consumer.start()
    log.info("consuming jobs from %s", service.settings.jobs_queue_url)
    return consumer
