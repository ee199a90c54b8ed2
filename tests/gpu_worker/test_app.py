"""The worker as a real process with the rapidocr engine and a local S3 API, called by the openai client."""

import io
import json
import urllib.parse

import httpx
import openai
import pytest
from PIL import Image

from tests.utils.documents import overlap, render_document, to_bytes
from tests.utils.requests import chat_body, data_url, image_message
from tests.utils.servers import EDGE_HEADERS

pytestmark = pytest.mark.integration
LINES = ["Quarterly report 2026", "Revenue grew strongly", "Net profit margin"]


@pytest.fixture(scope="module")
def document():
    return render_document(LINES)


@pytest.fixture(scope="module")
def client(rapid_worker):
    return openai.OpenAI(base_url=rapid_worker.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def stored_result(local_s3, response_ocr):
    key = response_ocr["result"]["key"]
    local_s3.wait_for_key(key, 30)  # the write happens just after the response (off its path)
    return json.loads(local_s3.client().get_object(Bucket=local_s3.bucket, Key=key)["Body"].read())


def test_sync_ocr_through_the_openai_client(client, document, local_s3):
    reply = client.chat.completions.create(
        model="deepseek-ocr", messages=image_message(data_url(document.png())), extra_body={"task": "ocr"}
    )
    assert reply.choices[0].message.content.splitlines() == LINES
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "rapidocr"
    ocr = reply.model_extra["ocr"]
    assert ocr["engine"] == "rapidocr" and ocr["task"] == "ocr" and ocr["mode"] == "gundam"
    assert ocr["image"] == {"width": document.image.width, "height": document.image.height}
    assert ocr["request_id"] == reply.id
    assert ocr["result"]["key"].startswith("results/") and ocr["result"]["key"].endswith(
        f"/{reply.id}/result.json"
    )
    stored = stored_result(local_s3, ocr)
    assert stored["status"] == 200
    assert stored["body"]["choices"][0]["message"]["content"] == reply.choices[0].message.content


def test_locate_draws_the_box_where_the_text_is(client, document, local_s3):
    reply = client.chat.completions.create(
        model="deepseek-ocr",
        messages=image_message(data_url(document.png())),
        extra_body={"task": "locate", "ref_text": "revenue grew", "mode": "small"},
    )
    ocr = reply.model_extra["ocr"]
    assert ocr["mode"] == "small"
    assert len(ocr["boxes"]) == 1
    box = ocr["boxes"][0]["bbox"]
    assert overlap(box, document.lines[1].bbox) > 0.8
    link = ocr["annotated_image"]
    query = urllib.parse.parse_qs(urllib.parse.urlparse(link["url"]).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert urllib.parse.urlparse(link["url"]).path.endswith(link["key"])
    local_s3.wait_for_key(link["key"], 30)
    png = httpx.get(link["url"]).content
    drawn = Image.open(io.BytesIO(png)).convert("RGB")
    assert png.startswith(b"\x89PNG")
    x1, y1, x2, y2 = box
    assert drawn.getpixel((x1, (y1 + y2) // 2)) != (255, 255, 255)
    assert drawn.getpixel((x2 + 30, (y1 + y2) // 2)) == (255, 255, 255)


def test_stream_gives_chunks_then_ocr_then_done(client, document, rapid_worker):
    stream = client.chat.completions.create(
        model="deepseek-ocr", messages=image_message(data_url(document.png())), extra_body={"task": "markdown"},
        stream=True,
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "\n\n".join(LINES)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert final.model_extra["ocr"]["boxes"]
    raw = httpx.post(rapid_worker.url + "/v1/chat/completions", json=chat_body(data_url(document.png()), stream=True),
                     timeout=60).text  # fmt: skip
    assert raw.rstrip().endswith("data: [DONE]")


def test_request_id_is_taken_from_the_edge(rapid_worker, document, local_s3):
    response = httpx.post(rapid_worker.url + "/v1/chat/completions", json=chat_body(data_url(document.png())),
                          headers={"X-Request-ID": "edge-req-123", **EDGE_HEADERS}, timeout=60)  # fmt: skip
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "edge-req-123"
    local_s3.wait_for_key("/edge-req-123/result.json", 30)


@pytest.mark.parametrize("secret", [None, "wrong-secret", ""])
def test_a_caller_without_the_shared_secret_cannot_choose_the_request_id(
    rapid_worker, document, local_s3, secret
):
    headers = {"X-Request-ID": "taken-over-1", "X-OCR-Owner": "someone-else"}
    if secret is not None:
        headers["X-Worker-Secret"] = secret
    response = httpx.post(rapid_worker.url + "/v1/chat/completions", json=chat_body(data_url(document.png())),
                          headers=headers, timeout=60)  # fmt: skip
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert request_id != "taken-over-1" and response.json()["id"] == request_id
    stored = stored_result(local_s3, response.json()["ocr"])
    assert stored["owner"] is None
    assert not [k for k in local_s3.object_keys("results/") if "/taken-over-1/" in k]


def test_models_livez_health_metrics(rapid_worker, client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["rapidocr", "deepseek-ocr"]
    card = models.data[0].model_extra
    assert {m["name"]: m["image_tokens"] for m in card["modes"]}["gundam"] == 1121
    assert card["tasks"] == ["markdown", "ocr", "locate"]
    assert httpx.get(rapid_worker.url + "/models").json()["data"][0]["id"] == "rapidocr"
    assert httpx.get(rapid_worker.url + "/livez").status_code == 200
    health = httpx.get(rapid_worker.url + "/health").json()
    assert health["status"] == "ok" and health["engine"] == "rapidocr" and health["device"] == "cpu"
    metrics = httpx.get(rapid_worker.url + "/metrics").text
    assert "ocr_requests_total" in metrics and "ocr_batch_size_bucket" in metrics


def test_unsupported_task_names_the_engine(client, document):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="deepseek-ocr", messages=image_message(data_url(document.png())),
                                       extra_body={"task": "describe"})  # fmt: skip
    assert "rapidocr" in err.value.body["message"]


def test_a_jpeg_and_a_webp_page_are_read(client, document):
    for fmt, mime in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        url = data_url(to_bytes(document.image, fmt, quality=95), mime)
        reply = client.chat.completions.create(model="rapidocr", messages=image_message(url),
                                               extra_body={"task": "ocr"})  # fmt: skip
        assert "Net profit margin" in reply.choices[0].message.content


@pytest.mark.parametrize("hostile", ["../../results/x", "a/b", "x" * 200, "id with spaces", "", ".", ".."])
def test_an_unsafe_request_id_header_is_replaced_not_used_as_a_key(rapid_worker, document, local_s3, hostile):
    response = httpx.post(rapid_worker.url + "/v1/chat/completions", json=chat_body(data_url(document.png())),
                          headers={"X-Request-ID": hostile, **EDGE_HEADERS}, timeout=60)  # fmt: skip
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert request_id != hostile and request_id.startswith("ocr-")
    key = response.json()["ocr"]["result"]["key"]
    assert key.endswith(f"/{request_id}/result.json") and ".." not in key
