"""The DLQ is drained by the workers: a page whose message got there uncounted (its worker killed on the last
attempt) is counted failed once, and its job ends `partial` instead of staying `running` forever."""

import json
import time
import uuid

import pytest

from gpu_worker.protocol import JobCreate, page_message, page_result_prefix
from tests.utils.servers import WorkerProcess

pytestmark = pytest.mark.integration


def test_an_uncounted_page_in_the_dlq_is_counted_failed_once_and_the_job_ends_partial(local_s3, jobs_aws):
    table, s3, owner = jobs_aws.table, local_s3.client(), "key-dlq-owner-01"
    job = table.create_job(f"job-{uuid.uuid4().hex}", owner,
                           JobCreate(file=f"s3://{local_s3.bucket}/uploads/{owner}/a.pdf", task="ocr"), None)  # fmt: skip
    table.set_pages_total(job["id"], [1, 2])
    # Page 1 was read and counted; page 2's message went to the DLQ before anyone counted it.
    stored = {"page": 1, "text": "Page one was read", "raw": "Page one was read", "boxes": []}
    s3.put_object(Bucket=local_s3.bucket, Key=page_result_prefix(job["id"], 1) + "result.json",
                  Body=json.dumps(stored).encode())  # fmt: skip
    assert table.finish_page(job, 1)
    for _ in range(2):  # the same dead message twice: still one failed page
        jobs_aws.sqs.send_message(QueueUrl=jobs_aws.names["dlq_url"], MessageBody=page_message(job["id"], 2))
    worker = WorkerProcess(local_s3, **jobs_aws.worker_env()).start()
    try:
        deadline = time.monotonic() + 60
        while (record := table.get_job(job["id"]))["status"] == "running":
            assert time.monotonic() < deadline, f"the job is still running: {record}"
            time.sleep(0.5)
        assert record["status"] == "partial", record
        assert (record["pages_done"], record["pages_failed"]) == (1, 1)
        page = table.page(job["id"], 2)
        assert page["status"] == "failed" and "dead-letter queue" in page["error"]
        markdown = (
            s3.get_object(Bucket=local_s3.bucket, Key=f"jobs/{job['id']}/result.md")["Body"].read().decode()
        )
        assert "Page one was read" in markdown and "<!-- page 2 failed: The page gave up" in markdown
        while jobs_aws.dlq_messages():  # both copies settled and deleted
            assert time.monotonic() < deadline, "the DLQ was not drained"
            time.sleep(1)
        time.sleep(2)
        again = table.get_job(job["id"])
        assert (again["pages_failed"], again["finished"]) == (1, record["finished"])
        assert table.usage(owner, 1)[-1]["pages"] == 2  # page 1 once, page 2 once
    finally:
        worker.stop()
