"""Jobs under faults: a worker killed mid-job, a page that makes the engine raise (DLQ, `partial`)."""

import os
import signal
import time

import httpx
import pytest

from gpu_worker.engines.base import Engine
from gpu_worker.types import OcrRequest, OcrResult
from tests.jobs.conftest import KEYS, EdgeCaller
from tests.utils import pdfs
from tests.utils.servers import EdgeProcess, ServerThread, WorkerProcess

pytestmark = pytest.mark.integration


def test_a_worker_killed_mid_job_loses_nothing_and_counts_nothing_twice(local_s3, jobs_aws):
    first = WorkerProcess(local_s3, MAX_BATCH_SIZE="2", **jobs_aws.worker_env()).start()
    edge = EdgeProcess(local_s3, first.url, ",".join(KEYS), **jobs_aws.edge_env()).start()
    second = None
    try:
        alice = EdgeCaller(edge.url, KEYS[0])
        data, texts = pdfs.text_document(8)
        job = alice.create({"file": alice.upload(data), "task": "ocr"}).json()
        deadline = time.monotonic() + 180
        while alice.get(job["id"]).json()["pages_done"] < 2:
            assert time.monotonic() < deadline, "no page finished"
            time.sleep(0.2)
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)  # mid-job, pages in flight, no chance to clean up
        first.process.wait(timeout=30)
        killed_at = alice.get(job["id"]).json()
        assert killed_at["status"] == "running" and killed_at["pages_done"] < 8
        second = WorkerProcess(local_s3, MAX_BATCH_SIZE="2", **jobs_aws.worker_env()).start()
        final = alice.wait(job["id"], timeout=240)
        assert final["status"] == "succeeded", final
        assert (final["pages_total"], final["pages_done"], final["pages_failed"]) == (8, 8, 0)
        assert [p["status"] for p in final["pages"]] == ["succeeded"] * 8
        markdown = httpx.get(final["result"]["markdown"]["url"], timeout=10).text
        assert all(line.lower() in " ".join(markdown.split()).lower() for lines in texts for line in lines)
    finally:
        for process in (second, edge, first):
            if process is not None:
                process.stop()


class PoisonPages(Engine):
    """RapidOCR, except that a page whose text says POISON makes the engine raise (as a broken page would)."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name, self.model_id, self.device, self.tasks = (
            inner.name,
            inner.model_id,
            inner.device,
            inner.tasks,
        )

    def load(self) -> None:
        pass  # the session's engine is loaded already

    def run(self, batch: list[OcrRequest], on_token=None) -> list[OcrResult]:  # type: ignore[no-untyped-def]
        results = self.inner.run(batch, on_token)
        if any("POISON" in r.text for r in results):
            raise RuntimeError("the engine crashed on this page")
        return results


def test_a_page_that_makes_the_engine_raise_ends_in_the_dlq_and_the_job_is_partial(
    local_s3, jobs_aws, rapid_engine, monkeypatch
):
    from gpu_worker.app import build_app
    from gpu_worker.settings import load_settings

    monkeypatch.setenv("AWS_ENDPOINT_URL", jobs_aws.endpoint)
    env = {k.lower(): v for k, v in jobs_aws.worker_env().items() if k != "AWS_ENDPOINT_URL"}
    settings = load_settings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint, max_batch_size=1,
                             **env)  # fmt: skip
    worker = ServerThread(build_app(settings, engine=PoisonPages(rapid_engine))).start()
    edge = EdgeProcess(local_s3, worker.url, ",".join(KEYS), **jobs_aws.edge_env()).start()
    try:
        alice = EdgeCaller(edge.url, KEYS[0])
        data = pdfs.build_pdf([pdfs.Page(lines=["First page fine"], size=28),
                               pdfs.Page(lines=["POISON"], size=40),
                               pdfs.Page(lines=["Third page fine"], size=28)])  # fmt: skip
        job = alice.create({"file": alice.upload(data), "task": "ocr"}).json()
        final = alice.wait(job["id"], timeout=180)
        assert final["status"] == "partial", final
        assert (final["pages_done"], final["pages_failed"]) == (2, 1)
        failed = final["pages"][1]
        assert failed["status"] == "failed" and "engine" in failed["error"].lower()
        assert final["pages"][0]["result"] and failed["result"] is None
        markdown = httpx.get(final["result"]["markdown"]["url"], timeout=10).text
        assert "first page fine" in markdown.lower() and "third page fine" in markdown.lower()
        assert "<!-- page 2 failed:" in markdown
        # The poison page's message goes to the DLQ, where the worker settles it without counting it again.
        deadline = time.monotonic() + 40
        while jobs_aws.dlq_messages():
            assert time.monotonic() < deadline, "the DLQ was not drained"
            time.sleep(1)
        time.sleep(2)
        assert alice.get(job["id"]).json()["pages_failed"] == 1
    finally:
        edge.stop()
        worker.stop()
