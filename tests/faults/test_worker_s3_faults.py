"""The worker while S3 hangs (a proxy that accepts and stays silent) or refuses: true answers, nothing lost.

Each test reproduces a fault measured in issue 11: a hung S3 made finished pages 504 "will be stored"
with nothing stored, starved image decoding and /health, and did not count image reading in the deadline.
"""

import asyncio
import time

import httpx
import pytest
from PIL import Image

from gpu_worker.app import build_app
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from tests.utils.documents import render_document, to_bytes
from tests.utils.engines import ScriptedEngine
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import EDGE_HEADERS, WORKER_SECRET, ServerThread, WorkerProcess
from tests.utils.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
PAGE = data_url(to_bytes(Image.new("RGB", (100, 80), "white"), "PNG"))
FAST_S3 = {"S3_CONNECT_TIMEOUT_S": "0.5", "S3_READ_TIMEOUT_S": "1", "S3_MAX_ATTEMPTS": "1",
           "SPOOL_RETRY_S": "0.3", "S3_PROBE_INTERVAL_S": "0.3", "S3_PROBE_TIMEOUT_S": "0.5"}  # fmt: skip


@pytest.fixture
def proxy(local_s3):
    with TcpProxy(("127.0.0.1", local_s3.port)) as running:
        yield running


@pytest.fixture
def worker_via_proxy(local_s3, proxy, tmp_path):
    worker = WorkerProcess(local_s3, S3_ENDPOINT_URL=proxy.url, REQUEST_TIMEOUT_S="60", SPOOL_DIR=str(tmp_path),
                           MAX_BATCH_SIZE="4", **FAST_S3).start()  # fmt: skip
    yield worker
    worker.stop()


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_under_an_s3_hang_pages_are_answered_health_is_fast_and_every_result_lands(
    worker_via_proxy, proxy, local_s3
):
    page = data_url(render_document(["Hung S3 page"], width=360).png())
    proxy.pause()

    async def burst():
        async with httpx.AsyncClient(timeout=90) as client:
            calls = [client.post(worker_via_proxy.url + "/v1/chat/completions", json=chat_body(page, task="ocr"),
                                 headers={"X-Request-ID": f"hang-{i}", **EDGE_HEADERS}) for i in range(4)]  # fmt: skip
            health_started = time.perf_counter()
            health = await client.get(worker_via_proxy.url + "/health")
            health_s = time.perf_counter() - health_started
            return await asyncio.gather(*calls), health, health_s

    responses, health, health_s = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 4
    assert health.status_code == 200 and health_s < 2
    promised = [r.json()["ocr"]["result"]["key"] for r in responses]
    assert all(r.json()["choices"][0]["message"]["content"] == "Hung S3 page" for r in responses)
    wait_for(lambda: httpx.get(worker_via_proxy.url + "/health").json()["status"] == "degraded")
    report = httpx.get(worker_via_proxy.url + "/health").json()
    assert report["degraded"] == ["s3"] and report["dependencies"]["s3"]["ok"] is False
    proxy.resume()
    wait_for(lambda: set(promised) <= set(local_s3.object_keys("results/")), timeout=30)
    wait_for(lambda: httpx.get(worker_via_proxy.url + "/health").json()["status"] == "ok")


def scripted_server(local_s3, proxy, tmp_path, engine, **overrides):
    options = {"results_bucket": local_s3.bucket, "s3_endpoint_url": proxy.url, "spool_dir": str(tmp_path),
               "worker_shared_secret": WORKER_SECRET, "spool_retry_s": 0.3, "s3_probe_interval_s": 0.3, **overrides}  # fmt: skip
    cfg = WorkerSettings(**options)
    server = ServerThread(build_app(cfg, engine=engine, store=ResultStore(cfg)), settings=cfg).start()
    wait_for(lambda: httpx.get(server.url + "/health").status_code == 200)
    return server


