"""A job read by the DeepSeek engine (the tiny random model): the same queue path as with rapidocr."""

import httpx
import pytest

from tests.jobs.conftest import KEYS, EdgeCaller
from tests.utils import pdfs
from tests.utils.servers import EdgeProcess, WorkerProcess

pytestmark = pytest.mark.integration


def test_a_job_runs_on_the_deepseek_engine(local_s3, jobs_aws, tiny_model_dir):
    worker = WorkerProcess(local_s3, OCR_ENGINE="deepseek", DEEPSEEK_MODEL=str(tiny_model_dir), MAX_NEW_TOKENS="12",
                           MAX_BATCH_SIZE="2", **jobs_aws.worker_env()).start(timeout=240)  # fmt: skip
    edge = EdgeProcess(local_s3, worker.url, ",".join(KEYS), **jobs_aws.edge_env()).start()
    try:
        alice = EdgeCaller(edge.url, KEYS[0])
        data, _ = pdfs.mixed_document(3)
        job = alice.create({"file": alice.upload(data), "task": "ocr", "mode": "tiny"}).json()
        final = alice.wait(job["id"], timeout=240)
        assert final["status"] == "succeeded" and (final["pages_done"], final["pages_failed"]) == (3, 0), (
            final
        )
        pages = [httpx.get(p["result"]["url"], timeout=10).json() for p in final["pages"]]
        assert all(p["completion_tokens"] >= 1 and p["prompt_tokens"] >= 257 for p in pages)
        # Each page's result.json says its image size (no ranged GET of the PNG) and what the image cost.
        assert [(p["image"], p["image_tokens"], p["tiles"]) for p in pages] == [
            ({"width": 1224, "height": 1584}, 257, None)
        ] * 3
        markdown = httpx.get(final["result"]["markdown"]["url"], timeout=10).text
        # The random model's text, page by page, in order between the markers.
        assert (
            markdown
            == pages[0]["text"]
            + "".join(
                f"\n\n<!-- page {n} -->\n\n{p['text']}".rstrip() for n, p in enumerate(pages[1:], start=2)
            )
            + "\n"
        )
    finally:
        edge.stop()
        worker.stop()
