"""The end of a job: whoever counts the last page assembles result.md and result.json, sets the final status,
publishes the completion event (SNS) and calls the webhook (HMAC-SHA256 signed, retried with backoff).

Assembly is idempotent (the same files from the same page results), so two workers finishing at once, or a
redelivered message after a crash mid-assembly, write the same thing; only the one whose conditional status
update wins sends the events.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
WEBHOOK_DEADLINE_S = 10.0  # one attempt, connect to status line, wall clock
WEBHOOK_BACKOFF_S = 1.0  # then 2, 4 s
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[Any]]
Notify = Callable[[dict[str, Any]], Any]


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


def maybe_finish(table: JobTable, store: ResultStore, job_id: str, notify_later: Notify) -> bool:
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
    notify_later(table.get_job(job_id) or job)  # after the status is written, off this thread
    return True


def fail_job(table: JobTable, job: dict[str, Any], error: str, notify_later: Notify) -> None:
    """End a job that cannot be read at all (encrypted, corrupt, too long...) with its reason."""
    if table.complete(job["id"], "failed", None, error):
        notify_later(table.get_job(job["id"]) or job)


def event(job: dict[str, Any]) -> dict[str, Any]:
    """The completion event (SNS message and webhook body)."""
    fields = ("id", "status", "pages_total", "pages_done", "pages_failed", "created", "finished", "error")
    return {"type": "ocr.job.finished", "job": {k: job.get(k) for k in fields}}


class Notifier:
    """Sends completion events on its own small pool, so a slow webhook never holds a page's slot.

    With a `table`, a job's outbox mark is dropped once its events are out; a worker that dies first leaves
    the mark, and another worker's sweep sends the events again (`JobConsumer._sweep_events`).
    """

    def __init__(self, topic_arn: str | None, region: str, *, allow_loopback: bool = False, workers: int = 2,
                 table: JobTable | None = None):  # fmt: skip
        self.topic_arn, self.region, self.allow_loopback = topic_arn, region, allow_loopback
        self.table = table
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")

    def __call__(self, job: dict[str, Any]) -> Future[None]:
        """Queue the job's events; returns at once (the job's final status is already written)."""
        return self.pool.submit(self._send, job)

    def _send(self, job: dict[str, Any]) -> None:
        sent = notify(job, self.topic_arn, self.region, allow_loopback=self.allow_loopback)
        if sent and self.table is not None:
            try:
                self.table.notified(job["id"])
            except Exception as exc:  # the mark stays: the event may be sent once more by a sweep
                log.warning("could not mark the event of %s as sent: %s", job["id"], exc)

    def shutdown(self) -> None:
        """Stop taking events; those queued still run (the process may exit before they end)."""
        self.pool.shutdown(wait=False)


@functools.cache
def _sns(region: str) -> Any:
    """One SNS client per region for the process (building one costs tens of ms; clients are thread-safe)."""
    return boto3.client("sns", region_name=region, config=CLIENT_CONFIG)


def notify(job: dict[str, Any], topic_arn: str | None, region: str, *, allow_loopback: bool = False) -> bool:
    """Publish the completion event and call the webhook; failures are logged, never raised.

    False when the SNS publish failed (worth sending again later); the webhook has its own retries, and a
    receiver that refused all of them is not called again.
    """
    body = json.dumps(event(job), separators=(",", ":")).encode()
    published = True
    if topic_arn:
        try:
            _sns(region).publish(TopicArn=topic_arn, Message=body.decode(), Subject="ocr.job.finished",
                        MessageAttributes={"status": {"DataType": "String", "StringValue": job["status"]}})  # fmt: skip
        except Exception as exc:  # the job's state is already final; its outbox mark stays for a later sweep
            log.warning("SNS publish for %s failed: %s", job["id"], exc)
            published = False
    if job.get("webhook_url") and job.get("webhook_secret"):
        try:
            call_webhook(job["webhook_url"], job["webhook_secret"], body, attempts=WEBHOOK_ATTEMPTS,
                         allow_loopback=allow_loopback, deadline_s=WEBHOOK_DEADLINE_S, backoff_s=WEBHOOK_BACKOFF_S)  # fmt: skip
        except (
            Exception
        ):  # never raised into the pool: logged with the job, not the URL (it may carry tokens)
            log.exception("webhook for %s failed", job["id"])
    return published


class WebhookRefused(Exception):
    """The webhook's host is not a public address (or cannot be resolved)."""


