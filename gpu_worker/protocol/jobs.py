"""Jobs (`/v1/jobs`, `/v1/usage`): request and response models, status rules, S3 layout and queue messages.

Pure data and rules: the DynamoDB access that applies them is `gpu_worker.protocol.job_table` (boto3).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpu_worker.protocol.chat import Link
from gpu_worker.protocol.tasks import MODEL_ALIAS, Mode, Task

JobStatus = Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"]
PageStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE: tuple[str, ...] = ("queued", "running")
FINAL: tuple[str, ...] = ("succeeded", "partial", "failed", "cancelled")
JOB_ID_RE = re.compile(r"^job-[0-9a-f]{32}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
IDEMPOTENCY_TTL_S = 24 * 3600
SIGNATURE_HEADER = "X-OCR-Signature"
TIMESTAMP_HEADER = "X-OCR-Timestamp"


class JobCreate(BaseModel):
    """`POST /v1/jobs` body."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        max_length=2048, description="`s3://BUCKET/uploads/<key-id>/<uuid>` from POST /v1/uploads."
    )
    task: Task | None = Field(default=None, description="As on /v1/chat/completions (default markdown).")
    mode: Mode | None = None
    ref_text: str | None = Field(default=None, max_length=10_000)
    model: str = Field(default=MODEL_ALIAS, max_length=200)
    pages: str | None = Field(default=None, max_length=1000, description='Pages to read, e.g. "1-3,7".')
    webhook_url: str | None = Field(default=None, max_length=2048, description="https URL called when done.")

    def fingerprint(self) -> str:
        """A hash of the request, to tell an idempotent retry from a different request under the same key."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()


class JobPage(BaseModel):
    page: int
    status: PageStatus
    result: Link | None = None
    annotated_image: Link | None = None
    error: str | None = None


class JobResult(BaseModel):
    markdown: Link
    json_: Link = Field(alias="json", serialization_alias="json")

    model_config = ConfigDict(populate_by_name=True)


class OcrJob(BaseModel):
    """`GET /v1/jobs/{id}` (and the 202 of `POST /v1/jobs`)."""

    id: str
    object: Literal["ocr.job"] = "ocr.job"
    status: JobStatus
    task: str
    mode: str
    pages_total: int | None = None
    pages_done: int = 0
    pages_failed: int = 0
    created: int
    updated: int
    finished: int | None = None
    error: str | None = None
    result: JobResult | None = None
    pages: list[JobPage] | None = None
    webhook_secret: str | None = Field(
        default=None, description="Only in the 202: the key that signs this job's webhook calls."
    )


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OcrJob]
    has_more: bool


class UsageDay(BaseModel):
    date: str
    requests: int = 0
    pages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    jobs: int = 0


class UsageReport(BaseModel):
    object: Literal["usage"] = "usage"
    days: list[UsageDay]


def final_status(pages_total: int, pages_failed: int) -> str:
    """The status a job ends with once every page is counted."""
    if pages_failed == 0:
        return "succeeded"
    return "failed" if pages_failed >= pages_total else "partial"


# ---- S3 layout ------------------------------------------------------------------------------------


def job_prefix(job_id: str) -> str:
    """Everything of one job lives under `jobs/<id>/`."""
    return f"jobs/{job_id}/"


def page_image_key(job_id: str, page: int) -> str:
    """The rendered page: `jobs/<id>/pages/NNNN.png`."""
    return f"{job_prefix(job_id)}pages/{page:04d}.png"


def page_result_prefix(job_id: str, page: int) -> str:
    """A page's results: `jobs/<id>/pages/NNNN/` (result.json, annotated.png)."""
    return f"{job_prefix(job_id)}pages/{page:04d}/"


# ---- queue messages -------------------------------------------------------------------------------


def split_message(job_id: str) -> str:
    """The first message of a job: render the document and fan out its pages."""
    return json.dumps({"type": "split", "job_id": job_id})


def page_message(job_id: str, page: int) -> str:
    """One page to read."""
    return json.dumps({"type": "page", "job_id": job_id, "page": page})


def parse_message(body: str) -> dict[str, Any] | None:
    """A queue message, or None when it is not one of ours (dropped by the consumer)."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or not JOB_ID_RE.match(str(message.get("job_id", ""))):
        return None
    if message.get("type") == "split":
        return message
    if message.get("type") == "page" and isinstance(message.get("page"), int) and message["page"] >= 1:
        return message
    return None
