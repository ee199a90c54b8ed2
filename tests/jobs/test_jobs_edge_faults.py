"""The edge's jobs routes when DynamoDB or SQS hang or refuse (a TCP proxy in front of moto's server): a 503 with
Retry-After in the OpenAI error shape within the deadline, never a 202 for a job not written, never a record
left `queued` without its split message."""

import json
import time

import httpx
import pytest

from tests.jobs.conftest import KEYS, EdgeCaller
from tests.utils import pdfs
from tests.utils.servers import EdgeProcess
from tests.utils.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def proxies(local_s3):
    upstream = ("127.0.0.1", local_s3.port)
    dynamodb, sqs = TcpProxy(upstream).start(), TcpProxy(upstream).start()
    yield dynamodb, sqs
    dynamodb.stop()
    sqs.stop()


@pytest.fixture(scope="module")
def edge(local_s3, jobs_aws, proxies):
    dynamodb, sqs = proxies
    # No worker: the queue keeps every split message, so the test can match messages to records.
    process = EdgeProcess(local_s3, "http://127.0.0.1:9", ",".join(KEYS), **jobs_aws.edge_env(),
                          AWS_ENDPOINT_URL_DYNAMODB=dynamodb.url, AWS_ENDPOINT_URL_SQS=sqs.url,
                          JOBS_DEADLINE_S=str(DEADLINE_S)).start()  # fmt: skip
    yield process
    process.stop()


@pytest.fixture(scope="module")
def alice(edge):
    return EdgeCaller(edge.url, KEYS[0])


@pytest.fixture(scope="module")
def upload(alice):
    return alice.upload(pdfs.text_document(1)[0])


def queued_splits(jobs_aws) -> set[str]:
    """Job ids of the split messages sent (read and made visible again at once; each read counts as a receive,
    so with the module's maxReceiveCount of 2 a message read often moves to the DLQ: look there too)."""
    seen: set[str] = set()
    for url in (jobs_aws.names["queue_url"], jobs_aws.names["dlq_url"]):
        for _ in range(3):
            answer = jobs_aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            seen |= {json.loads(m["Body"])["job_id"] for m in answer.get("Messages", [])}
    return seen


def owned_jobs(jobs_aws, owner_key: str) -> list[dict]:
    from edge_api.keys import key_id

    return jobs_aws.table.list_jobs(key_id(owner_key), 100, None)[0]


def assert_no_record_without_its_message(jobs_aws) -> None:
    splits = queued_splits(jobs_aws)
    for job in owned_jobs(jobs_aws, KEYS[0]):
        assert job["status"] == "failed" or job["id"] in splits, job


def assert_503(answer: httpx.Response, started: float) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"].isdigit()
    error = answer.json()["error"]
    assert error["code"] == "jobs_unavailable" and error["type"] and "retry" in error["message"]
    assert time.monotonic() - started < DEADLINE_S + 1.5  # the deadline, not botocore's 30 s of retries


def test_a_hung_table_is_a_quick_503_and_nothing_half_written(edge, alice, upload, proxies, jobs_aws):
    dynamodb, _ = proxies
    job = alice.create({"file": upload}).json()
    assert alice.get(job["id"]).status_code == 200
    dynamodb.pause()
    try:
        for call in (lambda: alice.get(job["id"]), lambda: alice.create({"file": upload}, "hung-1"),
                     lambda: httpx.get(alice.url + "/v1/usage", headers=alice.headers, timeout=30),
                     lambda: httpx.get(alice.url + "/v1/jobs", headers=alice.headers, timeout=30)):  # fmt: skip
            started = time.monotonic()
            assert_503(call(), started)
        health = httpx.get(edge.url + "/health", timeout=2)  # the pool is the jobs routes' own
        assert health.status_code == 200
    finally:
        dynamodb.resume()
    time.sleep(3)  # writes held by the pause land now
    again = alice.create({"file": upload}, "hung-1")  # the same key: one job, queued with its message
    assert again.status_code in (200, 202), again.text
    assert again.json()["id"] in queued_splits(jobs_aws)
    assert alice.create({"file": upload}, "hung-1").json()["id"] == again.json()["id"]
    assert_no_record_without_its_message(jobs_aws)


def test_a_refusing_table_writes_nothing(alice, upload, proxies, jobs_aws):
    dynamodb, _ = proxies
    before = len(owned_jobs(jobs_aws, KEYS[0]))
    dynamodb.cut()
    try:
        started = time.monotonic()
        assert_503(alice.create({"file": upload}), started)
    finally:
        dynamodb.resume()
    assert len(owned_jobs(jobs_aws, KEYS[0])) == before


def test_a_queue_down_after_the_record_is_compensated_and_a_retry_starts_afresh(
    alice, upload, proxies, jobs_aws
):
    _, sqs = proxies
    before = {job["id"] for job in owned_jobs(jobs_aws, KEYS[0])}
    sqs.cut()
    try:
        started = time.monotonic()
        assert_503(alice.create({"file": upload}, "queue-down-1"), started)
    finally:
        sqs.resume()
    orphans = [job for job in owned_jobs(jobs_aws, KEYS[0]) if job["id"] not in before]
    assert len(orphans) == 1 and orphans[0]["status"] == "failed", orphans  # written, then compensated
    assert "could not be queued" in orphans[0]["error"]
    retried = alice.create({"file": upload}, "queue-down-1")  # the key was released: a fresh, queued job
    assert retried.status_code == 202, retried.text
    assert retried.json()["id"] != orphans[0]["id"] and retried.json()["id"] in queued_splits(jobs_aws)
    assert_no_record_without_its_message(jobs_aws)