def address_allowed(address: IPAddress, *, allow_loopback: bool = False) -> bool:
    """A public unicast address; loopback only when a local test setting allows it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    if address.is_loopback:
        return allow_loopback
    bad = (address.is_private or address.is_link_local or address.is_reserved or address.is_multicast
           or address.is_unspecified)  # fmt: skip
    return address.is_global and not bad


# Lookups run here so that one can be abandoned at its deadline: getaddrinfo itself has no timeout, and
# a receiver's name server may answer as slowly as it likes. Few threads: stuck lookups cannot pile up.
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def check_webhook(
    url: str,
    *,
    allow_loopback: bool = False,
    resolver: Resolver = socket.getaddrinfo,
    timeout_s: float | None = None,
) -> str:
    """Resolve the webhook's host once (within `timeout_s`); the address to connect to, refusing if ANY
    answer is not public."""
    parts = httpx.URL(url)
    if parts.scheme not in ("http", "https") or not parts.host:
        raise WebhookRefused("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        lookup = _LOOKUPS.submit(resolver, parts.host, port, 0, socket.SOCK_STREAM)
        answers = lookup.result(timeout=timeout_s)
    except TimeoutError:
        lookup.cancel()
        raise WebhookRefused(f"the name did not resolve within {timeout_s:g} s") from None
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"cannot resolve: {exc}") from exc
    addresses = [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]
    if not addresses:
        raise WebhookRefused("no address")
    for address in addresses:
        if not address_allowed(address, allow_loopback=allow_loopback):
            raise WebhookRefused(f"resolves to a non-public address ({address})")
    return str(addresses[0])


async def _post_once(url: str, address: str, headers: dict[str, str], body: bytes, deadline_s: float) -> int:
    """One POST to the checked address (Host and SNI stay the original host); its status, within the deadline."""
    parts = httpx.URL(url)
    pinned = parts.copy_with(host=address)  # connect here: a second lookup could answer differently
    default_port = 443 if parts.scheme == "https" else 80
    host_header = parts.host if parts.port in (None, default_port) else f"{parts.host}:{parts.port}"
    extensions = {"sni_hostname": parts.host} if parts.scheme == "https" else {}
    timeout = httpx.Timeout(deadline_s)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        request = client.build_request("POST", pinned, content=body, extensions=extensions,
                                       headers={**headers, "Host": host_header})  # fmt: skip
        # The per-read timeout alone lets a receiver trickle a byte at a time for ever: the whole attempt,
        # up to the status line (the body is never read), must fit in deadline_s.
        response = await asyncio.wait_for(client.send(request, stream=True), deadline_s)
        await response.aclose()
        return response.status_code


def call_webhook(
    url: str,
    secret: str,
    body: bytes,
    *,
    attempts: int = WEBHOOK_ATTEMPTS,
    allow_loopback: bool = False,
    deadline_s: float = WEBHOOK_DEADLINE_S,
    resolver: Resolver = socket.getaddrinfo,
    backoff_s: float = 1.0,
) -> bool:
    """POST the signed event to a public address; retried with backoff (1, 2, 4 s) on errors and non-2xx."""
    host = httpx.URL(url).host  # logged instead of the URL: its query may carry a token
    for attempt in range(attempts):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(secret, timestamp, body)}  # fmt: skip
        try:
            # Checked before every attempt: the name may point elsewhere by the retry. The lookup and the
            # POST share the attempt's deadline.
            started = time.monotonic()
            address = check_webhook(
                url, allow_loopback=allow_loopback, resolver=resolver, timeout_s=deadline_s
            )
            left = max(deadline_s - (time.monotonic() - started), 0.1)
            status = asyncio.run(_post_once(url, address, headers, body, left))
            if 200 <= status < 300:
                return True
            log.warning("webhook to %s answered %d (attempt %d)", host, status, attempt + 1)
        except WebhookRefused as exc:
            log.warning("webhook to %s refused: %s (attempt %d)", host, exc, attempt + 1)
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            log.warning("webhook to %s failed: %s (attempt %d)", host, type(exc).__name__, attempt + 1)
        if attempt + 1 < attempts:
            time.sleep(backoff_s * 2**attempt)
    return False
