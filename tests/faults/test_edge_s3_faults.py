"""The edge in front of an S3 that hangs or refuses: a TCP proxy between the edge and the local S3 API."""

import datetime as dt
import json
import threading
import time

import httpx
import pytest

from edge_api.keys import key_id
from tests.utils.servers import EdgeProcess
from tests.utils.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
KEY = "sk-edge-s3-faults"
HEADERS = {"x-api-key": KEY}


@pytest.fixture(scope="module")
def proxy(local_s3):
    with TcpProxy(("127.0.0.1", local_s3.port)) as running:
        yield running


@pytest.fixture(autouse=True)
def flowing_again(proxy):
    yield
    proxy.resume()


def start_edge(local_s3, proxy):
    # No worker: these routes talk to S3 only. The edge's S3 calls all go through the proxy.
    return EdgeProcess(local_s3, "http://127.0.0.1:9", KEY, S3_ENDPOINT_URL=proxy.url).start()


@pytest.fixture(scope="module")
def edge(local_s3, proxy):
    server = start_edge(local_s3, proxy)
    yield server
    server.stop()


def store_result(local_s3, request_id: str, text: str = "stored text") -> None:
    """A result.json as the worker writes it, owned by KEY."""
    day = dt.datetime.now(dt.UTC)
    body = {"id": request_id, "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}], "ocr": {"request_id": request_id}}  # fmt: skip
    document = {"owner": key_id(KEY), "status": 200, "body": body}
    local_s3.client().put_object(Bucket=local_s3.bucket, Key=f"results/{day:%Y/%m/%d}/{request_id}/result.json",
                                 Body=json.dumps(document).encode())  # fmt: skip


def lookup(edge, request_id: str, timeout: float = 30.0) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(f"{edge.url}/v1/results/{request_id}", headers=HEADERS, timeout=timeout)
    return response, time.monotonic() - started


def assert_storage_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["type"] == "api_error" and error["code"] == "storage_unavailable"
    assert "try again" in error["message"].lower()


def test_result_lookup_is_a_quick_503_while_s3_hangs_and_200_after(edge, proxy, local_s3):
    store_result(local_s3, "req-hang-1")
    assert lookup(edge, "req-hang-1")[0].status_code == 200
    proxy.pause()
    response, elapsed = lookup(edge, "req-hang-1")
    assert_storage_unavailable(response)
    assert elapsed < 8, f"the edge waited {elapsed:.1f} s on a silent S3"
    proxy.resume()
    response, _ = lookup(edge, "req-hang-1")
    assert (
        response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "stored text"
    )


def test_result_lookup_is_503_not_500_while_s3_refuses_connections(edge, proxy, local_s3):
    store_result(local_s3, "req-cut-1")
    proxy.cut()
    response, elapsed = lookup(edge, "req-cut-1")
    assert_storage_unavailable(response)
    assert elapsed < 8
    proxy.resume()
    assert lookup(edge, "req-cut-1")[0].status_code == 200


def test_uploads_never_wait_on_s3_even_with_lookups_hanging(local_s3, proxy):
    # A fresh edge whose first S3 work happens during the hang: nothing about presigning may need S3.
    proxy.pause()
    edge = start_edge(local_s3, proxy)
    try:
        hung = [
            threading.Thread(target=lookup, args=(edge, f"req-hung-{i}", 60), daemon=True) for i in range(12)
        ]
        for thread in hung:
            thread.start()
        time.sleep(0.5)  # the lookups are now waiting on S3
        started = time.monotonic()
        grant = httpx.post(edge.url + "/v1/uploads", json={"content_type": "image/png", "size": 4},
                           headers=HEADERS, timeout=30)  # fmt: skip
        elapsed = time.monotonic() - started
        assert grant.status_code == 200, grant.text
        assert elapsed < 2.5, f"POST /v1/uploads waited {elapsed:.1f} s while S3 hung"
        proxy.resume()
        grant = grant.json()
        posted = httpx.post(
            grant["url"], data=grant["fields"], files={"file": ("p.png", b"\x89PNG", "image/png")}
        )
        assert posted.status_code in (200, 204), posted.text  # the grant made during the hang is a real one
        for thread in hung:
            thread.join(timeout=30)
    finally:
        edge.stop()


def test_the_lambda_handler_answers_503_too_while_s3_refuses(local_s3, proxy, monkeypatch):
    import importlib

    from tests.utils.apigw import LambdaContext, rest_event

    for name, value in {"S3_ENDPOINT_URL": proxy.url, "RESULTS_BUCKET": local_s3.bucket,
                        "WORKER_URL": "http://127.0.0.1:9", "EMIT_METRICS": "false"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    import edge_api.handler as module

    handler = importlib.reload(module).handler
    proxy.cut()
    result = handler(rest_event("GET", "/v1/results/req-lambda-cut"), LambdaContext())
    assert result["statusCode"] == 503, result["body"]
    assert json.loads(result["body"])["error"]["code"] == "storage_unavailable"
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    assert int(headers["retry-after"]) > 0
