"""The jobs stack on loopback: moto's server (S3, SQS, DynamoDB on one port), a worker consuming the queue, the edge."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import httpx
import pytest

from gpu_worker.protocol.job_table import JobTable, create_resources
from tests.utils.servers import AWS_ENV

KEYS = ("sk-local-jobs-alice-01", "sk-local-jobs-bob-02")


class JobsAws:
    """The table, queue and DLQ created on the session's local AWS endpoint, with unique names."""

    def __init__(self, local_s3: Any) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.endpoint = local_s3.endpoint
        self.names = create_resources(region="us-west-2", endpoint_url=self.endpoint, table=f"jobs-{suffix}",
                                      queue=f"jobs-{suffix}", dlq=f"jobs-dlq-{suffix}", max_receive=2,
                                      visibility_s=10)  # fmt: skip
        self.table = JobTable(self.names["table"], region="us-west-2", endpoint_url=self.endpoint)
        self.sqs: Any = boto3.client("sqs", region_name="us-west-2", endpoint_url=self.endpoint)

    def worker_env(self, **extra: str) -> dict[str, str]:
        """What a worker needs to consume this queue."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "JOBS_QUEUE_URL": self.names["queue_url"],
                "JOBS_TABLE": self.names["table"], "JOBS_MAX_RECEIVE": "2", "JOBS_VISIBILITY_S": "10",
                "JOBS_POLL_S": "1", "JOBS_RETRY_DELAY_S": "0", **extra}  # fmt: skip

    def edge_env(self) -> dict[str, str]:
        """What the edge needs for /v1/jobs."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "JOBS_QUEUE_URL": self.names["queue_url"],
                "JOBS_TABLE": self.names["table"], "ALLOW_HTTP_WEBHOOKS": "true"}  # fmt: skip

    def dlq_messages(self) -> list[dict[str, Any]]:
        """What sits in the DLQ now (received and made visible again at once)."""
        answer = self.sqs.receive_message(QueueUrl=self.names["dlq_url"], MaxNumberOfMessages=10,
                                          VisibilityTimeout=0, WaitTimeSeconds=1)  # fmt: skip
        return answer.get("Messages", [])


@pytest.fixture(scope="module")
def jobs_aws(local_s3):
    for key, value in AWS_ENV.items():
        import os

        os.environ.setdefault(key, value)
    return JobsAws(local_s3)


class EdgeCaller:
    """The edge's jobs API as one key sees it."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {key}"}

    def upload(self, data: bytes, content_type: str = "application/pdf") -> str:
        """Upload through the presigned POST; the `s3://` reference."""
        grant = httpx.post(self.url + "/v1/uploads", json={"content_type": content_type, "size": len(data)},
                           headers=self.headers, timeout=30)  # fmt: skip
        assert grant.status_code == 200, grant.text
        body = grant.json()
        posted = httpx.post(
            body["url"], data=body["fields"], files={"file": ("doc", data, content_type)}, timeout=30
        )
        assert posted.status_code in (200, 201, 204), posted.text
        return str(body["image_url"])

    def create(self, body: dict[str, Any], idempotency_key: str | None = None) -> httpx.Response:
        headers = {**self.headers, **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
        return httpx.post(self.url + "/v1/jobs", json=body, headers=headers, timeout=30)

    def get(self, job_id: str) -> httpx.Response:
        return httpx.get(f"{self.url}/v1/jobs/{job_id}", headers=self.headers, timeout=30)

    def cancel(self, job_id: str) -> httpx.Response:
        return httpx.delete(f"{self.url}/v1/jobs/{job_id}", headers=self.headers, timeout=30)

    def wait(self, job_id: str, timeout: float = 300, seen: list[int] | None = None) -> dict[str, Any]:
        """Poll until the job is finished; `seen` collects pages_done as it climbs."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id).json()
            if seen is not None:
                seen.append(job["pages_done"])
            if job["status"] not in ("queued", "running"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {job['status']} ({job['pages_done']}/{job['pages_total']})"
                )
            time.sleep(0.5)
