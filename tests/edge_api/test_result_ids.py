"""Request ids in GET /v1/results: '.' and '..' walk out of a result's folder, so they are refused before S3."""

import asyncio
import json
import socket

import pytest

from edge_api.settings import EdgeSettings
from edge_api.store import EdgeStore
from gpu_worker.protocol import InvalidRequest
from tests.utils.apigw import LambdaContext, rest_event
from tests.utils.servers import free_port

pytestmark = pytest.mark.integration
HOSTILE = [".", "..", "%2E", "%2E%2E", ".%2E"]


def raw_get(port: int, path: str, key: str) -> tuple[int, dict]:
    """A GET sent byte for byte: an HTTP client library would normalise the dot segments away."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: edge\r\nx-api-key: {key}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("request_id", HOSTILE)
def test_dot_ids_are_a_400_from_the_local_edge(edge_server, edge_keys, request_id):
    status, body = raw_get(edge_server.port, f"/v1/results/{request_id}", edge_keys[0])
    assert status == 400 and body["error"]["code"] == "invalid_request_id", body
    assert body["error"]["param"] == "request_id"


@pytest.mark.parametrize("request_id", [".", ".."])
def test_dot_ids_are_a_400_through_the_lambda_handler(lambda_env, request_id):
    import edge_api.handler as module

    result = module.handler(rest_event("GET", f"/v1/results/{request_id}"), LambdaContext())
    assert result["statusCode"] == 400 and json.loads(result["body"])["error"]["code"] == "invalid_request_id"


@pytest.fixture
def lambda_env(monkeypatch):
    import importlib

    monkeypatch.setenv("WORKER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("EMIT_METRICS", "false")
    import edge_api.handler as module

    importlib.reload(module)


def test_the_store_refuses_them_without_asking_s3():
    # An S3 endpoint nobody listens on: asking it would be a 503, not a 400.
    store = EdgeStore(EdgeSettings(s3_endpoint_url=f"http://127.0.0.1:{free_port()}"))
    for request_id in (".", "..", "a/b", "", "x" * 129):
        with pytest.raises(InvalidRequest):
            asyncio.run(store.find_result(request_id, "key-1"))
    assert store._client is None  # no client was even built
