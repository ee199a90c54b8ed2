"""The edge's /v1/jobs routes in-process (FastAPI's TestClient) on moto's server: webhook URLs, file references,
an idempotent replay's webhook secret, and links signed without credentials."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import boto3
import botocore.session
import httpx
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from edge_api.app import build_app
from edge_api.keys import key_id
from edge_api.settings import EdgeSettings
from edge_api.webhooks import check_webhook_url
from gpu_worker.presign import LinkSigner
from gpu_worker.protocol import InvalidRequest
from tests.jobs.conftest import JobsAws

KEY = "sk-local-jobs-routes-01"
OWNER = key_id(KEY)
HEADERS = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def aws(local_s3):
    return JobsAws(local_s3)


@pytest.fixture
def edge(local_s3, aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    settings = EdgeSettings(local_api_keys=KEY, results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint,
                            jobs_table=aws.names["table"], jobs_queue_url=aws.names["queue_url"],
                            emit_metrics=False)  # fmt: skip
    app = build_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app


@pytest.fixture(scope="module")
def upload(local_s3):
    key = f"uploads/{OWNER}/{uuid.uuid4().hex}.pdf"
    local_s3.client().put_object(
        Bucket=local_s3.bucket, Key=key, Body=b"%PDF-1.4\n", ContentType="application/pdf"
    )
    return f"s3://{local_s3.bucket}/{key}"


def error(answer: Any) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


# ---- webhook URLs (SSRF) ---------------------------------------------------------------------------------------

REFUSED = [
    "http://example.com/hook",  # not https
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://172.16.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[fd00::1]/hook",
    "https://100.64.0.1/hook",
    "https://localhost/hook",
    "https://api.localhost/hook",
    "https://127.1/hook",
    "https://2130706433/hook",
    "https://0x7f.1/hook",
    "https://user:pw@example.com/hook",
    "https://[x",
    "https://example.com:99999/hook",
    "https:///hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_webhook_urls_inside_our_network_or_malformed_are_400(url):
    with pytest.raises(InvalidRequest) as info:
        check_webhook_url(url)
    assert info.value.code == "invalid_webhook_url" and info.value.param == "webhook_url"


@pytest.mark.parametrize("url", ["https://example.com/hook", "https://hooks.example.co.uk:8443/a?b=c",
                                 "https://8.8.8.8/hook", "https://[2606:4700:4700::1111]/hook"])  # fmt: skip
def test_public_https_webhooks_pass(url):
    check_webhook_url(url)


def test_the_local_setting_allows_http_and_loopback_but_nothing_else_inside():
    for url in ("http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "http://[::1]:9000/hook"):
        check_webhook_url(url, local=True)
    for url in ("http://169.254.169.254/latest/", "http://10.0.0.1/hook", "http://0.0.0.0:9000/hook"):
        with pytest.raises(InvalidRequest):
            check_webhook_url(url, local=True)


@pytest.mark.parametrize("url", ["https://[x", "https://169.254.169.254/latest/meta-data/"])
def test_a_bad_webhook_url_is_a_400_through_the_route(edge, upload, url):
    client, _ = edge
    answer = client.post("/v1/jobs", json={"file": upload, "webhook_url": url}, headers=HEADERS)
    assert error(answer) == (400, "invalid_webhook_url"), answer.text


# ---- file references -------------------------------------------------------------------------------------------


def test_a_data_url_file_is_an_invalid_reference_not_too_large(edge):
    client, _ = edge
    answer = client.post(
        "/v1/jobs", json={"file": "data:application/pdf;base64,JVBERi0xLjQK"}, headers=HEADERS
    )
    assert error(answer) == (400, "invalid_file_reference"), answer.text


class RefusingS3:
    """HeadObject answered with one S3 error (a unit-level stand-in: moto has no way to answer these)."""

    def __init__(self, status: int, code: str) -> None:
        self.status, self.code = status, code

    def head_object(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": self.code}, "ResponseMetadata": {"HTTPStatusCode": self.status}},
                          "HeadObject")  # fmt: skip


@pytest.mark.parametrize(("status", "code"), [(400, "400"), (400, "KeyTooLongError"), (412, "412")])
def test_s3_refusing_the_reference_is_400_not_503(edge, upload, status, code):
    client, app = edge
    assert client.get("/v1/usage", headers=HEADERS).status_code == 200  # builds the jobs backend
    app.state.jobs.s3 = RefusingS3(status, code)
    answer = client.post("/v1/jobs", json={"file": upload}, headers=HEADERS)
    assert error(answer) == (400, "invalid_file_reference"), answer.text


@pytest.mark.parametrize(("status", "code"), [(500, "500"), (503, "SlowDown"), (429, "429")])
def test_s3_faults_stay_503(edge, upload, status, code):
    client, app = edge
    assert client.get("/v1/usage", headers=HEADERS).status_code == 200
    app.state.jobs.s3 = RefusingS3(status, code)
    answer = client.post("/v1/jobs", json={"file": upload}, headers=HEADERS)
    assert error(answer) == (503, "jobs_unavailable"), answer.text


# ---- an idempotent replay ---------------------------------------------------------------------------------------


def test_an_idempotent_replay_returns_the_webhook_secret_too(edge, upload):
    client, _ = edge
    body = {"file": upload, "webhook_url": "https://example.com/hook"}
    headers = {**HEADERS, "Idempotency-Key": f"replay-{uuid.uuid4().hex}"}
    first = client.post("/v1/jobs", json=body, headers=headers)
    again = client.post("/v1/jobs", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["webhook_secret"] and again.json()["webhook_secret"] == first.json()["webhook_secret"]
    assert client.get(f"/v1/jobs/{first.json()['id']}", headers=HEADERS).json().get("webhook_secret") is None


# ---- links signed without credentials ---------------------------------------------------------------------------


def unsigned_s3(local_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real S3 client that finds no credentials anywhere (signing raises NoCredentialsError)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session(botocore_session=botocore.session.Session())
    return session.client("s3", region_name="us-west-2", endpoint_url=local_s3.endpoint)


def finished_job(aws: JobsAws, upload: str) -> str:
    from gpu_worker.protocol import JobCreate

    job_id = f"job-{uuid.uuid4().hex}"
    aws.table.create_job(job_id, OWNER, JobCreate(file=upload), None)
    aws.table.complete(
        job_id, "succeeded", {"markdown": f"jobs/{job_id}/result.md", "json": f"jobs/{job_id}/r.json"}
    )
    return job_id


def test_list_and_cancel_without_credentials_are_503_not_500(edge, aws, upload, local_s3, monkeypatch):
    client, app = edge
    job_id = finished_job(aws, upload)
    assert client.get("/v1/jobs", headers=HEADERS).status_code == 200  # the backend, built with credentials
    unsigned = unsigned_s3(local_s3, monkeypatch)
    # A backend whose session found no credentials (what get_credentials() then gives: None)
    app.state.jobs.s3, app.state.jobs.signer = unsigned, LinkSigner(unsigned, None, local_s3.bucket, 3600)
    for answer in (client.get("/v1/jobs", headers=HEADERS), client.delete(f"/v1/jobs/{job_id}", headers=HEADERS),
                   client.get(f"/v1/jobs/{job_id}", headers=HEADERS)):  # fmt: skip
        assert error(answer) == (503, "jobs_unavailable"), answer.text
        assert answer.headers["Retry-After"]


# ---- inline usage off the response path -------------------------------------------------------------------------

ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "deepseek-ocr",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "text"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
          "ocr": {"pages": [{"page": 1}, {"page": 2}]}}  # fmt: skip


def test_inline_usage_is_counted_after_the_answer_not_before(local_s3, aws, monkeypatch):
    import edge_api.jobs as jobs_module
    from edge_api.forward import WorkerClient
    from tests.utils.requests import chat_body, data_url
    from tests.utils.servers import ServerThread

    key = f"sk-local-usage-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    settings = EdgeSettings(local_api_keys=key, results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint,
                            jobs_table=aws.names["table"], jobs_queue_url=aws.names["queue_url"],
                            worker_url="http://worker.test")  # fmt: skip
    worker = WorkerClient(settings, transport=httpx.MockTransport(lambda _: httpx.Response(200, json=ANSWER)))
    # The jobs backend (boto3, a cold start's first build) is held until the caller has its answer: the old
    # inline count built it before answering, so the answer never came while it was held.
    answered = threading.Event()
    real_init = jobs_module.JobsBackend.__init__

    def held_init(self: Any, *args: Any) -> None:
        answered.wait(20)
        real_init(self, *args)

    monkeypatch.setattr(jobs_module.JobsBackend, "__init__", held_init)
    server = ServerThread(build_app(settings, worker=worker), health_path="/docs").start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        png = data_url(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        reply = httpx.post(
            server.url + "/v1/chat/completions", json=chat_body(png), headers=headers, timeout=10
        )
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 5, reply.text
        assert not answered.is_set()
        answered.set()
        deadline, today = time.monotonic() + 20, {}
        while time.monotonic() < deadline:  # the count lands just after the answer
            today = httpx.get(server.url + "/v1/usage?days=1", headers=headers, timeout=10).json()["days"][-1]
            if today["requests"]:
                break
            time.sleep(0.1)
        assert (today["requests"], today["pages"], today["prompt_tokens"], today["completion_tokens"]) == (
            1,
            2,
            7,
            5,
        )
    finally:
        answered.set()
        server.stop()
