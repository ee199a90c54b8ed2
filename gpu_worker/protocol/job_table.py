"""The job record in DynamoDB: jobs, their pages, idempotency keys and usage counters in one table.

Imported by the edge (Lambda) and the worker; torch-free, boto3 only (not re-exported by the package, so
importing the contract stays light). Every counter changes in a conditional transaction with the page's own
status, so a message delivered twice can never count a page twice.

Items (pk, sk):  job#ID, job | job#ID, page#NNNN | idem#OWNER#KEY, idem | usage#OWNER, day#YYYY-MM-DD
Index `by_owner` (owner, created_id) lists a key's jobs newest first.
Index `by_notify` (notify_state, notify_after) is sparse: it holds only finished jobs whose completion event
is not known to be sent. The final status and that mark are one write; the mark goes once the event is out,
so a worker that dies in between leaves it for another worker to send (events are at least once).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from gpu_worker.protocol.errors import Conflict, NotFound
from gpu_worker.protocol.jobs import ACTIVE, IDEMPOTENCY_TTL_S, JobCreate

OWNER_INDEX = "by_owner"
NOTIFY_INDEX = "by_notify"
NOTIFY_DUE = "due"
JOB_TTL_S = 30 * 24 * 3600
CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints (every number we store is a whole number)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def today(now: float | None = None) -> str:
    """The UTC day counters are kept under."""
    return dt.datetime.fromtimestamp(now if now is not None else time.time(), dt.UTC).strftime("%Y-%m-%d")


def created_id(moment: float, job_id: str) -> str:
    """The by_owner sort key: milliseconds, zero-padded to 15 digits, then the id (newest first to the ms).

    Whole seconds left jobs made in the same second in random (uuid) order. Records written before this keep
    their 12-digit seconds: those are the first 12 digits of the 15-digit milliseconds, and `#` sorts before
    any digit, so old and new keys still sort by time together.
    """
    return f"{int(moment * 1000):015d}#{job_id}"


def _conditional_failed(exc: ClientError) -> bool:
    """A condition said no (the item is not in the state we require): an answer, not a fault."""
    code = exc.response.get("Error", {}).get("Code")
    if code == "TransactionCanceledException":  # only when a condition, not a conflict or error, cancelled it
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        return "ConditionalCheckFailed" in reasons and all(
            r in ("ConditionalCheckFailed", "None") for r in reasons
        )
    return code == "ConditionalCheckFailedException"


def _applied(write: Callable[..., Any], **request: Any) -> bool:
    """One conditional write: True when it was applied, False when its condition failed (anything else raises)."""
    try:
        write(**request)
        return True
    except ClientError as exc:
        if _conditional_failed(exc):
            return False
        raise


class JobTable:
    """Blocking boto3 calls (run them in a thread from async code)."""

    def __init__(
        self, table_name: str, *, region: str, endpoint_url: str | None = None, config: Config = CLIENT_CONFIG
    ) -> None:
        """`config`: the caller's timeouts and retries (the edge's are shorter than the worker's)."""
        self.name = table_name
        resource = boto3.resource("dynamodb", region_name=region, endpoint_url=endpoint_url, config=config)
        self.table: Any = resource.Table(table_name)
        self.client: Any = resource.meta.client
        # One page count at a time from this process: pages of one batch finish together and each count
        # touches the same job item; DynamoDB would cancel all but one of such concurrent transactions
        # (TransactionConflict, retried), and a local emulator may even lose one of the additions.
        self._counting = threading.Lock()

    # ---- jobs ------------------------------------------------------------------------------------

    def create_job(
        self, job_id: str, owner: str, body: JobCreate, webhook_secret: str | None
    ) -> dict[str, Any]:
        """Write a new job record (queued) and count it in the key's usage."""
        moment = time.time()
        now = int(moment)
        item = {
            "pk": f"job#{job_id}", "sk": "job", "id": job_id, "owner": owner, "created_id": created_id(moment, job_id),
            "status": "queued", "task": body.task or "markdown", "mode": body.mode or "gundam", "file": body.file,
            "ref_text": body.ref_text, "pages_spec": body.pages, "webhook_url": body.webhook_url,
            "webhook_secret": webhook_secret, "pages_done": 0, "pages_failed": 0, "created": now, "updated": now,
            "ttl": now + JOB_TTL_S,
        }  # fmt: skip
        item = {k: v for k, v in item.items() if v is not None}
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        self.add_usage(owner, jobs=1)
        return item

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job record (strongly consistent), or None."""
        found = self.table.get_item(Key={"pk": f"job#{job_id}", "sk": "job"}, ConsistentRead=True).get("Item")
        return _plain(found) if found else None

    def get_owned(self, job_id: str, owner: str) -> dict[str, Any]:
        """This key's job; another key's job answers exactly like a missing one (404)."""
        job = self.get_job(job_id)
        if job is None or job.get("owner") != owner:
            raise NotFound(f"No job {job_id!r} (or not yours).", code="job_not_found", param="id")
        return job

    def pages(self, job_id: str) -> list[dict[str, Any]]:
        """Every page record of a job, in page order."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :page)",
            "ExpressionAttributeValues": {":pk": f"job#{job_id}", ":page": "page#"},
            "ConsistentRead": True,
        }
        while True:
            answer = self.table.query(**kwargs)
            items += [_plain(i) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return items
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def list_jobs(self, owner: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        """This key's jobs, newest first, starting after job `after`."""
        kwargs: dict[str, Any] = {
            "IndexName": OWNER_INDEX, "KeyConditionExpression": "#o = :o", "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": owner}, "ScanIndexForward": False, "Limit": limit + 1,
        }  # fmt: skip
        if after:
            start = self.get_owned(after, owner)
            kwargs["ExclusiveStartKey"] = {k: start[k] for k in ("pk", "sk", "owner", "created_id")}
        items = [_plain(i) for i in self.table.query(**kwargs).get("Items", [])]
        return items[:limit], len(items) > limit

    def claim_idempotency_key(self, owner: str, key: str, fingerprint: str, job_id: str) -> str | None:
        """Reserve `key` for `job_id`; the job id already holding it (same request), or 409 for another body."""
        now = int(time.time())
        item = {"pk": f"idem#{owner}#{key}", "sk": "idem", "job_id": job_id, "fingerprint": fingerprint,
                "ttl": now + IDEMPOTENCY_TTL_S}  # fmt: skip
        # An expired key (past its ttl, not yet swept by DynamoDB) may be reused.
        if _applied(self.table.put_item, Item=item, ConditionExpression="attribute_not_exists(pk) OR #t < :now",
                    ExpressionAttributeNames={"#t": "ttl"}, ExpressionAttributeValues={":now": now}):  # fmt: skip
            return None
        held = _plain(
            self.table.get_item(Key={"pk": item["pk"], "sk": "idem"}, ConsistentRead=True).get("Item")
        )
        if not held or held.get("fingerprint") != fingerprint:
            raise Conflict(
                "This Idempotency-Key was already used with a different request body.",
                code="idempotency_key_reused",
            )
        return str(held["job_id"])

    def release_idempotency_key(self, owner: str, key: str, job_id: str) -> None:
        """Free `key` if it still names `job_id` (that job was never queued: a retry may start afresh)."""
        _applied(self.table.delete_item, Key={"pk": f"idem#{owner}#{key}", "sk": "idem"},
                 ConditionExpression="job_id = :j", ExpressionAttributeValues={":j": job_id})  # fmt: skip

    def set_pages_total(self, job_id: str, pages: list[int]) -> None:
        """Record the page count and create every page record (queued); safe to repeat."""
        now = int(time.time())
        self.table.update_item(
            Key={"pk": f"job#{job_id}", "sk": "job"},
            UpdateExpression="SET pages_total = :n, #s = :running, updated = :now",
            ConditionExpression="#s = :queued OR #s = :running",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":n": len(pages),
                ":running": "running",
                ":queued": "queued",
                ":now": now,
            },
        )
        # A split run again (its message redelivered) must not reset pages already counted: create only the missing.
        have = {int(record["page"]) for record in self.pages(job_id)}
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for page in (p for p in pages if p not in have):
                batch.put_item(Item={"pk": f"job#{job_id}", "sk": f"page#{page:04d}", "page": page,
                                     "status": "queued", "ttl": now + JOB_TTL_S})  # fmt: skip

    def page(self, job_id: str, page: int) -> dict[str, Any] | None:
        """One page record."""
        found = self.table.get_item(
            Key={"pk": f"job#{job_id}", "sk": f"page#{page:04d}"}, ConsistentRead=True
        )
        return _plain(found.get("Item")) if found.get("Item") else None

    def start_page(self, job_id: str, page: int) -> bool:
        """Mark a page running; False when it is already finished (a duplicate delivery)."""
        return _applied(
            self.table.update_item, Key={"pk": f"job#{job_id}", "sk": f"page#{page:04d}"},
            UpdateExpression="SET #s = :running, updated = :now ADD attempts :one",
            ConditionExpression="#s = :queued OR #s = :running", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":running": "running", ":queued": "queued", ":now": int(time.time()), ":one": 1},
        )  # fmt: skip

    def finish_page(self, job: dict[str, Any], page: int, *, error: str | None = None,
                    prompt_tokens: int = 0, completion_tokens: int = 0, annotated: bool = False) -> bool:  # fmt: skip
        """Count one page as succeeded (or failed) exactly once; False when it was already counted."""
        job_id, now = job["id"], int(time.time())
        status, counter = ("failed", "pages_failed") if error else ("succeeded", "pages_done")
        page_names = {"#s": "status", **({"#e": "error"} if error else {})}
        page_values: dict[str, Any] = {":s": status, ":queued": "queued", ":running": "running", ":now": now,
                                       ":a": annotated, **({":e": error[:1000]} if error else {})}  # fmt: skip
        # The resource's client: plain Python values, serialised by boto3 like the Table calls.
        with self._counting:
            return _applied(
                self.client.transact_write_items,
                TransactItems=[
                    {"Update": {
                        "TableName": self.name, "Key": {"pk": f"job#{job_id}", "sk": f"page#{page:04d}"},
                        "UpdateExpression": "SET #s = :s, updated = :now, annotated = :a" + (", #e = :e" if error else ""),
                        "ConditionExpression": "#s = :queued OR #s = :running",
                        "ExpressionAttributeNames": page_names, "ExpressionAttributeValues": page_values,
                    }},
                    {"Update": {
                        "TableName": self.name, "Key": {"pk": f"job#{job_id}", "sk": "job"},
                        "UpdateExpression": f"SET updated = :now ADD {counter} :one",
                        "ExpressionAttributeValues": {":now": now, ":one": 1},
                    }},
                    {"Update": {
                        "TableName": self.name, "Key": {"pk": f"usage#{job['owner']}", "sk": f"day#{today(now)}"},
                        "UpdateExpression": "ADD pages :one, prompt_tokens :p, completion_tokens :c",
                        "ExpressionAttributeValues": {":one": 1, ":p": prompt_tokens, ":c": completion_tokens},
                    }},
                ],
            )  # fmt: skip

    def complete(
        self, job_id: str, status: str, result: dict[str, str] | None, error: str | None = None,
        *, notify: bool = True,
    ) -> bool:  # fmt: skip
        """Set the final status once (only from queued/running); False when someone else already did.

        With `notify`, the same write marks the completion event as due (see `notified`).
        """
        now = int(time.time())
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": status, ":now": now, ":queued": "queued", ":running": "running"}
        update = "SET #s = :s, updated = :now, finished = :now"
        if notify:
            update += ", notify_state = :due, notify_after = :now"
            values[":due"] = NOTIFY_DUE
        if result is not None:
            update += ", result_keys = :r"
            values[":r"] = result
        if error is not None:
            update += ", #e = :e"
            names["#e"] = "error"
            values[":e"] = error[:1000]
        return _applied(self.table.update_item, Key={"pk": f"job#{job_id}", "sk": "job"}, UpdateExpression=update,
                        ConditionExpression="#s = :queued OR #s = :running",
                        ExpressionAttributeNames=names, ExpressionAttributeValues=values)  # fmt: skip

    def cancel(self, job_id: str, owner: str) -> dict[str, Any]:
        """Cancel this key's job if it is still queued or running; the job as it is now."""
        job = self.get_owned(job_id, owner)
        if job["status"] in ACTIVE:  # the caller asked for it: no completion event
            self.complete(job_id, "cancelled", None, error="Cancelled by the caller.", notify=False)
        return self.get_owned(job_id, owner)

    # ---- completion events (the outbox mark) -----------------------------------------------------

    def notified(self, job_id: str) -> None:
        """The job's completion event is out (or given up after its retries): drop the mark."""
        self.table.update_item(Key={"pk": f"job#{job_id}", "sk": "job"},
                               UpdateExpression="REMOVE notify_state, notify_after")  # fmt: skip

    def notify_due(self, before: int, limit: int = 25) -> list[dict[str, Any]]:
        """Finished jobs whose event has been due since before `before` (epoch s): (id, notify_after) pairs."""
        answer = self.table.query(
            IndexName=NOTIFY_INDEX, Limit=limit,
            KeyConditionExpression="notify_state = :due AND notify_after < :before",
            ExpressionAttributeValues={":due": NOTIFY_DUE, ":before": before},
        )  # fmt: skip
        return [{"id": item["pk"][len("job#") :], "notify_after": int(item["notify_after"])}
                for item in answer.get("Items", [])]  # fmt: skip

    def claim_notify(self, job_id: str, seen_after: int, now: int | None = None) -> bool:
        """Take over sending an overdue event: only one worker wins (the mark moves to `now`)."""
        return _applied(
            self.table.update_item, Key={"pk": f"job#{job_id}", "sk": "job"}, UpdateExpression="SET notify_after = :now",
            ConditionExpression="notify_state = :due AND notify_after = :seen",
            ExpressionAttributeValues={":now": int(time.time()) if now is None else now, ":seen": seen_after,
                                       ":due": NOTIFY_DUE},
        )  # fmt: skip

    # ---- usage -----------------------------------------------------------------------------------

    def add_usage(self, owner: str, **counts: int) -> None:
        """Add to today's counters of this key (atomic ADD)."""
        names = {f"#{k}": k for k in counts}
        values = {f":{k}": v for k, v in counts.items()}
        self.table.update_item(
            Key={"pk": f"usage#{owner}", "sk": f"day#{today()}"},
            UpdateExpression="ADD " + ", ".join(f"#{k} :{k}" for k in counts),
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        )  # fmt: skip

    def usage(self, owner: str, days: int) -> list[dict[str, Any]]:
        """The last `days` days of this key's counters, oldest first, days without use included as zeros."""
        end = dt.datetime.now(dt.UTC).date()
        dates = [(end - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
        answer = self.table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues={
                ":pk": f"usage#{owner}",
                ":a": f"day#{dates[0]}",
                ":b": f"day#{dates[-1]}",
            },
        )
        found = {item["sk"][4:]: _plain(item) for item in answer.get("Items", [])}
        fields = ("requests", "pages", "prompt_tokens", "completion_tokens", "jobs")
        return [{"date": d, **{f: int(found.get(d, {}).get(f, 0)) for f in fields}} for d in dates]


def create_resources(*, region: str, endpoint_url: str | None, table: str, queue: str, dlq: str,
                     max_receive: int = 3, visibility_s: int = 120, **credentials: str) -> dict[str, str]:  # fmt: skip
    """Create the table, the queue and its DLQ (the local stack and tests; Terraform does this on AWS)."""
    dynamodb = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG,
                            **credentials)  # fmt: skip
    keys = [("pk", "S"), ("sk", "S"), ("owner", "S"), ("created_id", "S"), ("notify_state", "S"),
            ("notify_after", "N")]  # fmt: skip
    try:
        dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": OWNER_INDEX, "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"},
                              {"AttributeName": "created_id", "KeyType": "RANGE"}],
            }, {
                "IndexName": NOTIFY_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
                "KeySchema": [{"AttributeName": "notify_state", "KeyType": "HASH"},
                              {"AttributeName": "notify_after", "KeyType": "RANGE"}],
            }],
        )  # fmt: skip
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    sqs = boto3.client(
        "sqs", region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG, **credentials
    )
    dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "{max_receive}"}}'
    queue_url = sqs.create_queue(
        QueueName=queue, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility_s)}
    )["QueueUrl"]
    return {"table": table, "queue_url": queue_url, "dlq_url": dlq_url}
