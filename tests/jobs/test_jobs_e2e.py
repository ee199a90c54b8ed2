"""Jobs end to end: the edge and a worker as real processes, moto's server for S3, SQS and DynamoDB on one port.

Upload a PDF, POST /v1/jobs, watch pages_done climb, read result.md; idempotency, other keys, cancel,
usage, hostile documents and a duplicate delivery.
"""

import json
import time

import httpx
import pytest

from gpu_worker.job_output import verify
from gpu_worker.protocol import page_message
from tests.jobs.conftest import KEYS, EdgeCaller
from tests.utils import pdfs
from tests.utils.requests import data_url
from tests.utils.servers import EdgeProcess, WorkerProcess
from tests.utils.webhooks import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(local_s3, jobs_aws):
    # The webhook test's receiver is on loopback: allowed only by this local-test setting.
    process = WorkerProcess(
        local_s3, MAX_BATCH_SIZE="4", ALLOW_LOOPBACK_WEBHOOKS="true", **jobs_aws.worker_env()
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def edge(local_s3, jobs_aws, worker):
    process = EdgeProcess(local_s3, worker.url, ",".join(KEYS), **jobs_aws.edge_env()).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def alice(edge):
    return EdgeCaller(edge.url, KEYS[0])


@pytest.fixture(scope="module")
def bob(edge):
    return EdgeCaller(edge.url, KEYS[1])


@pytest.fixture(scope="module")
def twenty(alice):
    data, texts = pdfs.text_document(20)
    return alice.upload(data), texts


def squash(text: str) -> str:
    return " ".join(text.split()).lower()


def test_a_twenty_page_job_runs_end_to_end(alice, twenty, local_s3):
    file, texts = twenty
    created = alice.create({"file": file, "task": "ocr"}, idempotency_key="twenty-1")
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["object"] == "ocr.job" and job["status"] == "queued" and job["pages_total"] is None
    seen: list[int] = []
    final = alice.wait(job["id"], seen=seen)
    assert final["status"] == "succeeded", final
    assert final["pages_total"] == 20 and final["pages_done"] == 20 and final["pages_failed"] == 0
    assert seen == sorted(seen) and len(set(seen)) > 2  # pages_done climbed while we watched
    markdown = httpx.get(final["result"]["markdown"]["url"], timeout=10).text
    positions = []
    for number, lines in enumerate(texts, start=1):
        if number > 1:
            positions.append(markdown.index(f"<!-- page {number} -->"))
        for line in lines:
            assert line.lower() in squash(markdown), line
    assert positions == sorted(positions)
    pages = final["pages"]
    assert [p["page"] for p in pages] == list(range(1, 21)) and {p["status"] for p in pages} == {"succeeded"}
    page_seven = httpx.get(pages[6]["result"]["url"], timeout=10).json()
    assert texts[6][1].lower() in squash(page_seven["text"])
    assert page_seven["image"] == {"width": 1224, "height": 1584}  # the viewer needs no ranged GET of the PNG
    assert local_s3.object_keys(f"jobs/{job['id']}/pages/0001.png")


def test_the_same_idempotency_key_returns_the_same_job(alice, twenty):
    file, _ = twenty
    first = alice.create({"file": file, "task": "ocr", "pages": "1-2"}, idempotency_key="retry-abc")
    again = alice.create({"file": file, "task": "ocr", "pages": "1-2"}, idempotency_key="retry-abc")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = alice.create({"file": file, "task": "markdown", "pages": "1-2"}, idempotency_key="retry-abc")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_another_key_can_neither_read_nor_cancel_nor_use_the_upload(alice, bob, twenty):
    file, _ = twenty
    job = alice.create({"file": file, "pages": "1"}).json()
    for answer in (bob.get(job["id"]), bob.cancel(job["id"])):
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "job_not_found"
    stolen = bob.create({"file": file})
    assert stolen.status_code == 403
    assert bob.get("job-" + "0" * 32).status_code == 404 and bob.get("../etc").status_code == 404
    listed = httpx.get(bob.url + "/v1/jobs", headers=bob.headers, timeout=10).json()
    assert all(item["id"] != job["id"] for item in listed["data"])


def test_listing_is_newest_first_and_pages_through(alice, twenty):
    file, _ = twenty
    ids = [alice.create({"file": file, "pages": "1"}).json()["id"] for _ in range(3)]
    time.sleep(1.1)
    newest = alice.create({"file": file, "pages": "2"}).json()["id"]
    first = httpx.get(alice.url + "/v1/jobs?limit=2", headers=alice.headers, timeout=10).json()
    assert first["data"][0]["id"] == newest and first["has_more"] is True
    after = first["data"][-1]["id"]
    rest = httpx.get(f"{alice.url}/v1/jobs?limit=100&after={after}", headers=alice.headers, timeout=10).json()
    listed = [item["id"] for item in first["data"] + rest["data"]]
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))


