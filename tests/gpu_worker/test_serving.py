"""Serving behaviour with controllable engines (timeouts, readiness, S3 failure, shutdown) over real HTTP."""

import threading
import time

import httpx
import pytest
from PIL import Image

from gpu_worker.app import build_app
from gpu_worker.engines.base import Engine, EngineLoadError
from gpu_worker.grounding import StreamCleaner
from gpu_worker.protocol import Box
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from gpu_worker.types import OcrResult
from tests.utils.documents import to_bytes
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import ServerThread

PAGE = data_url(to_bytes(Image.new("RGB", (100, 80), "white"), "PNG"))


class ScriptedEngine(Engine):
    """A test engine: waits for `gate` (if any), sleeps, answers a fixed grounded text."""

    name = "scripted"
    model_id = "scripted"
    tasks = ("markdown", "ocr", "locate")

    def __init__(self, delay=0.0, load_delay=0.0, load_error=None, gate=None):
        self.delay, self.load_delay, self.load_error, self.gate = delay, load_delay, load_error, gate
        self.batches = []

    def load(self):
        time.sleep(self.load_delay)
        if self.load_error:
            raise EngineLoadError(self.load_error)

    def run(self, batch, on_token=None):
        self.batches.append(len(batch))
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        return [OcrResult(text="hello", raw="hello", boxes=[Box(label="text", bbox=[1, 2, 30, 40])],
                          completion_tokens=1) for _ in batch]  # fmt: skip


def settings(local_s3, **overrides):
    return WorkerSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint, **overrides)


@pytest.fixture
def serve(local_s3):
    servers = []

    def start(engine, **overrides):
        cfg = settings(local_s3, **overrides)
        server = ServerThread(build_app(cfg, engine=engine, store=ResultStore(cfg))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def wait_ready(server, timeout=10):
    deadline = time.monotonic() + timeout
    while httpx.get(server.url + "/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_timeout_is_504_with_the_request_id_and_the_result_is_stored_later(serve, local_s3):
    server = serve(ScriptedEngine(delay=1.0), request_timeout_s=0.3)
    wait_ready(server)
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE),
                          headers={"X-Request-ID": "slow-1"}, timeout=10)  # fmt: skip
    assert response.status_code == 504
    assert "slow-1" in response.json()["error"]["message"]
    assert response.headers["x-request-id"] == "slow-1"
    local_s3.wait_for_key("/slow-1/result.json", 10)


def test_health_is_503_while_loading_and_requests_are_503(serve):
    server = serve(ScriptedEngine(load_delay=1.5))
    assert httpx.get(server.url + "/livez").status_code == 200
    health = httpx.get(server.url + "/health")
    assert health.status_code == 503 and health.json()["status"] == "loading"
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE))
    assert response.status_code == 503 and response.headers["retry-after"]
    wait_ready(server)


def test_a_failed_load_is_reported_by_health(serve):
    server = serve(ScriptedEngine(load_error="weights not found at /models/x"))
    time.sleep(0.3)
    health = httpx.get(server.url + "/health")
    assert health.status_code == 503
    assert health.json()["status"] == "error" and "weights not found" in health.json()["error"]
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE))
    assert response.status_code == 503 and "weights not found" in response.json()["error"]["message"]


def test_s3_down_still_returns_the_text_with_a_warning(local_s3):
    cfg = WorkerSettings(results_bucket="ocr-results", s3_endpoint_url="http://127.0.0.1:9")
    store = ResultStore(cfg)
    store.client.meta.config.retries = {"max_attempts": 1}
    server = ServerThread(build_app(cfg, engine=ScriptedEngine(), store=store)).start()
    try:
        wait_ready(server)
        response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=60)
        assert response.status_code == 200
        body = response.json()
        assert body["choices"][0]["message"]["content"] == "hello"
        assert body["ocr"]["result"] is None
        assert any("could not be stored" in w for w in body["ocr"]["warnings"])
        assert "ocr_s3_failures_total 1.0" in httpx.get(server.url + "/metrics").text
    finally:
        server.stop()


def test_requests_arriving_together_share_a_batch(serve):
    gate = threading.Event()
    engine = ScriptedEngine(gate=gate)
    server = serve(engine, max_batch_size=4, batch_timeout_ms=200)
    wait_ready(server)
    gate.set()
    engine.batches.clear()
    engine.gate = None
    threads = [threading.Thread(target=httpx.post, args=(server.url + "/v1/chat/completions",),
                                kwargs={"json": chat_body(PAGE), "timeout": 10}) for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(engine.batches) == 4 and max(engine.batches) > 1


def test_shutdown_finishes_in_flight_requests(local_s3):
    cfg = settings(local_s3)
    server = ServerThread(build_app(cfg, engine=ScriptedEngine(delay=1.0), store=ResultStore(cfg))).start()
    wait_ready(server)
    answers = []
    caller = threading.Thread(target=lambda: answers.append(
        httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)))  # fmt: skip
    caller.start()
    time.sleep(0.3)
    server.stop()
    caller.join()
    assert answers and answers[0].status_code == 200


def test_stream_cleaner_sends_clean_text_that_adds_up():
    pieces = ["<|ref|>ti", "tle<|/ref|><|det|>[[1, 2,", " 3, 4]]<|/det|>\n# Head", "ing\n\nBody"]
    cleaner = StreamCleaner()
    sent = "".join(cleaner.feed(p) for p in pieces)
    sent += cleaner.finish("# Heading\n\nBody")
    assert sent == "# Heading\n\nBody"
    assert "<|" not in sent
