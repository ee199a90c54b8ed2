"""Bad requests a stranger can send: each gets its status and error type, and the worker stays healthy."""

import base64
import json

import httpx
import pytest
from PIL import Image

from tests.utils.documents import to_bytes
from tests.utils.requests import chat_body, data_url, image_message
from tests.utils.servers import LocalS3

pytestmark = pytest.mark.integration

PNG = data_url(to_bytes(Image.new("RGB", (40, 30), "white"), "PNG"))
BOMB = data_url(to_bytes(Image.new("1", (9000, 9000)), "PNG"))  # 81 Mpx in a few kB
GIF = data_url(to_bytes(Image.new("P", (10, 10)), "GIF"), "image/png")
TRUNCATED = data_url(to_bytes(Image.effect_noise((120, 120), 40).convert("RGB"), "PNG")[:300])
TEXT_AS_PNG = data_url(b"hello, not an image")
IMG = {"type": "image_url", "image_url": {"url": PNG}}


def body(**fields):
    return json.dumps({"model": "deepseek-ocr", "messages": image_message(PNG), **fields})


CASES = [
    # (name, raw body or dict, expected status, expected error type)
    ("not json", "{not json", 400, "invalid_request_error"),
    ("json array", "[1, 2]", 422, "invalid_request_error"),
    ("empty body", "", 422, "invalid_request_error"),
    ("no messages", {"model": "deepseek-ocr"}, 422, "invalid_request_error"),
    ("empty messages", {"model": "deepseek-ocr", "messages": []}, 422, "invalid_request_error"),
    ("messages not a list", {"messages": "hi"}, 422, "invalid_request_error"),
    ("unknown role", {"messages": [{"role": "robot", "content": "x"}]}, 422, "invalid_request_error"),
    ("unknown part type", {"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, 422, "invalid_request_error"),
    ("no image", {"messages": [{"role": "user", "content": "read this"}]}, 400, "invalid_request_error"),
    ("two images", {"messages": [{"role": "user", "content": [IMG, IMG]}]}, 400, "invalid_request_error"),
    ("image in assistant message", {"messages": [{"role": "assistant", "content": [IMG]}]}, 400, "invalid_request_error"),
    ("unknown model", chat_body(PNG, model="gpt-4o"), 404, "not_found_error"),
    ("unknown task", chat_body(PNG, task="translate"), 422, "invalid_request_error"),
    ("unknown mode", chat_body(PNG, mode="huge"), 422, "invalid_request_error"),
    ("locate without ref_text", chat_body(PNG, task="locate"), 400, "invalid_request_error"),
    ("ref_text too long", chat_body(PNG, task="locate", ref_text="x" * 201), 400, "invalid_request_error"),
    ("ref_text only control tokens", chat_body(PNG, task="locate", ref_text="<|ref|><image>"), 400, "invalid_request_error"),
    ("ref_text without locate", chat_body(PNG, task="ocr", ref_text="x"), 400, "invalid_request_error"),
    ("task the engine lacks", chat_body(PNG, task="figure"), 400, "invalid_request_error"),
    ("max_tokens zero", chat_body(PNG, max_tokens=0), 422, "invalid_request_error"),
    ("max_tokens huge", chat_body(PNG, max_tokens=10**9), 422, "invalid_request_error"),
    ("temperature negative", chat_body(PNG, temperature=-1), 422, "invalid_request_error"),
    ("temperature too high", chat_body(PNG, temperature=5), 422, "invalid_request_error"),
    ("n of two", chat_body(PNG, n=2), 422, "invalid_request_error"),
    ("http url", chat_body("https://example.com/page.png"), 400, "invalid_request_error"),
    ("file url", chat_body("file:///etc/passwd"), 400, "invalid_request_error"),
    ("data url not base64", chat_body("data:image/png,abc"), 400, "invalid_request_error"),
    ("bad base64", chat_body("data:image/png;base64,!!!!"), 400, "invalid_request_error"),
    ("empty image", chat_body("data:image/png;base64,"), 400, "invalid_request_error"),
    ("gif media type", chat_body("data:image/gif;base64,R0lGODlh"), 415, "invalid_request_error"),
    ("pdf header only", chat_body("data:application/pdf;base64,JVBERi0xLjQ="), 400, "invalid_request_error"),
    ("gif bytes labelled png", chat_body(GIF), 415, "invalid_request_error"),
    ("text labelled png", chat_body(TEXT_AS_PNG), 415, "invalid_request_error"),
    ("truncated png", chat_body(TRUNCATED), 400, "invalid_request_error"),
    ("decompression bomb", chat_body(BOMB), 413, "invalid_request_error"),
    ("oversize image", chat_body("data:image/png;base64," + base64.b64encode(b"\0" * 2_100_000).decode()), 413,
     "invalid_request_error"),
    ("s3 other bucket", chat_body("s3://someone-else/uploads/a.png"), 403, "permission_error"),
    ("s3 outside uploads", chat_body("s3://ocr-results/results/2026/x/result.json"), 403, "permission_error"),
    ("s3 missing upload", chat_body("s3://ocr-results/uploads/k/missing.png"), 400, "invalid_request_error"),
    ("s3 traversal", chat_body("s3://ocr-results/uploads/../results/x"), 400, "invalid_request_error"),
    ("url not a string", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]},
     422, "invalid_request_error"),
]  # fmt: skip


@pytest.fixture(scope="module")
def small_worker(local_s3: LocalS3):
    from tests.utils.servers import WorkerProcess

    worker = WorkerProcess(local_s3, MAX_IMAGE_BYTES="2000000", MAX_IMAGE_PIXELS="40000000").start()
    yield worker
    worker.stop()


@pytest.mark.parametrize("name, payload, status, error_type", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_a_clear_error(small_worker, name, payload, status, error_type):
    content = payload if isinstance(payload, str) else json.dumps(payload)
    response = httpx.post(small_worker.url + "/v1/chat/completions", content=content,
                          headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_route_and_method_have_the_error_shape(small_worker):
    assert httpx.get(small_worker.url + "/v1/nothing").json()["error"]["type"] == "not_found_error"
    response = httpx.get(small_worker.url + "/v1/chat/completions")
    assert response.status_code == 405 and "error" in response.json()


def test_a_body_over_the_limit_is_413(small_worker):
    response = httpx.post(small_worker.url + "/v1/chat/completions", content=b"x" * 5_000_000,
                          headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_health_is_still_200_after_every_bad_request(small_worker):
    for _, payload, _, _ in CASES:
        content = payload if isinstance(payload, str) else json.dumps(payload)
        httpx.post(small_worker.url + "/v1/chat/completions", content=content,
                   headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
    assert httpx.get(small_worker.url + "/health").status_code == 200
    assert small_worker.process.poll() is None


def test_a_chunked_body_over_the_limit_is_413_too(small_worker):
    def chunks():
        for _ in range(500):
            yield b"x" * 10_000

    response = httpx.post(small_worker.url + "/v1/chat/completions", content=chunks(),
                          headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert httpx.get(small_worker.url + "/health").status_code == 200