def test_cancel_stops_the_pages_not_started(alice):
    data, _ = pdfs.text_document(12)
    job = alice.create({"file": alice.upload(data), "task": "ocr"}).json()
    cancelled = alice.cancel(job["id"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(4)
    after = alice.get(job["id"]).json()
    assert after["status"] == "cancelled" and after["pages_done"] < 12
    assert alice.cancel(job["id"]).json()["status"] == "cancelled"  # cancelling twice is harmless


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (pdfs.encrypted(pdfs.text_document(1)[0]), "encrypted"),
        (pdfs.zero_pages(), "could not be read"),
        (pdfs.text_document(3)[0][:500], "could not be read"),
        (pdfs.build_pdf([pdfs.Page(lines=["x"])], declared_count=10_000), "limit"),
    ],
    ids=["encrypted", "zero-pages", "truncated", "10000-declared"],
)
def test_hostile_documents_end_as_failed_jobs_with_a_reason(alice, data, reason):
    job = alice.create({"file": alice.upload(data)}).json()
    final = alice.wait(job["id"], timeout=60)
    assert final["status"] == "failed" and reason in final["error"], final


def test_a_page_past_the_end_fails_the_job_with_a_reason(alice, twenty):
    final = alice.wait(alice.create({"file": twenty[0], "pages": "19-25"}).json()["id"], timeout=60)
    assert final["status"] == "failed" and "page 21 does not exist" in final["error"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"file": "s3://ocr-results/uploads/key-x/abc"}, 403, "invalid_file_reference"),
        ({"file": "https://example.com/a.pdf"}, 400, "invalid_file_reference"),
        ({"file": "data:application/pdf;base64,JVBERi0xLjQK"}, 400, "invalid_file_reference"),
        ({"file": "FILE", "pages": "0"}, 400, "invalid_pages"),
        ({"file": "FILE", "pages": "1-100000"}, 413, "too_many_pages"),
        ({"file": "FILE", "task": "locate"}, 400, "missing_ref_text"),
        ({"file": "FILE", "webhook_url": "ftp://x/y"}, 400, "invalid_webhook_url"),
        ({"file": "FILE", "model": "gpt-4o"}, 404, "model_not_found"),
        ({"file": "FILE", "surprise": 1}, 422, "invalid_schema"),
    ],
)
def test_bad_job_requests_are_clear_4xx(alice, twenty, body, status, code):
    body = {k: (twenty[0] if v == "FILE" else v) for k, v in body.items()}
    answer = alice.create(body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_missing_upload_is_400(alice):
    owner_prefix = alice.upload(pdfs.text_document(1)[0]).rsplit("/", 1)[0]
    answer = alice.create({"file": owner_prefix + "/never-uploaded.pdf"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "file_not_found"


def test_a_duplicate_page_message_is_not_counted_twice(alice, jobs_aws):
    data, _ = pdfs.text_document(2)
    final = alice.wait(alice.create({"file": alice.upload(data), "task": "ocr"}).json()["id"], timeout=120)
    assert final["status"] == "succeeded" and final["pages_done"] == 2
    for _ in range(2):
        jobs_aws.sqs.send_message(
            QueueUrl=jobs_aws.names["queue_url"], MessageBody=page_message(final["id"], 1)
        )
    time.sleep(4)
    again = alice.get(final["id"]).json()
    assert (
        again["pages_done"] == 2 and again["status"] == "succeeded" and again["finished"] == final["finished"]
    )


def test_usage_counts_pages_tokens_and_jobs(alice):
    answer = httpx.get(alice.url + "/v1/usage?days=3", headers=alice.headers, timeout=10)
    assert answer.status_code == 200
    days = answer.json()["days"]
    assert len(days) == 3 and days[-1]["pages"] >= 20 and days[-1]["jobs"] >= 1
    assert days[-1]["completion_tokens"] > 0 and days[0]["date"] < days[-1]["date"]
    assert httpx.get(alice.url + "/v1/usage?days=0", headers=alice.headers, timeout=10).status_code == 422


def test_the_webhook_is_signed_and_verifiable(alice):
    receiver = Receiver()
    try:
        data, _ = pdfs.text_document(1)
        url = f"http://127.0.0.1:{receiver.port}/hook"
        created = alice.create({"file": alice.upload(data), "webhook_url": url}).json()
        secret = created["webhook_secret"]
        assert secret and alice.get(created["id"]).json().get("webhook_secret") is None  # shown once
        alice.wait(created["id"], timeout=120)
        deadline = time.monotonic() + 20
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.2)
        headers, body = receiver.calls[0].headers, receiver.calls[0].body
        assert verify(secret, headers["x-ocr-timestamp"], body, headers["x-ocr-signature"])
        assert not verify("wrong-secret", headers["x-ocr-timestamp"], body, headers["x-ocr-signature"])
        event = json.loads(body)
        assert event["type"] == "ocr.job.finished" and event["job"]["id"] == created["id"]
        assert event["job"]["status"] == "succeeded"
    finally:
        receiver.stop()


def test_inline_requests_count_in_usage_too(bob):
    def today() -> dict:
        answer = httpx.get(bob.url + "/v1/usage?days=1", headers=bob.headers, timeout=10)
        return answer.json()["days"][-1]

    before = today()
    data, _ = pdfs.text_document(2)
    part = {"type": "file", "file": {"file_data": data_url(data, "application/pdf"), "filename": "two.pdf"}}
    body = {"model": "deepseek-ocr", "task": "ocr", "messages": [{"role": "user", "content": [part]}]}
    reply = httpx.post(bob.url + "/v1/chat/completions", json=body, headers=bob.headers, timeout=120)
    assert reply.status_code == 200, reply.text
    deadline, after = time.monotonic() + 20, today()
    # The request is counted just after its answer (a background task): wait for it, boundedly.
    while after["requests"] == before["requests"] and time.monotonic() < deadline:
        time.sleep(0.2)
        after = today()
    assert after["requests"] == before["requests"] + 1 and after["pages"] == before["pages"] + 2
    assert (
        after["completion_tokens"] - before["completion_tokens"] == reply.json()["usage"]["completion_tokens"]
    )


def test_a_task_the_engine_cannot_do_fails_the_job_at_once_naming_the_engine(alice, jobs_aws):
    data, _ = pdfs.text_document(2)
    job = alice.create({"file": alice.upload(data), "task": "figure"}).json()
    final = alice.wait(job["id"], timeout=60)
    assert final["status"] == "failed" and "'figure'" in final["error"] and "rapidocr" in final["error"], (
        final
    )
    # Refused in the split: no page was queued, read or retried.
    assert final.get("pages_total") in (None, 0) and jobs_aws.table.pages(job["id"]) == []
