"""S3 for the edge: presigned upload POSTs under uploads/<key-id>/, and finished results by request id.

boto3 is imported and its client built on first use, not at import: a cold Lambda serving a chat request
never pays for it. Presigning is local (no S3 round trip) and runs inline; lookups run in the store's own
bounded thread pool under a deadline, so an S3 that hangs costs a caller at most `s3_deadline_s` and never
holds up uploads, chat forwarding or /health.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from edge_api.errors import StorageUnavailable
from edge_api.settings import EdgeSettings
from gpu_worker.presign import LinkSigner
from gpu_worker.protocol import (
    IMAGE_MEDIA_TYPES,
    PDF_MEDIA_TYPE,
    REQUEST_ID_RE,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

T = TypeVar("T")
# Without s3:ListBucket a missing object answers 403, not 404.
MISSING = ("NoSuchKey", "404", "AccessDenied", "403")


class BoundedPool:
    """Blocking AWS calls in a bounded pool of threads under a deadline (S3 here; the jobs table and queue too)."""

    def __init__(self, threads: int, name: str, unavailable: Callable[[], Exception]) -> None:
        self.threads, self.name, self.unavailable = threads, name, unavailable
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, call: Callable[[], T], until: float) -> T:
        """`call` in the pool; `unavailable()` (a 503) once `until` (time.monotonic()) has passed."""

        def guarded() -> T:
            # Work queued behind a hung dependency whose caller already had its answer is dropped, not run late.
            if time.monotonic() > until:
                raise self.unavailable()
            return call()

        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
        future = asyncio.get_running_loop().run_in_executor(self._pool, guarded)
        try:
            return await asyncio.wait_for(future, max(until - time.monotonic(), 0.0))
        except TimeoutError:
            raise self.unavailable() from None

    def close(self) -> None:
        """Let the pool's threads go (they finish what they hold)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class EdgeStore:
    """The edge's S3 client: built lazily, every call bounded by timeouts, retries and a deadline."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._signer: LinkSigner | None = None
        self._lock = threading.Lock()
        self.pool = BoundedPool(settings.s3_max_concurrency, "edge-s3", self.unavailable)

    @property
    def client(self) -> Any:
        """The boto3 S3 client, built on first use (once, whichever thread gets there first)."""
        return self._connected()[0]

    @property
    def signer(self) -> LinkSigner:
        """Presigned GETs of results, signed locally (gpu_worker/presign.py) with the client's credentials."""
        return self._connected()[1]

    def _connected(self) -> tuple[Any, LinkSigner]:
        if self._signer is None:
            with self._lock:
                if self._signer is None:  # set last (tuple assignment goes left to right): it says both are
                    self._client, self._signer = self._connect()
        return self._client, self._signer

    def _connect(self) -> tuple[Any, LinkSigner]:
        import boto3
        from botocore.config import Config

        s = self.settings
        config = Config(
            signature_version="s3v4",
            connect_timeout=s.s3_connect_timeout_s,
            read_timeout=s.s3_read_timeout_s,
            retries={"max_attempts": s.s3_max_attempts, "mode": "standard"},
            max_pool_connections=s.s3_max_concurrency,
        )
        session = boto3.session.Session()
        client = session.client("s3", endpoint_url=s.s3_endpoint_url, region_name=s.aws_region, config=config)
        return client, LinkSigner(client, session.get_credentials(), s.results_bucket, s.result_url_ttl_s)

    async def run(self, call: Callable[[], T]) -> T:
        """`call` (blocking S3 I/O) in the store's pool; StorageUnavailable (503) past the deadline."""
        return await self.pool.run(call, time.monotonic() + self.settings.s3_deadline_s)

    def unavailable(self) -> StorageUnavailable:
        """The 503 a caller gets while S3 hangs, refuses or fails."""
        return StorageUnavailable(
            "Result storage is not answering; try again shortly.",
            headers={"Retry-After": str(self.settings.s3_retry_after_s)},
        )

    def upload_prefix(self, owner: str) -> str:
        """Where this key's uploads live."""
        return f"{self.settings.upload_prefix}{owner}/"

    def presign_upload(self, owner: str, content_type: str, size: int) -> dict[str, Any]:
        """A presigned POST for one image of `content_type` and at most `size` bytes (signed locally)."""
        from botocore.exceptions import BotoCoreError

        is_pdf = content_type == PDF_MEDIA_TYPE  # PDFs (documents and jobs) have their own, larger limit
        if content_type not in IMAGE_MEDIA_TYPES and not is_pdf:
            raise UnsupportedMediaType(
                f"Uploads take PNG, JPEG or WebP images or PDFs, not {content_type!r}.", param="content_type"
            )
        limit = self.settings.upload_max_pdf_bytes if is_pdf else self.settings.upload_max_bytes
        if size > limit:
            raise PayloadTooLarge(
                f"The upload limit is {limit} bytes.", param="size", code="upload_too_large"
            )
        # The worker tells a PDF upload by its name, before reading it.
        key = f"{self.upload_prefix(owner)}{uuid.uuid4().hex}{'.pdf' if is_pdf else ''}"
        ttl = self.settings.upload_url_ttl_s
        try:
            post = self.client.generate_presigned_post(
                Bucket=self.settings.results_bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, size]],
                ExpiresIn=ttl,
            )
        except BotoCoreError as exc:  # e.g. no credentials: nothing a client can fix, and not a 500
            raise self.unavailable() from exc
        return {
            "url": post["url"],
            "fields": post["fields"],
            "image_url": f"s3://{self.settings.results_bucket}/{key}",
            "expires_at": int(time.time()) + ttl,
        }

    async def find_result(self, request_id: str, owner: str) -> tuple[int, dict[str, Any]]:
        """(status, body) of a stored result of this key; 404 while running or for another key, 503 on S3 faults."""
        if not REQUEST_ID_RE.match(request_id):
            raise InvalidRequest("Malformed request id.", param="request_id", code="invalid_request_id")
        return await self.run(lambda: self._find_result(request_id, owner))

    def _find_result(self, request_id: str, owner: str) -> tuple[int, dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        today = dt.datetime.now(dt.UTC).date()
        for days_back in range(self.settings.result_lookup_days + 1):
            day = today - dt.timedelta(days=days_back)
            key = f"{self.settings.results_prefix}{day:%Y/%m/%d}/{request_id}/result.json"
            try:
                raw = self.client.get_object(Bucket=self.settings.results_bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in MISSING:
                    continue
                raise self.unavailable() from exc
            except BotoCoreError as exc:  # timeouts, refused or reset connections: S3 is down, not the id
                raise self.unavailable() from exc
            stored = json.loads(raw)
            if stored.get("owner") != owner:
                break  # another key's result: answer exactly as if it did not exist
            return int(stored.get("status", 200)), self._fresh_links(stored.get("body") or {})
        raise NotFound(
            f"No result for request {request_id!r} (still running, expired, or not yours).",
            code="result_not_found",
        )

    def _fresh_links(self, body: dict[str, Any]) -> dict[str, Any]:
        """Re-sign the stored links, a document's pages' included: the ones saved with the result may have expired."""
        ocr = body.get("ocr")
        if not isinstance(ocr, dict):
            return body
        links = [ocr.get("result"), ocr.get("annotated_image")]
        pages = ocr.get("pages")
        if isinstance(pages, list):
            links += [page.get("annotated_image") for page in pages if isinstance(page, dict)]
        for link in links:
            if isinstance(link, dict) and isinstance(link.get("key"), str) and link["key"]:
                link["url"], link["expires_at"] = self.signer.sign(link["key"])
        return body

    def close(self) -> None:
        """Let the pool's threads go (they finish what they hold)."""
        self.pool.close()