def test_an_upload_read_from_a_hung_s3_counts_against_the_deadline(local_s3, proxy, tmp_path):
    # S3 timeouts as they were (30 s read, 3 attempts): only the request's own deadline can cut this short.
    server = scripted_server(local_s3, proxy, tmp_path, ScriptedEngine(), request_timeout_s=2,
                             s3_read_timeout_s=30, s3_max_attempts=3)  # fmt: skip
    try:
        local_s3.client().put_object(Bucket=local_s3.bucket, Key="uploads/key-a/page.png", Body=to_bytes(
            Image.new("RGB", (60, 40), "white"), "PNG"))  # fmt: skip
        proxy.pause()
        started = time.monotonic()
        response = httpx.post(server.url + "/v1/chat/completions", json=chat_body("s3://ocr-results/uploads/key-a/page.png"),
                              headers={"X-OCR-Owner": "key-a", **EDGE_HEADERS}, timeout=120)  # fmt: skip
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.text
        assert elapsed < 4  # the 2 s budget, not 30 s x 3 attempts of S3 read timeouts
        message = response.json()["error"]["message"]
        assert "reading the uploaded image" in message and "no result will be stored" in message
        # Meanwhile pages that need no S3 are still decoded and answered, more of them than S3 threads.
        with httpx.Client(timeout=30) as client:
            assert [client.post(server.url + "/v1/chat/completions", json=chat_body(PAGE)).status_code
                    for _ in range(10)] == [200] * 10  # fmt: skip
    finally:
        proxy.resume()
        server.stop()


def test_a_504_during_an_s3_hang_promises_only_what_is_then_stored(local_s3, proxy, tmp_path):
    server = scripted_server(local_s3, proxy, tmp_path, ScriptedEngine(delay=1.5), request_timeout_s=0.5,
                             s3_connect_timeout_s=0.5, s3_read_timeout_s=1, s3_max_attempts=1)  # fmt: skip
    try:
        proxy.pause()
        response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE),
                              headers={"X-Request-ID": "promised-1", **EDGE_HEADERS}, timeout=30)  # fmt: skip
        assert response.status_code == 504
        assert "will be stored under request id promised-1" in response.json()["error"]["message"]
        # The page finishes while S3 is still hung, longer than the S3 timeouts: it must go to the spool.
        wait_for(lambda: "ocr_spool_results 1.0" in httpx.get(server.url + "/metrics").text)
        assert not [k for k in local_s3.object_keys("results/") if "/promised-1/" in k]
        proxy.resume()
        local_s3.wait_for_key("/promised-1/result.json", 15)
    finally:
        proxy.resume()
        server.stop()


def test_a_full_spool_makes_the_504_say_the_result_may_not_be_stored(local_s3, proxy, tmp_path):
    server = scripted_server(local_s3, proxy, tmp_path, ScriptedEngine(delay=0.8), request_timeout_s=0.5,
                             s3_connect_timeout_s=0.3, s3_read_timeout_s=0.5, s3_max_attempts=1, spool_max_bytes=1024)  # fmt: skip
    try:
        proxy.cut()
        wait_for(lambda: httpx.get(server.url + "/health").json()["status"] == "degraded")
        first = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=30)
        assert first.status_code == 504 and "will be stored" in first.json()["error"]["message"]
        wait_for(lambda: "ocr_spool_results 1.0" in httpx.get(server.url + "/metrics").text)
        second = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=30)
        assert second.status_code == 504
        assert "may not be stored" in second.json()["error"]["message"]
    finally:
        proxy.resume()
        server.stop()


def test_while_s3_is_known_down_an_upload_gets_a_fast_503_with_retry_after(local_s3, proxy, tmp_path):
    server = scripted_server(local_s3, proxy, tmp_path, ScriptedEngine(), request_timeout_s=30,
                             s3_read_timeout_s=30, s3_max_attempts=3, s3_probe_timeout_s=0.5)  # fmt: skip
    try:
        proxy.pause()
        wait_for(lambda: httpx.get(server.url + "/health").json()["status"] == "degraded", timeout=5)
        started = time.monotonic()
        response = httpx.post(server.url + "/v1/chat/completions", json=chat_body("s3://ocr-results/uploads/key-a/p.png"),
                              headers={"X-OCR-Owner": "key-a", **EDGE_HEADERS}, timeout=60)  # fmt: skip
        assert response.status_code == 503 and time.monotonic() - started < 2
        assert (
            response.json()["error"]["code"] == "s3_unavailable" and int(response.headers["retry-after"]) >= 1
        )
        proxy.resume()
        wait_for(lambda: httpx.get(server.url + "/health").json()["status"] == "ok", timeout=5)
    finally:
        proxy.resume()
        server.stop()
