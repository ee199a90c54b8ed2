"""The edge proves itself to the worker with X-Worker-Secret on every call, and only when one is configured."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge_api.app import build_app
from edge_api.settings import EdgeSettings, load_settings
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import ServerThread

pytestmark = pytest.mark.integration
SECRET = "s3cret-between-edge-and-worker"


class RecordingWorker:
    """A real HTTP server on loopback that answers like the worker and records the headers it got."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

        async def answer(request: Request) -> JSONResponse:
            self.seen.append((request.url.path, dict(request.headers)))
            if request.url.path == "/v1/models":
                return JSONResponse({"object": "list", "data": []})
            if request.url.path == "/health":
                return JSONResponse({"status": "ok"})
            return JSONResponse({"id": request.headers.get("x-request-id"), "object": "chat.completion",
                                 "choices": [], "usage": {"total_tokens": 1}})  # fmt: skip

        routes = [
            Route(p, answer, methods=["GET", "POST"])
            for p in ("/health", "/v1/models", "/v1/chat/completions")
        ]
        self.server = ServerThread(Starlette(routes=routes), health_path="/health")


@pytest.fixture
def recorder():
    worker = RecordingWorker()
    worker.server.start()
    yield worker
    worker.server.stop()


def call_every_forwarding_route(recorder: RecordingWorker, **settings: object) -> None:
    edge = ServerThread(build_app(EdgeSettings(worker_url=recorder.server.url, local_api_keys="sk-k", **settings)),
                        health_path="/health").start()  # fmt: skip
    try:
        recorder.seen.clear()
        headers = {"x-api-key": "sk-k"}
        assert httpx.get(edge.url + "/health").json()["worker"] == "ok"
        assert httpx.get(edge.url + "/v1/models", headers=headers).status_code == 200
        body = chat_body(data_url(b"\x89PNG\r\n\x1a\n" + b"\0" * 64))
        assert httpx.post(edge.url + "/v1/chat/completions", json=body, headers=headers).status_code == 200
    finally:
        edge.stop()
    assert {path for path, _ in recorder.seen} == {"/health", "/v1/models", "/v1/chat/completions"}


def test_every_call_to_the_worker_carries_the_secret(recorder):
    call_every_forwarding_route(recorder, worker_shared_secret=SECRET)
    assert all(headers.get("x-worker-secret") == SECRET for _, headers in recorder.seen), recorder.seen


def test_no_secret_configured_means_no_header_sent(recorder):
    call_every_forwarding_route(recorder)
    assert not [path for path, headers in recorder.seen if "x-worker-secret" in headers]


def test_the_secret_comes_from_its_environment_variable_and_never_shows(monkeypatch):
    monkeypatch.setenv("WORKER_SHARED_SECRET", SECRET)
    settings = load_settings()
    assert settings.worker_headers == {"X-Worker-Secret": SECRET}
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
