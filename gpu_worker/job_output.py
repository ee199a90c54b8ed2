"""The end of a job: whoever counts the last page assembles result.md and result.json, sets the final status,
publishes the completion event (SNS) and calls the webhook (HMAC-SHA256 signed, retried with backoff).

Assembly is idempotent (the same files from the same page results), so two workers finishing at once, or a
redelivered message after a crash mid-assembly, write the same thing; only the one whose conditional status
update wins sends the events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import boto3
import httpx

from gpu_worker.protocol import (
    ACTIVE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    final_status,
    job_prefix,
    page_result_prefix,
)
from gpu_worker.protocol.job_table import CLIENT_CONFIG, JobTable
from gpu_worker.storage import ResultStore

log = logging.getLogger(__name__)
WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT_S = 5.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature: `sha256=` + HMAC-SHA256(secret, "<timestamp>.<body>") in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300) -> bool:
    """What a receiver checks: a matching signature over a recent timestamp (replays are refused)."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def page_marker(number: int, failed: str | None = None) -> str:
    """The line before each page's text in result.md (as on /v1/chat/completions)."""
    return f"<!-- page {number} failed: {failed} -->" if failed else f"<!-- page {number} -->"


def assemble(table: JobTable, store: ResultStore, job: dict[str, Any]) -> dict[str, str]:
    """Write result.md (pages in order) and result.json from the stored page results; their keys."""
    parts, pages = [], []
    for record in table.pages(job["id"]):
        number, error = int(record["page"]), record.get("error")
        entry: dict[str, Any] = {"page": number, "status": record["status"], "error": error}
        if record["status"] == "succeeded":
            key = page_result_prefix(job["id"], number) + "result.json"
            stored = json.loads(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read())
            entry.update(text=stored["text"], raw=stored["raw"], boxes=stored["boxes"])
            parts.append((number, stored["text"], None))
        else:
            parts.append((number, "", error or record["status"]))
        pages.append(entry)
    markdown = "\n\n".join(
        text if i == 0 and not failed else f"{page_marker(n, failed)}\n\n{text}".rstrip()
        for i, (n, text, failed) in enumerate(parts)
    )
    keys = {"markdown": job_prefix(job["id"]) + "result.md", "json": job_prefix(job["id"]) + "result.json"}
    store.put(keys["markdown"], (markdown + "\n").encode("utf-8"), "text/markdown; charset=utf-8")
    summary = {k: job.get(k) for k in ("id", "task", "mode", "pages_total", "created")}
    store.put_json(keys["json"], {**summary, "pages": pages})
    return keys


def maybe_finish(
    table: JobTable, store: ResultStore, job_id: str, topic_arn: str | None, region: str
) -> bool:
    """Finish the job if every page is counted; True when this call set the final status (and notified)."""
    job = table.get_job(job_id)
    if job is None or job["status"] not in ACTIVE or job.get("pages_total") is None:
        return False
    total, done, failed = int(job["pages_total"]), int(job["pages_done"]), int(job["pages_failed"])
    if done + failed < total:
        return False
    keys = assemble(table, store, job)
    status = final_status(total, failed)
    error = f"{failed} of {total} page(s) failed." if failed else None
    if not table.complete(job_id, status, keys, error):
        return False
    notify(table.get_job(job_id) or job, topic_arn, region)
    return True


def fail_job(table: JobTable, job: dict[str, Any], error: str, topic_arn: str | None, region: str) -> None:
    """End a job that cannot be read at all (encrypted, corrupt, too long...) with its reason."""
    if table.complete(job["id"], "failed", None, error):
        notify(table.get_job(job["id"]) or job, topic_arn, region)


def event(job: dict[str, Any]) -> dict[str, Any]:
    """The completion event (SNS message and webhook body)."""
    fields = ("id", "status", "pages_total", "pages_done", "pages_failed", "created", "finished", "error")
    return {"type": "ocr.job.finished", "job": {k: job.get(k) for k in fields}}


def notify(job: dict[str, Any], topic_arn: str | None, region: str) -> None:
    """Publish the completion event and call the webhook; failures are logged, never raised."""
    body = json.dumps(event(job), separators=(",", ":")).encode()
    if topic_arn:
        try:
            sns: Any = boto3.client("sns", region_name=region, config=CLIENT_CONFIG)
            sns.publish(TopicArn=topic_arn, Message=body.decode(), Subject="ocr.job.finished",
                        MessageAttributes={"status": {"DataType": "String", "StringValue": job["status"]}})  # fmt: skip
        except Exception as exc:  # an event lost is logged; the job's state is already final
            log.warning("SNS publish for %s failed: %s", job["id"], exc)
    if job.get("webhook_url") and job.get("webhook_secret"):
        call_webhook(job["webhook_url"], job["webhook_secret"], body)


def call_webhook(url: str, secret: str, body: bytes, *, attempts: int = WEBHOOK_ATTEMPTS) -> bool:
    """POST the signed event; retried with backoff (1, 2, 4 s) on errors and non-2xx answers."""
    for attempt in range(attempts):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(secret, timestamp, body)}  # fmt: skip
        try:
            answer = httpx.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S,
                                follow_redirects=False)  # fmt: skip
            if 200 <= answer.status_code < 300:
                return True
            log.warning("webhook %s answered %d (attempt %d)", url, answer.status_code, attempt + 1)
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s (attempt %d)", url, type(exc).__name__, attempt + 1)
        if attempt + 1 < attempts:
            time.sleep(2**attempt)
    return False
