"""The edge relaying a worker that refuses, overflows or dies mid-request: ids, codes and Retry-After kept."""

import json
import os
import signal
import sys
import threading
import time

import httpx
import pytest
from PIL import Image

from scripts.local_stack import Service
from tests.utils.documents import to_bytes
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import AWS_ENV, WORKER_SECRET, EdgeProcess, free_port

pytestmark = pytest.mark.integration
KEY = "sk-edge-worker-faults"
HEADERS = {"x-api-key": KEY}
# The real worker app and server, with a scripted engine that takes as long as the test says.
SLOW_WORKER = """
import sys
import uvicorn
from gpu_worker.app import build_app
from gpu_worker.settings import WorkerSettings
from tests.utils.engines import ScriptedEngine
settings = WorkerSettings()
app = build_app(settings, engine=ScriptedEngine(delay=float(sys.argv[1])))
uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning")
"""


class SlowWorker:
    """The worker as a process of its own (so a test can kill it by pid), its engine taking `delay` s a batch."""

    def __init__(self, local_s3, delay: float, **env: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, **AWS_ENV, "PORT": self.url.rsplit(":", 1)[1], "RESULTS_BUCKET": local_s3.bucket,
               "S3_ENDPOINT_URL": local_s3.endpoint, "WORKER_SHARED_SECRET": WORKER_SECRET, **env}  # fmt: skip
        self.service = Service("slow worker", [sys.executable, "-c", SLOW_WORKER, str(delay)], env,
                               self.url + "/health")  # fmt: skip

    def __enter__(self) -> "SlowWorker":
        self.service.start()
        self.service.wait_healthy(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.stop()

    def kill(self) -> None:
        """SIGKILL, by pid: no goodbye, no response."""
        assert self.service.process is not None
        os.kill(self.service.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def page():
    return data_url(to_bytes(Image.new("RGB", (64, 48), "white"), "PNG"))


def post(url: str, body: dict, results: list | None = None, timeout: float = 60) -> httpx.Response:
    response = httpx.post(url + "/v1/chat/completions", json=body, headers=HEADERS, timeout=timeout)
    if results is not None:
        results.append(response)
    return response


def test_a_relayed_worker_error_has_one_request_id_and_it_works_for_lookups(local_s3, rapid_worker, page):
    edge = EdgeProcess(local_s3, rapid_worker.url, KEY).start()
    try:
        response = post(edge.url, chat_body(page, model="gpt-4o"))  # the worker answers 404 model_not_found
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
        assert len(response.headers.get_list("x-request-id")) == 1, response.headers.get_list("x-request-id")
        copied = response.headers["x-request-id"]  # what a client copies from the header
        lookup = httpx.get(f"{edge.url}/v1/results/{copied}", headers=HEADERS, timeout=30)
        assert lookup.status_code == 404 and lookup.json()["error"]["code"] == "result_not_found"
    finally:
        edge.stop()


def test_a_worker_killed_mid_request_is_a_502_with_retry_after(local_s3, page):
    with SlowWorker(local_s3, delay=60) as worker:
        edge = EdgeProcess(local_s3, worker.url, KEY).start()
        try:
            answers: list[httpx.Response] = []
            caller = threading.Thread(target=post, args=(edge.url, chat_body(page, task="ocr"), answers))
            caller.start()
            time.sleep(2)  # the request is now inside the worker's engine
            assert not answers, "the worker answered before it was killed"
            worker.kill()
            caller.join(30)
            response = answers[0]
            assert response.status_code == 502, response.text
            assert response.json()["error"]["code"] == "upstream_unavailable"
            assert int(response.headers["retry-after"]) > 0
            assert len(response.headers.get_list("x-request-id")) == 1
            # And once nothing listens: the same status, the same advice.
            refused = post(edge.url, chat_body(page, task="ocr"))
            assert refused.status_code == 502 and int(refused.headers["retry-after"]) > 0
        finally:
            edge.stop()


def test_a_relayed_queue_full_keeps_its_code_and_retry_after(local_s3, page):
    with SlowWorker(local_s3, delay=3, MAX_QUEUE="1", MAX_BATCH_SIZE="1") as worker:
        edge = EdgeProcess(local_s3, worker.url, KEY).start()
        try:
            answers: list[httpx.Response] = []
            callers = [threading.Thread(target=post, args=(edge.url, chat_body(page, task="ocr"), answers))
                       for _ in range(5)]  # fmt: skip
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join(60)
            refused = [r for r in answers if r.status_code == 429]
            assert refused, [r.status_code for r in answers]
            for response in refused:
                error = response.json()["error"]
                assert error["code"] == "queue_full" and error["type"] == "rate_limit_error", error
                assert int(response.headers["retry-after"]) > 0
                assert len(response.headers.get_list("x-request-id")) == 1
            assert any(r.status_code == 200 for r in answers)
        finally:
            edge.stop()


def test_a_worker_killed_mid_stream_ends_the_stream_with_an_error_chunk_and_done(local_s3, page):
    with SlowWorker(local_s3, delay=60) as worker:
        edge = EdgeProcess(local_s3, worker.url, KEY).start()
        try:
            with httpx.stream("POST", edge.url + "/v1/chat/completions", json=chat_body(page, task="ocr", stream=True),
                              headers=HEADERS, timeout=60) as response:  # fmt: skip
                time.sleep(2)  # the request is now inside the worker's engine
                worker.kill()
                body = response.read().decode()
            if response.status_code == 200:  # the stream had begun: it must still end as a stream ends
                events = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
                assert events[-1] == "[DONE]", body
                assert json.loads(events[-2])["error"]["code"] == "upstream_unavailable", body
            else:  # nothing had been relayed yet: the same 502 as a non-streaming request
                assert response.status_code == 502 and int(response.headers["retry-after"]) > 0, body
        finally:
            edge.stop()
