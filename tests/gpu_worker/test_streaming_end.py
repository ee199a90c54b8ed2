"""Every stream ends: a final chunk with `ocr` (or an error chunk), then [DONE], whatever the engine does.

Real servers on loopback, called by the official openai client (and raw SSE where the ending itself is
asserted). Client timeouts are short, so a stream that does not end fails fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from types import SimpleNamespace

import httpx
import openai
import pytest
from PIL import Image

from gpu_worker.app import build_app
from gpu_worker.engines.base import Engine
from gpu_worker.protocol import (
    ChatCompletion,
    Choice,
    GatewayTimeout,
    ImageSize,
    InvalidRequest,
    OcrExtension,
    PageOcr,
    ResponseMessage,
    Usage,
)
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from gpu_worker.streaming import sse_events
from gpu_worker.types import OcrResult
from tests.utils.documents import render_document, to_bytes
from tests.utils.requests import chat_body, data_url, image_message
from tests.utils.servers import WORKER_SECRET, ServerThread

pytestmark = pytest.mark.integration
LINES = ["Invoice number 48213", "Total amount due"]
BLANK = data_url(to_bytes(Image.new("RGB", (120, 90), "white"), "PNG"))
FAST = 5.0  # seconds a scripted stream may take to end (the worker's own deadline is far longer)
RAPID = 30.0  # RapidOCR reads a small page in a few seconds on shared cores; the deadline is 100 s


class PieceEngine(Engine):
    """Sends `pieces` through on_token, optionally waits on `gate`, then answers, fails, or raises."""

    name = model_id = "pieces"
    tasks = ("markdown", "ocr", "locate")

    def __init__(self, pieces=(), text="", raw=None, error=None, raises=None, gate=None):
        self.pieces, self.text, self.raw = list(pieces), text, raw if raw is not None else text
        self.error, self.raises, self.gate = error, raises, gate

    def load(self):
        pass

    def run(self, batch, on_token=None):
        for row in range(len(batch)):
            for piece in self.pieces:
                if on_token is not None:
                    on_token(row, piece)
        if self.gate is not None:
            self.gate.wait(8)
        if self.raises is not None:
            raise self.raises
        if self.error is not None:
            return [OcrResult(error=self.error) for _ in batch]
        return [OcrResult(text=self.text, raw=self.raw, completion_tokens=1) for _ in batch]


@pytest.fixture
def serve(local_s3, tmp_path):
    servers = []

    def start(engine, **overrides):
        cfg = WorkerSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint,
                             worker_shared_secret=WORKER_SECRET, spool_dir=str(tmp_path / f"spool-{len(servers)}"),
                             **overrides)  # fmt: skip
        server = ServerThread(build_app(cfg, engine=engine, store=ResultStore(cfg)), settings=cfg).start()
        servers.append(server)
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return server

    yield start
    for server in servers:
        server.stop()


def events(url, body, timeout=FAST):
    """The `data:` payloads of one streamed request, read with a hard per-read timeout."""
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=timeout) as response:
        assert response.status_code == 200
        return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def client(url, timeout=FAST):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=timeout)


def assert_ends_with_ocr(payloads):
    """[DONE] last, and just before it the final chunk with finish_reason and `ocr`."""
    assert payloads[-1] == "[DONE]"
    final = json.loads(payloads[-2])
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert "ocr" in final
    return final


def assert_ends_with_error(payloads):
    assert payloads[-1] == "[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert error["message"]
    return error


# ---- RapidOCR as a real worker process -------------------------------------------------------------


@pytest.fixture(scope="module")
def page():
    return data_url(render_document(LINES).png())


def test_rapid_locate_that_matches_nothing_ends_the_stream(rapid_worker, page):
    started = time.monotonic()
    stream = client(rapid_worker.url, RAPID).chat.completions.create(
        model="deepseek-ocr", messages=image_message(page), stream=True,
        extra_body={"task": "locate", "ref_text": "purchase order zebra"},
    )  # fmt: skip
    chunks = list(stream)
    assert time.monotonic() - started < RAPID
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["ocr"]["boxes"] == []
    body = chat_body(page, task="locate", ref_text="purchase order zebra", stream=True)
    assert_ends_with_ocr(events(rapid_worker.url, body, RAPID))


def test_rapid_empty_page_ends_the_stream(rapid_worker):
    payloads = events(rapid_worker.url, chat_body(BLANK, task="ocr", stream=True), RAPID)
    final = assert_ends_with_ocr(payloads)
    assert final["ocr"]["boxes"] == []
    contents = [json.loads(p)["choices"][0]["delta"].get("content") or "" for p in payloads[:-1]]
    assert "".join(contents) == ""


def test_rapid_locate_that_matches_streams_its_box_text(rapid_worker, page):
    chunks = list(client(rapid_worker.url, RAPID).chat.completions.create(
        model="deepseek-ocr", messages=image_message(page), stream=True,
        extra_body={"task": "locate", "ref_text": "total amount"},
    ))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("total amount: [")
    (box,) = chunks[-1].model_extra["ocr"]["boxes"]
    assert box["label"] == "total amount" and box["text"] == "Total amount due"  # the API's text per box


# ---- scripted engines in-process: every way a job can end ------------------------------------------


def test_an_engine_that_sends_no_pieces_ends_the_stream_at_once(serve):
    server = serve(PieceEngine(text=""))
    started = time.monotonic()
    chunks = list(client(server.url).chat.completions.create(
        model="deepseek-ocr", messages=image_message(BLANK), stream=True))  # fmt: skip
    assert time.monotonic() - started < FAST
    assert chunks[-1].choices[0].finish_reason == "stop" and "ocr" in chunks[-1].model_extra
    assert_ends_with_ocr(events(server.url, chat_body(BLANK, stream=True)))


def test_a_final_text_without_pieces_is_sent_before_the_final_chunk(serve):
    server = serve(PieceEngine(text="Hello world"))
    payloads = events(server.url, chat_body(BLANK, stream=True))
    assert_ends_with_ocr(payloads)
    deltas = [json.loads(p)["choices"][0]["delta"].get("content") or "" for p in payloads[:-1]]
    assert "".join(deltas) == "Hello world"


def test_pieces_reach_the_client_while_the_engine_still_runs(serve):
    gate = threading.Event()
    server = serve(PieceEngine(pieces=["Hel", "lo"], text="Hello", gate=gate))
    seen = []
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=chat_body(BLANK, stream=True),
                      timeout=FAST) as response:  # fmt: skip
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            seen.append(line[len("data: ") :])
            if seen[-1] == "[DONE]":
                continue
            content = (json.loads(seen[-1])["choices"] or [{}])[0].get("delta", {}).get("content")
            if content and not gate.is_set():
                assert "Hello".startswith(content)  # the engine is still running: this text came live
                gate.set()
    assert_ends_with_ocr(seen)
    assert gate.is_set()


def test_an_engine_raising_mid_stream_ends_with_an_error_chunk_then_done(serve):
    server = serve(PieceEngine(pieces=["partial ", "text"], raises=RuntimeError("boom")))
    payloads = events(server.url, chat_body(BLANK, stream=True))
    error = assert_ends_with_error(payloads)
    assert "RuntimeError" in error["message"]
    assert any("partial" in p for p in payloads)
    with pytest.raises(openai.APIError, match="RuntimeError"):
        list(client(server.url).chat.completions.create(model="deepseek-ocr", messages=image_message(BLANK),
                                                        stream=True))  # fmt: skip


def test_a_request_refused_mid_way_ends_with_its_error_then_done(serve):
    refusal = InvalidRequest("This page cannot be read.", param="image", code="unreadable_page")
    server = serve(PieceEngine(pieces=["some "], error=refusal))
    error = assert_ends_with_error(events(server.url, chat_body(BLANK, stream=True)))
    assert error["code"] == "unreadable_page" and error["message"] == "This page cannot be read."


def test_a_result_error_that_is_not_a_service_error_still_ends_the_stream(serve):
    server = serve(PieceEngine(error=ValueError("bad tensor")))
    error = assert_ends_with_error(events(server.url, chat_body(BLANK, stream=True)))
    assert "ValueError" in error["message"] and "bad tensor" not in error["message"]


def test_a_stream_past_its_deadline_ends_with_a_504_chunk_then_done(serve):
    gate = threading.Event()
    server = serve(PieceEngine(pieces=["slow"], gate=gate), request_timeout_s=0.5)
    try:
        started = time.monotonic()
        error = assert_ends_with_error(events(server.url, chat_body(BLANK, stream=True)))
        assert time.monotonic() - started < FAST
        assert "timed out" in error["message"]
    finally:
        gate.set()


# ---- DeepSeek on the tiny random model --------------------------------------------------------------


@pytest.mark.parametrize("extra", [{"task": "ocr"}, {"task": "locate", "ref_text": "Total"}])
def test_deepseek_tiny_streams_and_ends_with_the_final_content(serve, deepseek_engine, extra):
    server = serve(deepseek_engine)
    page = data_url(render_document(LINES).png())
    sync = client(server.url, 120).chat.completions.create(
        model="deepseek-ocr", messages=image_message(page), extra_body=extra
    )
    payloads = events(server.url, chat_body(page, stream=True, **extra), timeout=120)
    final = assert_ends_with_ocr(payloads)
    deltas = [json.loads(p)["choices"][0]["delta"].get("content") or "" for p in payloads[:-1]]
    assert "".join(deltas) == sync.choices[0].message.content  # greedy: the same text both ways
    assert final["ocr"]["raw"] == sync.model_extra["ocr"]["raw"]


def test_a_streamed_document_sends_every_page_even_when_the_first_pages_stream_did_not_match_it():
    """`finish` sends nothing more of a text the stream did not match; a document's later pages are sent anyway."""
    size = ImageSize(width=10, height=10)
    pages = [PageOcr(page=n, image=size, raw=t, text=t) for n, t in ((1, "Hello world"), (2, "Second page"))]
    content = "Hello world\n\n<!-- page 2 -->\n\nSecond page"
    answer = ChatCompletion(
        id="ocr-doc", model="m", usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
        choices=[Choice(message=ResponseMessage(content=content), finish_reason="stop")],
        ocr=OcrExtension(request_id="ocr-doc", task="ocr", mode="tiny", engine="e", image=size, raw=content,
                         pages=pages),
    )  # fmt: skip

    async def scenario():
        pieces = asyncio.Queue()
        for piece in ("Hello wor", "ld!! "):  # a first-page stream that strays from the page's final text
            pieces.put_nowait(piece)

        async def done():
            await asyncio.sleep(0.05)
            return answer

        job = SimpleNamespace(request_id="ocr-doc", pieces=pieces, task=asyncio.ensure_future(done()))
        events = sse_events(job, "m", time.perf_counter() + 5, lambda: GatewayTimeout("late"))
        return [event async for event in events]

    events = asyncio.run(scenario())
    assert events[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.startswith("Hello wor") and text.endswith("\n\n<!-- page 2 -->\n\nSecond page"), text
