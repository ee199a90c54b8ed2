"""The worker's /docs and /redoc work offline: Swagger UI and ReDoc come from the worker itself, over real HTTP."""

import httpx
import pytest

from gpu_worker.app import build_app
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from tests.utils.docs_page import assert_asset_folder_closed, assert_docs_offline
from tests.utils.engines import ScriptedEngine
from tests.utils.servers import WORKER_SECRET, ServerThread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(local_s3, tmp_path_factory):
    cfg = WorkerSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint,
                         worker_shared_secret=WORKER_SECRET, spool_dir=str(tmp_path_factory.mktemp("spool")))  # fmt: skip
    server = ServerThread(
        build_app(cfg, engine=ScriptedEngine(), store=ResultStore(cfg)), settings=cfg
    ).start()
    yield server
    server.stop()


def fetch(worker):
    def get(path):
        response = httpx.get(worker.url + path, timeout=10)
        return response.status_code, response.headers.get("content-type", ""), response.content

    return get


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_everything_from_the_worker(worker, page):
    openapi = assert_docs_offline(fetch(worker), page)
    assert "/v1/chat/completions" in openapi["paths"]


def test_the_asset_folder_serves_only_its_files(worker):
    assert_asset_folder_closed(worker.url)
