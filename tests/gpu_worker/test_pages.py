"""Inline PDFs on /v1/chat/completions: real worker processes (rapidocr, tiny DeepSeek) and the edge, called
by the official openai client with OpenAI's own `file` content part."""

import base64
import json

import httpx
import openai
import pytest

from gpu_worker.protocol import MODES
from tests.utils import pdfs
from tests.utils.documents import render_document
from tests.utils.requests import data_url, file_message, image_message

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mixed():
    return pdfs.mixed_document(4)


@pytest.fixture(scope="module")
def client(rapid_worker):
    return openai.OpenAI(base_url=rapid_worker.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def squash(text: str) -> str:
    return " ".join(text.split()).lower()


def test_a_four_page_pdf_reads_every_page_in_order(client, mixed, local_s3):
    data, texts = mixed
    reply = client.chat.completions.create(
        model="deepseek-ocr", messages=file_message(data), extra_body={"task": "ocr"}
    )
    content = reply.choices[0].message.content
    chunks = content.split("\n\n<!-- page ")
    assert len(chunks) == 4
    for number, (chunk, lines) in enumerate(zip(chunks, texts, strict=True), start=1):
        if number > 1:
            assert chunk.startswith(f"{number} -->\n\n")
        for line in lines:
            assert line.lower() in squash(chunk), (number, line, chunk)
    ocr = reply.model_extra["ocr"]
    assert [p["page"] for p in ocr["pages"]] == [1, 2, 3, 4]
    assert all(p["image"] == {"width": 1224, "height": 1584} for p in ocr["pages"])
    assert [squash(p["text"]) for p in ocr["pages"]] == [
        squash(c.split("-->", 1)[1]) if i else squash(c) for i, c in enumerate(chunks)
    ]
    assert ocr["image"] == {"width": 1224, "height": 1584} and ocr["boxes"] == []
    assert reply.usage.completion_tokens > 0
    local_s3.wait_for_key(ocr["result"]["key"], timeout=30)  # results are written just after the answer
    stored = json.loads(
        local_s3.client().get_object(Bucket=local_s3.bucket, Key=ocr["result"]["key"])["Body"].read()
    )
    assert stored["status"] == 200 and stored["body"]["choices"][0]["message"]["content"] == content


def test_locate_in_a_pdf_draws_an_annotated_image_per_page(client, local_s3):
    data, _ = pdfs.text_document(2)
    reply = client.chat.completions.create(
        model="deepseek-ocr",
        messages=file_message(data),
        extra_body={"task": "locate", "ref_text": "Invoice number"},
    )
    pages = reply.model_extra["ocr"]["pages"]
    for page in pages:
        assert page["boxes"], page
        key = page["annotated_image"]["key"]
        assert key.endswith(f"/pages/{page['page']:04d}/annotated.png")
        local_s3.wait_for_key(key, timeout=30)
        assert httpx.get(page["annotated_image"]["url"], timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_pdf_as_an_image_url_data_url_works_too(client):
    data, texts = pdfs.text_document(2)
    reply = client.chat.completions.create(
        model="deepseek-ocr",
        messages=image_message(data_url(data, "application/pdf")),
        extra_body={"task": "ocr"},
    )
    assert len(reply.model_extra["ocr"]["pages"]) == 2
    assert texts[1][1].lower() in squash(reply.choices[0].message.content)


def test_a_single_image_keeps_its_response_without_pages(client):
    page = render_document(["Just one page"])
    reply = client.chat.completions.create(
        model="deepseek-ocr", messages=image_message(data_url(page.png())), extra_body={"task": "ocr"}
    )
    assert "pages" not in reply.model_extra["ocr"]


def test_more_pages_than_max_sync_pages_is_413_naming_jobs(client):
    data, _ = pdfs.text_document(5)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="deepseek-ocr", messages=file_message(data))
    assert info.value.status_code == 413
    error = info.value.body
    assert error["code"] == "too_many_pages" and "/v1/jobs" in error["message"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (pdfs.encrypted(pdfs.text_document(1)[0]), 400, "pdf_encrypted"),
        (pdfs.text_document(2)[0][:300], 400, "invalid_pdf"),
        (pdfs.zero_pages(), 400, "invalid_pdf"),
        (b"\x89PNG\r\n\x1a\n not a pdf at all", 400, "invalid_pdf"),
        (pdfs.build_pdf([pdfs.Page(lines=["x"])], declared_count=10_000), 413, "too_many_pages"),
    ],
    ids=["encrypted", "truncated", "zero-pages", "png-called-pdf", "10000-declared"],
)
def test_hostile_pdfs_get_clear_answers(rapid_worker, data, status, code):
    body = {"model": "deepseek-ocr", "messages": file_message(data)}
    response = httpx.post(rapid_worker.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert httpx.get(rapid_worker.url + "/livez", timeout=5).status_code == 200


def test_a_file_id_is_a_clear_400(rapid_worker):
    body = {"model": "deepseek-ocr", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}  # fmt: skip
    response = httpx.post(rapid_worker.url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_file_reference"


def test_a_streamed_pdf_ends_with_the_pages(client):
    data, texts = pdfs.text_document(2)
    stream = client.chat.completions.create(
        model="deepseek-ocr", messages=file_message(data), extra_body={"task": "ocr"}, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "<!-- page 2 -->" in text and texts[1][0].lower() in squash(text)
    assert len(chunks[-1].model_extra["ocr"]["pages"]) == 2


def test_a_streamed_pdf_sends_the_first_page_before_the_rest_and_adds_up_to_the_answer(client):
    """The whole text came in one piece at the end; the first page now streams as it is read."""
    data, texts = pdfs.text_document(3)
    message = file_message(data)
    answer = client.chat.completions.create(
        model="deepseek-ocr", messages=message, extra_body={"task": "ocr"}
    )
    stream = client.chat.completions.create(
        model="deepseek-ocr", messages=message, extra_body={"task": "ocr"}, stream=True
    )
    deltas = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 2, deltas
    assert texts[0][0].lower() in squash(deltas[0]) and "<!-- page" not in deltas[0]
    assert "".join(deltas) == answer.choices[0].message.content


def test_through_the_edge_with_the_openai_client(edge_server, edge_keys):
    data, texts = pdfs.text_document(3)
    client = openai.OpenAI(base_url=edge_server.url + "/v1", api_key=edge_keys[0], max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="deepseek-ocr", messages=file_message(data, filename="report.pdf"), extra_body={"task": "ocr"}
    )
    assert [p["page"] for p in reply.model_extra["ocr"]["pages"]] == [1, 2, 3]
    assert texts[2][1].lower() in squash(reply.choices[0].message.content)


@pytest.fixture(scope="module")
def deepseek_worker(local_s3, tiny_model_dir):
    from tests.utils.servers import WorkerProcess

    worker = WorkerProcess(local_s3, OCR_ENGINE="deepseek", DEEPSEEK_MODEL=str(tiny_model_dir), MAX_NEW_TOKENS="16",
                           MAX_BATCH_SIZE="4").start(timeout=240)  # fmt: skip
    yield worker
    worker.stop()


def test_the_deepseek_engine_reads_a_pdf_page_by_page(deepseek_worker):
    data, _ = pdfs.mixed_document(3)
    client = openai.OpenAI(base_url=deepseek_worker.url + "/v1", api_key="unused", max_retries=0, timeout=240)
    reply = client.chat.completions.create(
        model="deepseek-ocr", messages=file_message(data), extra_body={"task": "ocr", "mode": "tiny"}
    )
    ocr = reply.model_extra["ocr"]
    assert reply.model == "deepseek-ocr-2" and [p["page"] for p in ocr["pages"]] == [1, 2, 3]
    content = reply.choices[0].message.content
    # The random tiny model writes nonsense, but each page's text sits in order between the markers.
    expected = ocr["pages"][0]["text"] + "".join(
        f"\n\n<!-- page {p['page']} -->\n\n{p['text']}" for p in ocr["pages"][1:]
    )
    assert content == expected
    assert reply.usage.prompt_tokens >= 3 * 257 and reply.usage.completion_tokens >= 3
    # What each page's image cost, and the document's sum (tiny mode: the global view only, no tiles).
    assert [(p["image_tokens"], p["tiles"]) for p in ocr["pages"]] == [(MODES["tiny"].image_tokens, None)] * 3
    assert ocr["image_tokens"] == 3 * MODES["tiny"].image_tokens < reply.usage.prompt_tokens
    # The pages ran as one batch: its engine time counts once, within the request's total.
    assert 0 < ocr["timings_ms"]["inference"] <= ocr["timings_ms"]["total"], ocr["timings_ms"]
    # Streamed, the first page's tokens come as they are generated, and the stream adds up to the same answer.
    stream = client.chat.completions.create(
        model="deepseek-ocr",
        messages=file_message(data),
        extra_body={"task": "ocr", "mode": "tiny"},
        stream=True,
    )
    deltas = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == content and len(deltas) >= 2, deltas


def test_base64_without_a_data_prefix_is_taken_as_a_pdf(rapid_worker):
    data, _ = pdfs.text_document(1)
    part = {"type": "file", "file": {"file_data": base64.b64encode(data).decode(), "filename": "x.pdf"}}
    body = {"model": "deepseek-ocr", "task": "ocr", "messages": [{"role": "user", "content": [part]}]}
    response = httpx.post(rapid_worker.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200 and len(response.json()["ocr"]["pages"]) == 1
