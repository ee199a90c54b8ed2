"""S3, SQS and DynamoDB briefly down while a job runs (a TCP proxy in front of moto's server, cut for a few
seconds under the worker): the job still completes, every page counted once, nothing lost.

The queue allows one receive per message (maxReceiveCount 1): a short outage must be ridden out inside the
attempt (retries with backoff while the message's visibility is extended), not by spending the message's
receives, which would send the page to the DLQ and end the job `partial`."""

import time
import uuid

import boto3
import pytest

from gpu_worker.protocol import JobCreate, split_message
from gpu_worker.protocol.job_table import JobTable, create_resources
from tests.utils import pdfs
from tests.utils.servers import WorkerProcess
from tests.utils.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
PAGES = 5
OUTAGE_S = 8  # longer than a page takes to read: some page finishes its OCR while AWS is away


def test_a_short_aws_outage_mid_job_loses_and_doubles_nothing(local_s3):
    suffix = uuid.uuid4().hex[:8]
    names = create_resources(region="us-west-2", endpoint_url=local_s3.endpoint, table=f"jobs-wf-{suffix}",
                             queue=f"jobs-wf-{suffix}", dlq=f"jobs-wf-dlq-{suffix}", max_receive=1,
                             visibility_s=30)  # fmt: skip
    table = JobTable(names["table"], region="us-west-2", endpoint_url=local_s3.endpoint)
    sqs = boto3.client("sqs", region_name="us-west-2", endpoint_url=local_s3.endpoint)
    owner = f"key-outage-{suffix}"
    key = f"uploads/{owner}/{uuid.uuid4().hex}.pdf"
    data, texts = pdfs.text_document(PAGES)
    local_s3.client().put_object(Bucket=local_s3.bucket, Key=key, Body=data, ContentType="application/pdf")
    job = table.create_job(f"job-{uuid.uuid4().hex}", owner,
                           JobCreate(file=f"s3://{local_s3.bucket}/{key}", task="ocr"), None)  # fmt: skip
    with TcpProxy(("127.0.0.1", local_s3.port)) as proxy:
        worker = WorkerProcess(local_s3, S3_ENDPOINT_URL=proxy.url, AWS_ENDPOINT_URL=proxy.url, MAX_BATCH_SIZE="2",
                               JOBS_QUEUE_URL=names["queue_url"], JOBS_TABLE=names["table"], JOBS_MAX_RECEIVE="1",
                               JOBS_VISIBILITY_S="30", JOBS_POLL_S="1", JOBS_RETRY_DELAY_S="0").start()  # fmt: skip
        try:
            sqs.send_message(QueueUrl=names["queue_url"], MessageBody=split_message(job["id"]))
            deadline = time.monotonic() + 120
            while (table.get_job(job["id"]) or {}).get("pages_done", 0) < 1:
                assert time.monotonic() < deadline, "no page finished"
                time.sleep(0.1)
            proxy.cut()  # pages in flight: their reads, writes and counts fail; so do polls and heartbeats
            cut_at = table.get_job(job["id"])["pages_done"]
            time.sleep(OUTAGE_S)
            proxy.resume()
            while (record := table.get_job(job["id"]))["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, record
                time.sleep(0.5)
        finally:
            worker.stop()
    assert cut_at < PAGES, "the outage came after the job: it tested nothing"
    assert record["status"] == "succeeded", (
        record,
        [(p["page"], p.get("error")) for p in table.pages(job["id"])],
    )
    assert (record["pages_total"], record["pages_done"], record["pages_failed"]) == (PAGES, PAGES, 0)
    assert table.usage(owner, 1)[-1]["pages"] == PAGES  # each page counted once
    markdown = local_s3.client().get_object(Bucket=local_s3.bucket, Key=record["result_keys"]["markdown"])
    text = " ".join(markdown["Body"].read().decode().split()).lower()
    assert all(line.lower() in text for lines in texts for line in lines)
    assert not sqs.receive_message(QueueUrl=names["dlq_url"], WaitTimeSeconds=0).get("Messages")
