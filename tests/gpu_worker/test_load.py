"""Concurrency, callers that leave, and the deepseek engine behind the same HTTP API."""

import asyncio
import json

import httpx
import openai
import pytest
from PIL import Image

from tests.utils.documents import render_document, to_bytes
from tests.utils.requests import chat_body, data_url, image_message
from tests.utils.servers import EDGE_HEADERS, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def page_url():
    return data_url(render_document(["Concurrent page", "second line"]).png())


def test_64_requests_at_16_in_flight_get_200_or_429_and_every_200_is_stored(local_s3, page_url):
    worker = WorkerProcess(local_s3, MAX_QUEUE="4", MAX_BATCH_SIZE="2").start()
    try:

        async def fire():
            semaphore = asyncio.Semaphore(16)
            async with httpx.AsyncClient(timeout=120) as client:

                async def one(i):
                    async with semaphore:
                        return await client.post(worker.url + "/v1/chat/completions",
                                                 json=chat_body(page_url, task="ocr"),
                                                 headers={"X-Request-ID": f"load-{i}"})  # fmt: skip

                return await asyncio.gather(*(one(i) for i in range(64)))

        responses = asyncio.run(fire())
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(200) >= 4 and statuses.count(429) >= 1
        for response in responses:
            if response.status_code == 429:
                assert response.headers["retry-after"]
                assert response.json()["error"]["type"] == "rate_limit_error"
        for response in responses:  # each write lands just after its response
            if response.status_code == 200:
                local_s3.wait_for_key(response.json()["ocr"]["result"]["key"], 30)
        assert httpx.get(worker.url + "/health").status_code == 200
    finally:
        worker.stop()


def test_a_caller_that_disconnects_still_gets_its_result_stored(rapid_worker, local_s3):
    big = render_document(["Left early " + str(i) for i in range(14)], width=1400).png()
    with pytest.raises(httpx.TimeoutException):
        httpx.post(rapid_worker.url + "/v1/chat/completions", json=chat_body(data_url(big), task="ocr"),
                   headers={"X-Request-ID": "gone-caller-1", **EDGE_HEADERS}, timeout=0.3)  # fmt: skip
    key = local_s3.wait_for_key("/gone-caller-1/result.json", 60)
    stored = json.loads(local_s3.client().get_object(Bucket=local_s3.bucket, Key=key)["Body"].read())
    assert stored["status"] == 200
    assert "Left early 13" in stored["body"]["choices"][0]["message"]["content"]


def test_a_streaming_caller_that_disconnects_still_gets_its_result_stored(rapid_worker, local_s3):
    big = render_document(["Stream left " + str(i) for i in range(14)], width=1400).png()
    with httpx.stream("POST", rapid_worker.url + "/v1/chat/completions",
                      json=chat_body(data_url(big), task="ocr", stream=True),
                      headers={"X-Request-ID": "gone-stream-1", **EDGE_HEADERS}, timeout=60) as response:  # fmt: skip
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    local_s3.wait_for_key("/gone-stream-1/result.json", 60)


@pytest.fixture(scope="module")
def deepseek_worker(local_s3, tiny_model_dir):
    worker = WorkerProcess(local_s3, OCR_ENGINE="deepseek", DEEPSEEK_MODEL=str(tiny_model_dir), MAX_NEW_TOKENS="16",
                           HF_HUB_OFFLINE="1").start()  # fmt: skip
    yield worker
    worker.stop()


def test_deepseek_engine_behind_the_worker_sync_and_stream(deepseek_worker):
    client = openai.OpenAI(base_url=deepseek_worker.url + "/v1", api_key="x", max_retries=0, timeout=120)
    page = data_url(to_bytes(Image.new("RGB", (1200, 900), "white"), "PNG"))
    reply = client.chat.completions.create(model="deepseek-ocr-2", messages=image_message(page),
                                           extra_body={"task": "describe", "mode": "small"}, max_tokens=8)  # fmt: skip
    assert reply.model == "deepseek-ocr-2"
    assert reply.usage.completion_tokens == 8 and reply.choices[0].finish_reason == "length"
    assert reply.usage.prompt_tokens > 545
    ocr = reply.model_extra["ocr"]
    assert ocr["engine"] == "deepseek" and ocr["raw"]
    chunks = list(client.chat.completions.create(model="deepseek-ocr", messages=image_message(page, "Read it."),
                                                 stream=True, max_tokens=12))  # fmt: skip
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = chunks[-1].model_extra["ocr"]
    assert final["task"] == "custom"
    full = client.chat.completions.create(
        model="deepseek-ocr", messages=image_message(page, "Read it."), max_tokens=12
    )
    assert streamed == full.choices[0].message.content
    health = httpx.get(deepseek_worker.url + "/health").json()
    assert health["engine"] == "deepseek" and health["device"] == "cpu"
