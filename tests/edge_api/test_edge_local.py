"""The edge as a real local server (uvicorn) in front of the real worker, called like users call it."""

import base64
import json
import time

import httpx
import openai
import pytest
from PIL import Image

from edge_api.app import build_app
from edge_api.keys import key_id
from edge_api.settings import EdgeSettings
from gpu_worker.app import build_app as build_worker
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from tests.utils.documents import render_document, to_bytes
from tests.utils.engines import ScriptedEngine
from tests.utils.requests import chat_body, data_url, image_message
from tests.utils.servers import WORKER_SECRET, ServerThread, free_port

pytestmark = pytest.mark.integration
LINES = ["Edge forwarded page", "Second row of text"]


@pytest.fixture(scope="module")
def page():
    return render_document(LINES).png()


def edge_client(edge_server, key):
    return openai.OpenAI(base_url=edge_server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def test_same_answer_through_the_edge_as_from_the_worker(edge_server, rapid_worker, edge_keys, page):
    kwargs = {"model": "deepseek-ocr", "messages": image_message(data_url(page)), "extra_body": {"task": "locate",
              "ref_text": "second row"}}  # fmt: skip
    via_edge = edge_client(edge_server, edge_keys[0]).chat.completions.create(**kwargs)
    direct = openai.OpenAI(base_url=rapid_worker.url + "/v1", api_key="x").chat.completions.create(**kwargs)
    assert via_edge.choices[0].message.content == direct.choices[0].message.content
    assert via_edge.model_extra["ocr"]["boxes"] == direct.model_extra["ocr"]["boxes"]
    assert via_edge.model_extra["ocr"]["boxes"]


def test_x_api_key_works_and_bad_or_missing_keys_do_not(edge_server, edge_keys, page):
    url = edge_server.url + "/v1/chat/completions"
    body = chat_body(data_url(page), task="ocr")
    ok = httpx.post(url, json=body, headers={"x-api-key": edge_keys[1]}, timeout=60)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"].splitlines() == LINES
    missing = httpx.post(url, json=body, timeout=60)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.PermissionDeniedError):
        edge_client(edge_server, "sk-wrong").chat.completions.create(
            model="deepseek-ocr", messages=image_message(data_url(page))
        )


def test_stream_and_models_through_the_edge(edge_server, edge_keys, page):
    client = edge_client(edge_server, edge_keys[0])
    chunks = list(client.chat.completions.create(model="deepseek-ocr", messages=image_message(data_url(page)),
                                                 stream=True, extra_body={"task": "ocr"}))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).splitlines() == LINES
    assert chunks[-1].model_extra["ocr"]["task"] == "ocr"
    assert [m.id for m in client.models.list().data] == ["rapidocr", "deepseek-ocr"]


def test_edge_validates_before_forwarding(edge_server, edge_keys, page):
    headers = {"x-api-key": edge_keys[0]}
    url = edge_server.url + "/v1/chat/completions"
    assert httpx.post(url, content=b"{bad", headers=headers).status_code == 400
    assert httpx.post(url, json=chat_body(data_url(page), task="locate"), headers=headers).status_code == 400
    assert httpx.post(url, json=chat_body("https://example.com/x.png"), headers=headers).status_code == 400
    big = data_url(b"\0" * 7_000_000)
    response = httpx.post(url, json=chat_body(big), headers=headers, timeout=60)
    assert response.status_code == 413 and "/v1/uploads" in response.json()["error"]["message"]
    chunked = httpx.post(url, content=(b"x" * 100_000 for _ in range(70)), headers=headers, timeout=60)
    assert chunked.status_code == 413
    unknown = httpx.post(url, json=chat_body(data_url(page), model="gpt-4o"), headers=headers, timeout=60)
    assert (
        unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    )  # relayed from the worker


def upload(edge_server, key, data, content_type="image/png"):
    grant = httpx.post(edge_server.url + "/v1/uploads", json={"content_type": content_type, "size": len(data)},
                       headers={"x-api-key": key})  # fmt: skip
    assert grant.status_code == 200, grant.text
    grant = grant.json()
    posted = httpx.post(grant["url"], data=grant["fields"], files={"file": ("page", data, content_type)})
    assert posted.status_code in (200, 204), posted.text
    return grant


def test_presigned_upload_then_ocr_by_reference(edge_server, edge_keys, page):
    grant = upload(edge_server, edge_keys[0], page)
    assert grant["image_url"].startswith(f"s3://ocr-results/uploads/{key_id(edge_keys[0])}/")
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    assert ["content-length-range", 1, len(page)] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert grant["expires_at"] - time.time() <= 300
    reply = edge_client(edge_server, edge_keys[0]).chat.completions.create(
        model="deepseek-ocr", messages=image_message(grant["image_url"]), extra_body={"task": "ocr"}
    )
    assert reply.choices[0].message.content.splitlines() == LINES
    with pytest.raises(openai.PermissionDeniedError):  # bob cannot OCR alice's upload
        edge_client(edge_server, edge_keys[1]).chat.completions.create(
            model="deepseek-ocr", messages=image_message(grant["image_url"])
        )


