"""The edge's /docs and /redoc work offline and need no key, under uvicorn and in the Lambda behind the `/prod` stage."""

import importlib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edge_api.app import build_app, stage_prefix
from edge_api.settings import EdgeSettings
from scripts.local_stack import free_port
from tests.utils.apigw import STAGE, rest_event
from tests.utils.docs_page import assert_asset_folder_closed, assert_docs_offline, lambda_fetch
from tests.utils.lambda_zip import extract, runtime
from tests.utils.servers import ServerThread

pytestmark = pytest.mark.integration
PREFIX = f"/{STAGE}"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def edge():
    settings = EdgeSettings(worker_url=f"http://127.0.0.1:{free_port()}", local_api_keys="sk-k")
    server = ServerThread(build_app(settings), health_path="/health").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lambda_handler():
    patch = pytest.MonkeyPatch()
    for name, value in {"WORKER_URL": f"http://127.0.0.1:{free_port()}", "AWS_DEFAULT_REGION": "us-west-2",
                        "POWERTOOLS_SERVICE_NAME": "edge-api", "POWERTOOLS_METRICS_NAMESPACE": "DeepSeekOCR",
                        "AWS_LAMBDA_FUNCTION_NAME": "ocr-edge-api"}.items():  # fmt: skip
        patch.setenv(name, value)
    patch.delenv("LOCAL_API_KEYS", raising=False)
    import edge_api.handler as module

    yield importlib.reload(module).handler
    patch.undo()


def local_fetch(edge):
    def get(path):
        response = httpx.get(edge.url + path, timeout=10)  # no key: the docs are public, like /health
        return response.status_code, response.headers.get("content-type", ""), response.content

    return get


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_everything_from_the_edge_without_a_key(edge, page):
    openapi = assert_docs_offline(local_fetch(edge), page)
    assert "/v1/chat/completions" in openapi["paths"] and "servers" not in openapi


def test_docs_open_nothing_else(edge):
    assert httpx.get(edge.url + "/v1/models").status_code == 401
    assert_asset_folder_closed(edge.url)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("principal", [None, "key-0123456789abcdef"])
def test_docs_through_api_gateway_link_under_the_stage(lambda_handler, page, principal):
    openapi = assert_docs_offline(lambda_fetch(lambda_handler, principal), page, prefix=PREFIX)
    assert openapi["servers"] == [{"url": PREFIX}]  # "Try it out" calls /prod/v1/..., not /v1/...


def test_the_stage_prefix_changes_no_route(lambda_handler):
    status, _, body = lambda_fetch(lambda_handler)(PREFIX + "/v1/models")
    assert status == 401 and b"missing_api_key" in body
    status, _, body = lambda_fetch(lambda_handler)(PREFIX + "/health")
    assert status == 200 and b'"status":"ok"' in body


def test_stage_prefix_from_api_gateway_events():
    event = rest_event("GET", "/docs")
    assert stage_prefix(event) == PREFIX
    event["requestContext"]["path"] = "/ocr/v2/docs"  # a custom domain's base path mapping
    assert stage_prefix(event) == "/ocr/v2"
    event["requestContext"]["path"] = "/docs"  # a custom domain mapped at its root
    assert stage_prefix(event) == ""
    event["requestContext"]["path"] = "/prod/other"  # not the same request path: link from the root
    assert stage_prefix(event) == ""
    event["requestContext"]["path"] = "/pr'od<x>/docs"  # never into the page's script
    assert stage_prefix(event) == ""
    assert stage_prefix(None) == "" and stage_prefix({}) == ""


@pytest.mark.slow
def test_docs_from_the_lambda_zip_alone(lambda_bundle, tmp_path):
    """The zip carries what the page loads: served by the handler with only the zip and Lambda's runtime."""
    code_dir, runtime_dir = extract(lambda_bundle, tmp_path / "task"), runtime(tmp_path / "runtime")
    script = (
        # The repo last, only for the stdlib-only test helpers: the zip's packages shadow its own.
        "import sys; sys.path[:0] = sys.argv[1:3]; sys.path.append(sys.argv[3])\n"
        "import edge_api.handler, fastapi_offline\n"
        "assert edge_api.handler.__file__.startswith(sys.argv[1]) and fastapi_offline.__file__.startswith(sys.argv[1])\n"
        "from tests.utils.docs_page import assert_asset_folder_closed, assert_docs_offline, lambda_fetch\n"
        "for page in ('/docs', '/redoc'):\n"
        f"    assert_docs_offline(lambda_fetch(edge_api.handler.handler), page, prefix={PREFIX!r})\n"
        "print('docs ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-west-2", "WORKER_URL": "http://127.0.0.1:9",
           "EMIT_METRICS": "false"}  # fmt: skip
    result = subprocess.run([sys.executable, "-B", "-I", "-S", "-c", script, str(code_dir), str(runtime_dir), str(ROOT)],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.stdout.strip().endswith("docs ok"), result.stderr[-3000:]
