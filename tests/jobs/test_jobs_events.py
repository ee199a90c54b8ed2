"""The completion event: finishing a job publishes one SNS message with the job's id and status (moto's SNS
delivering to an SQS subscription on the same server), however often its last page is delivered."""

import json
import os
import signal
import time
import uuid

import boto3
import pytest

from gpu_worker.protocol import JobCreate, page_message, split_message
from tests.utils import pdfs
from tests.utils.servers import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topic(jobs_aws):
    """A topic with an SQS queue subscribed to it: what was published can be read back."""
    sns = boto3.client("sns", region_name="us-west-2", endpoint_url=jobs_aws.endpoint)
    arn = sns.create_topic(Name=f"jobs-events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    inbox = jobs_aws.sqs.create_queue(QueueName=f"jobs-events-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    inbox_arn = jobs_aws.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=inbox_arn)
    return arn, inbox


def received(jobs_aws, inbox: str, wait_s: float) -> list[dict]:
    """Every SNS envelope that reached the inbox within `wait_s` (deleted as read)."""
    envelopes, deadline = [], time.monotonic() + wait_s
    while time.monotonic() < deadline:
        answer = jobs_aws.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            envelopes.append(json.loads(message["Body"]))
            jobs_aws.sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
    return envelopes


def one_page_job(local_s3, table, owner: str) -> dict:
    """A queued job record for a one-page PDF uploaded under `owner` (its split message not sent yet)."""
    key = f"uploads/{owner}/{uuid.uuid4().hex}.pdf"
    local_s3.client().put_object(Bucket=local_s3.bucket, Key=key, Body=pdfs.text_document(1)[0],
                                 ContentType="application/pdf")  # fmt: skip
    return table.create_job(f"job-{uuid.uuid4().hex}", owner,
                            JobCreate(file=f"s3://{local_s3.bucket}/{key}", task="ocr"), None)  # fmt: skip


def finished(table, job_id: str, timeout: float = 90) -> dict:
    """The job's record once it is no longer queued or running."""
    deadline = time.monotonic() + timeout
    while (record := table.get_job(job_id))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, record
        time.sleep(0.2)
    return record


def test_a_finished_job_publishes_one_completion_event(local_s3, jobs_aws, topic):
    arn, inbox = topic
    table = jobs_aws.table
    job = one_page_job(local_s3, table, "key-events-owner-1")
    queue = jobs_aws.names["queue_url"]
    worker = WorkerProcess(local_s3, **jobs_aws.worker_env(JOBS_TOPIC_ARN=arn)).start()
    try:
        jobs_aws.sqs.send_message(QueueUrl=queue, MessageBody=split_message(job["id"]))
        record = finished(table, job["id"])
        assert record["status"] == "succeeded"
        for _ in range(2):  # the last page delivered again: counted once, announced once
            jobs_aws.sqs.send_message(QueueUrl=queue, MessageBody=page_message(job["id"], 1))
        envelopes = received(jobs_aws, inbox, wait_s=6)
    finally:
        worker.stop()
    assert len(envelopes) == 1, envelopes
    envelope = envelopes[0]
    assert envelope["TopicArn"] == arn and envelope["Subject"] == "ocr.job.finished"
    assert envelope["MessageAttributes"]["status"]["Value"] == "succeeded"
    event = json.loads(envelope["Message"])
    assert event["type"] == "ocr.job.finished"
    assert event["job"]["id"] == job["id"] and event["job"]["status"] == "succeeded"
    assert (event["job"]["pages_total"], event["job"]["pages_done"], event["job"]["pages_failed"]) == (
        1,
        1,
        0,
    )


def test_a_worker_killed_before_the_event_left_does_not_lose_it(local_s3, jobs_aws, topic):
    """The final status is written, the SNS publish hangs (a paused proxy in front of SNS only), the worker is
    killed: the next worker finds the event still owed and sends it, once."""
    from tests.utils.tcp_proxy import TcpProxy

    arn, inbox = topic
    table = jobs_aws.table
    job = one_page_job(local_s3, table, "key-events-owner-2")
    sns_proxy = TcpProxy(("127.0.0.1", local_s3.port)).start()
    sns_proxy.pause()
    env = jobs_aws.worker_env(JOBS_TOPIC_ARN=arn, JOBS_EVENT_RETRY_S="2")
    first = WorkerProcess(local_s3, AWS_ENDPOINT_URL_SNS=sns_proxy.url, **env).start()
    second = None
    try:
        jobs_aws.sqs.send_message(QueueUrl=jobs_aws.names["queue_url"], MessageBody=split_message(job["id"]))
        record = finished(table, job["id"])
        assert record["status"] == "succeeded" and record.get("notify_state") == "due"
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)  # its publish is still hanging in the proxy
        first.process.wait(timeout=30)
        sns_proxy.cut()  # what the dead worker had sent never arrives
        assert received(jobs_aws, inbox, wait_s=3) == []
        second = WorkerProcess(local_s3, **env).start()
        envelopes = received(jobs_aws, inbox, wait_s=12)
        assert [json.loads(e["Message"])["job"]["id"] for e in envelopes] == [job["id"]]
        assert "notify_state" not in table.get_job(job["id"])  # sent: no later sweep sends it again
    finally:
        for worker in (second, first):
            if worker is not None:
                worker.stop()
        sns_proxy.stop()