def test_uploads_refuse_non_images_and_oversize(edge_server, edge_keys):
    headers = {"x-api-key": edge_keys[0]}
    pdf = httpx.post(
        edge_server.url + "/v1/uploads", json={"content_type": "application/pdf", "size": 10}, headers=headers
    )
    assert pdf.status_code == 200 and pdf.json()["image_url"].endswith(".pdf")  # PDFs: their own limit
    for content_type, size, status in (("application/pdf", 10**10, 413), ("application/zip", 10, 415)):
        answer = httpx.post(edge_server.url + "/v1/uploads", json={"content_type": content_type, "size": size},
                            headers=headers)  # fmt: skip
        assert answer.status_code == status
    huge = httpx.post(
        edge_server.url + "/v1/uploads", json={"content_type": "image/png", "size": 10**9}, headers=headers
    )
    assert huge.status_code == 413
    assert httpx.post(edge_server.url + "/v1/uploads", json={"size": 5}, headers=headers).status_code == 422
    for bad in ({"content_type": "image/png", "size": 0}, {"content_type": "image/png", "size": -5},
                {"content_type": "image/png", "size": "big"}, {"content_type": "x" * 500, "size": 5}):  # fmt: skip
        response = httpx.post(edge_server.url + "/v1/uploads", json=bad, headers=headers)
        assert response.status_code == 422 and response.json()["error"]["type"] == "invalid_request_error"
    svg = httpx.post(
        edge_server.url + "/v1/uploads", json={"content_type": "image/svg+xml", "size": 10}, headers=headers
    )
    assert svg.status_code == 415
    assert (
        httpx.post(edge_server.url + "/v1/uploads", json={"content_type": "image/png", "size": 5}).status_code
        == 401
    )


def test_results_by_id_for_the_same_key_only(edge_server, edge_keys, page):
    reply = edge_client(edge_server, edge_keys[0]).chat.completions.create(
        model="deepseek-ocr", messages=image_message(data_url(page)), extra_body={"task": "markdown"}
    )
    url = f"{edge_server.url}/v1/results/{reply.id}"
    # The worker stores the result just after answering: 404 ("still running") for a moment, then 200.
    deadline = time.monotonic() + 15
    mine = httpx.get(url, headers={"x-api-key": edge_keys[0]})
    while mine.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.1)
        mine = httpx.get(url, headers={"x-api-key": edge_keys[0]})
    assert mine.status_code == 200
    assert mine.json()["choices"][0]["message"]["content"] == reply.choices[0].message.content
    assert httpx.get(mine.json()["ocr"]["annotated_image"]["url"]).content.startswith(b"\x89PNG")
    theirs = httpx.get(url, headers={"x-api-key": edge_keys[1]})
    assert theirs.status_code == 404 and theirs.json()["error"]["type"] == "not_found_error"
    assert (
        httpx.get(
            f"{edge_server.url}/v1/results/req-unknown", headers={"x-api-key": edge_keys[0]}
        ).status_code
        == 404
    )
    assert httpx.get(
        f"{edge_server.url}/v1/results/a..b%2Fc", headers={"x-api-key": edge_keys[0]}
    ).status_code in (400, 404)


def local_edge(local_s3, worker_url, **overrides):
    settings = EdgeSettings(worker_url=worker_url, local_api_keys="sk-k", results_bucket=local_s3.bucket,
                            s3_endpoint_url=local_s3.endpoint, worker_shared_secret=WORKER_SECRET,
                            **overrides)  # fmt: skip
    return ServerThread(build_app(settings), health_path="/health").start()


def test_worker_down_is_502_and_health_says_so(local_s3, page):
    edge = local_edge(local_s3, f"http://127.0.0.1:{free_port()}")
    try:
        response = httpx.post(edge.url + "/v1/chat/completions", json=chat_body(data_url(page)),
                              headers={"x-api-key": "sk-k"}, timeout=30)  # fmt: skip
        assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unavailable"
        assert httpx.get(edge.url + "/health").json() == {"status": "ok", "worker": "unreachable"}
    finally:
        edge.stop()


def test_slow_worker_is_504_with_the_request_id(local_s3):
    cfg = WorkerSettings(
        results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint, worker_shared_secret=WORKER_SECRET
    )  # the edge's id is trusted only with the secret
    worker = ServerThread(build_worker(cfg, engine=ScriptedEngine(delay=2.0), store=ResultStore(cfg))).start()
    edge = local_edge(local_s3, worker.url, worker_timeout_s=0.5)
    try:
        while httpx.get(worker.url + "/health").status_code != 200:
            time.sleep(0.05)
        page = data_url(to_bytes(Image.new("RGB", (50, 40), "white"), "PNG"))
        response = httpx.post(edge.url + "/v1/chat/completions", json=chat_body(page),
                              headers={"x-api-key": "sk-k"}, timeout=30)  # fmt: skip
        assert response.status_code == 504
        assert len(response.headers.get_list("x-request-id")) == 1
        request_id = response.headers["x-request-id"]
        assert request_id in response.json()["error"]["message"]
        local_s3.wait_for_key(f"/{request_id}/result.json", 10)  # the worker still finished and stored it
    finally:
        edge.stop()
        worker.stop()
