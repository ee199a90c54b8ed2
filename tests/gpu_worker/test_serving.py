"""Serving behaviour with controllable engines (timeouts, readiness, S3 failure, shutdown) over real HTTP."""

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest
from PIL import Image

from gpu_worker.app import build_app
from gpu_worker.grounding import StreamCleaner
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from tests.utils import pdfs
from tests.utils.documents import to_bytes
from tests.utils.engines import ScriptedEngine
from tests.utils.raw_http import read_until_closed, statuses
from tests.utils.requests import chat_body, data_url, file_message
from tests.utils.servers import EDGE_HEADERS, WORKER_SECRET, ServerThread
from tests.utils.tcp_proxy import TcpProxy

PAGE = data_url(to_bytes(Image.new("RGB", (100, 80), "white"), "PNG"))


def settings(local_s3, spool_dir, **overrides):
    overrides = {"results_bucket": local_s3.bucket, "s3_endpoint_url": local_s3.endpoint,
                 "worker_shared_secret": WORKER_SECRET, "spool_dir": str(spool_dir), **overrides}  # fmt: skip
    return WorkerSettings(**overrides)


@pytest.fixture
def serve(local_s3, tmp_path):
    servers = []

    def start(engine, **overrides):
        cfg = settings(local_s3, tmp_path / f"spool-{len(servers)}", **overrides)
        server = ServerThread(build_app(cfg, engine=engine, store=ResultStore(cfg)), settings=cfg).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def wait_ready(server, timeout=10):
    deadline = time.monotonic() + timeout
    while httpx.get(server.url + "/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_timeout_is_504_with_the_request_id_and_the_result_is_stored_later(serve, local_s3):
    server = serve(ScriptedEngine(delay=1.0), request_timeout_s=0.3)
    wait_ready(server)
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE),
                          headers={"X-Request-ID": "slow-1", **EDGE_HEADERS}, timeout=10)  # fmt: skip
    assert response.status_code == 504
    assert "slow-1" in response.json()["error"]["message"]
    assert "will be stored" in response.json()["error"]["message"]
    assert response.headers["x-request-id"] == "slow-1"
    local_s3.wait_for_key("/slow-1/result.json", 10)


def test_health_is_503_while_loading_and_requests_are_503(serve):
    server = serve(ScriptedEngine(load_delay=1.5))
    assert httpx.get(server.url + "/livez").status_code == 200
    health = httpx.get(server.url + "/health")
    assert health.status_code == 503 and health.json()["status"] == "loading"
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE))
    assert response.status_code == 503 and response.headers["retry-after"]
    wait_ready(server)


def test_a_failed_load_is_reported_by_health(serve):
    server = serve(ScriptedEngine(load_error="weights not found at /models/x"))
    time.sleep(0.3)
    health = httpx.get(server.url + "/health")
    assert health.status_code == 503
    assert health.json()["status"] == "error" and "weights not found" in health.json()["error"]
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE))
    assert response.status_code == 503 and "weights not found" in response.json()["error"]["message"]


def test_results_s3_refused_are_spooled_and_land_once_s3_is_back(local_s3, tmp_path):
    """S3 refusing connections: the text is answered with its result link, and the result lands later."""
    with TcpProxy(("127.0.0.1", local_s3.port)) as proxy:
        cfg = WorkerSettings(results_bucket=local_s3.bucket, s3_endpoint_url=proxy.url, spool_dir=str(tmp_path),
                             spool_retry_s=0.2, s3_probe_interval_s=0.2, s3_max_attempts=1)  # fmt: skip
        server = ServerThread(
            build_app(cfg, engine=ScriptedEngine(), store=ResultStore(cfg)), settings=cfg
        ).start()
        try:
            wait_ready(server)
            proxy.cut()
            response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=60)
            assert response.status_code == 200
            body = response.json()
            assert body["choices"][0]["message"]["content"] == "hello"
            key = body["ocr"]["result"]["key"]
            assert key.endswith(f"/{body['id']}/result.json")
            deadline = time.monotonic() + 10
            while "ocr_spool_results 1.0" not in httpx.get(server.url + "/metrics").text:
                assert time.monotonic() < deadline, "the result never reached the spool"
                time.sleep(0.05)
            assert key not in local_s3.object_keys("results/")
            health = httpx.get(server.url + "/health")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
            assert (
                health.json()["degraded"] == ["s3"]
                and health.json()["dependencies"]["s3"]["spooled_results"] == 1
            )
            proxy.resume()
            local_s3.wait_for_key(f"/{body['id']}/result.json", 15)
            assert body["ocr"]["annotated_image"]["key"] in local_s3.object_keys("results/")
            metrics = httpx.get(server.url + "/metrics").text
            assert "ocr_spool_written_total 1.0" in metrics and "ocr_spool_results 0.0" in metrics
        finally:
            server.stop()


def test_requests_arriving_while_the_engine_is_busy_share_the_next_batch(serve):
    gate = threading.Event()
    engine = ScriptedEngine()
    server = serve(engine, max_batch_size=4, batch_timeout_ms=20)
    wait_ready(server)
    engine.batches.clear()
    engine.gate = gate  # the first request holds the engine; the next four queue behind it
    threads = [threading.Thread(target=httpx.post, args=(server.url + "/v1/chat/completions",),
                                kwargs={"json": chat_body(PAGE), "timeout": 10}) for _ in range(5)]  # fmt: skip
    threads[0].start()
    while not engine.batches:
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    loop = server.server.config.app.state.service.loop
    deadline = time.monotonic() + 10  # wait until all four wait in the queue, however slow the machine
    while loop.depth < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for thread in threads:
        thread.join()
    assert engine.batches == [1, 4]


def test_a_lone_request_is_not_held_in_the_batching_window(serve):
    server = serve(ScriptedEngine(), max_batch_size=8, batch_timeout_ms=2000)
    wait_ready(server)
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)
    assert response.status_code == 200
    assert response.json()["ocr"]["timings_ms"]["queue"] < 1000  # the window is 2000 ms


class CallbackRecorder(ScriptedEngine):
    """Records, per batch, which rows were asked to stream and whether a token callback came with them."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def run(self, batch, on_token=None):
        self.calls.append(([request.stream for request in batch], on_token is not None))
        return super().run(batch, on_token)


def test_the_engine_streams_only_for_requests_that_asked(serve):
    """Without a stream in the batch the engine gets no callback (no per-token read-back or decoding)."""
    engine = CallbackRecorder()
    server = serve(engine)
    wait_ready(server)
    engine.calls.clear()
    plain = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)
    streamed = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE, stream=True), timeout=10)
    assert plain.status_code == 200 and streamed.status_code == 200 and "[DONE]" in streamed.text
    assert engine.calls == [([False], False), ([True], True)]
    # A streamed PDF streams its first page; the pages share a batch, and only the first is decoded per step.
    engine.calls.clear()
    document = httpx.post(server.url + "/v1/chat/completions", json=pdf_body(stream=True), timeout=10)
    assert document.status_code == 200 and "[DONE]" in document.text
    assert engine.calls == [([True, False], True)]


@pytest.mark.parametrize("window_ms, batches", [(2000, [2]), (20, [1, 1])])
def test_a_request_waits_in_the_window_only_for_one_being_read(serve, monkeypatch, window_ms, batches):
    """An idle engine holds a request back only while another is still being read in, and never longer than
    the window: a page that comes in during its read then shares its batch instead of waiting a whole one."""
    import gpu_worker.serving as serving

    decode, slow_reading, fast_read = serving.decode_image, threading.Event(), threading.Event()

    def decode_the_wide_page_last(data, **limits):
        image = decode(data, **limits)
        if image.width == 101:  # still being read when the other page is queued, and for 0.3 s after
            slow_reading.set()
            assert fast_read.wait(10)
            time.sleep(0.3)
        else:
            fast_read.set()
        return image

    monkeypatch.setattr(serving, "decode_image", decode_the_wide_page_last)
    engine = ScriptedEngine()
    server = serve(engine, max_batch_size=4, batch_timeout_ms=window_ms)
    wait_ready(server)
    engine.batches.clear()
    wide = data_url(to_bytes(Image.new("RGB", (101, 80), "white"), "PNG"))
    answers = {}
    slow = threading.Thread(target=lambda: answers.__setitem__("slow", httpx.post(
        server.url + "/v1/chat/completions", json=chat_body(wide), timeout=10)))  # fmt: skip
    slow.start()
    assert slow_reading.wait(5)
    answers["fast"] = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)
    slow.join()
    assert answers["fast"].status_code == 200 and answers["slow"].status_code == 200
    assert engine.batches == batches
    if window_ms > 1000:  # the hold ended when the page came in, not at the end of the window
        assert answers["fast"].json()["ocr"]["timings_ms"]["queue"] < window_ms / 2


def test_shutdown_finishes_in_flight_requests(local_s3, tmp_path):
    cfg = settings(local_s3, tmp_path)
    server = ServerThread(build_app(cfg, engine=ScriptedEngine(delay=1.0), store=ResultStore(cfg))).start()
    wait_ready(server)
    answers = []
    caller = threading.Thread(target=lambda: answers.append(
        httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)))  # fmt: skip
    caller.start()
    time.sleep(0.3)
    server.stop()
    caller.join()
    assert answers and answers[0].status_code == 200


def test_stream_cleaner_sends_clean_text_that_adds_up():
    pieces = ["<|ref|>ti", "tle<|/ref|><|det|>[[1, 2,", " 3, 4]]<|/det|>\n# Head", "ing\n\nBody"]
    cleaner = StreamCleaner()
    sent = "".join(cleaner.feed(p) for p in pieces)
    sent += cleaner.finish("# Heading\n\nBody")
    assert sent == "# Heading\n\nBody"
    assert "<|" not in sent


def test_a_request_that_would_wait_past_its_budget_gets_an_early_429_not_a_late_504(serve):
    server = serve(ScriptedEngine(delay=0.6), max_batch_size=1, request_timeout_s=2.0)
    wait_ready(server)
    httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)  # learn the batch time
    answers = []

    def call():
        started = time.monotonic()
        response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE), timeout=10)
        answers.append((response, time.monotonic() - started))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    statuses = sorted(response.status_code for response, _ in answers)
    assert 504 not in statuses, statuses
    assert statuses.count(200) >= 2 and statuses.count(429) >= 3, statuses
    for response, seconds in answers:
        if response.status_code == 429:
            assert seconds < 1.5  # refused on arrival, well before the 2 s budget runs out
            assert int(response.headers["retry-after"]) >= 1
            assert "estimated wait" in response.json()["error"]["message"]
    assert "ocr_admission_rejected_total" in httpx.get(server.url + "/metrics").text


def pdf_body(**extra):
    """A two-page PDF as the openai SDK sends a file."""
    data, _ = pdfs.text_document(2)
    return {"model": "deepseek-ocr", "messages": file_message(data), **extra}


@pytest.mark.parametrize("document", [False, True], ids=["image", "pdf"])
def test_a_worker_without_credentials_answers_the_text_and_says_nothing_is_stored(
    local_s3, tmp_path, document
):
    """A PDF's links were signed outside the guard a single image had: no credentials made its answer a 500."""
    from botocore.exceptions import NoCredentialsError

    cfg = settings(local_s3, tmp_path)
    store = ResultStore(cfg)

    def no_credentials(key):
        raise NoCredentialsError()

    store.link = no_credentials  # what botocore raises when it finds no credentials to sign with
    server = ServerThread(build_app(cfg, engine=ScriptedEngine(), store=store), settings=cfg).start()
    try:
        wait_ready(server)
        body = pdf_body() if document else chat_body(PAGE)
        response = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == 200
        ocr = response.json()["ocr"]
        assert ocr["result"] is None and ocr["annotated_image"] is None
        assert ocr["warnings"] == ["The result could not be stored (NoCredentialsError)."]
        assert [page["annotated_image"] for page in ocr.get("pages") or []] == (
            [None, None] if document else []
        )
    finally:
        server.stop()


def held_answer(local_s3, tmp_path, hold_s, stream=False):
    """Drive the worker app as its server would, holding the send of the answer's last piece for `hold_s`
    (a busy server still sending it). Returns the answer's status, the S3 PUTs made while the send was held,
    and those made after it returned (each a key)."""
    cfg = settings(local_s3, tmp_path)
    store = ResultStore(cfg)
    during, after, held = [], [], threading.Event()
    real_put = store.put

    def put(key, body, content_type):
        (during if held.is_set() else after).append(key)
        return real_put(key, body, content_type)

    store.put = put
    app = build_app(cfg, engine=ScriptedEngine(), store=store)
    payload = json.dumps(chat_body(PAGE, stream=stream)).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    statuses = []

    async def scenario():
        async with app.router.lifespan_context(app):
            while not app.state.service.ready:
                await asyncio.sleep(0.01)
            requested = asyncio.Event()

            async def receive():
                if not requested.is_set():
                    requested.set()
                    return {"type": "http.request", "body": payload, "more_body": False}
                await asyncio.Event().wait()  # the client stays connected

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                elif not message.get("more_body"):  # the answer's last piece
                    held.set()
                    await asyncio.sleep(hold_s)
                    held.clear()

            await app(scope, receive, send)
            deadline = time.monotonic() + 10
            while not any(key.endswith("result.json") for key in during + after):
                assert time.monotonic() < deadline, "the result was never written"
                await asyncio.sleep(0.05)

    asyncio.run(scenario())
    return statuses, during, after


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_result_is_written_after_the_answer_has_gone_out(local_s3, tmp_path, monkeypatch, stream):
    """The write started while the answer was still being sent and competed with it for the CPU; it now waits
    until the server has taken the whole answer (the bound is raised here: only the answer may release it)."""
    monkeypatch.setattr("gpu_worker.results.ANSWER_WAIT_S", 60.0)
    statuses, during, after = held_answer(local_s3, tmp_path, hold_s=0.5, stream=stream)
    assert statuses == [200]
    assert during == []
    assert sorted(key.rsplit("/", 1)[1] for key in after) == ["annotated.png", "result.json"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_answer_releases_its_write_on_the_event_loop(local_s3, tmp_path, monkeypatch, stream):
    """Starlette runs a plain function given as a response's background in a worker thread; the release (an
    asyncio.Event, which is not thread-safe) was such a function, so it was set from that thread."""
    threads = []
    real_set = asyncio.Event.set

    def set_and_record(event):
        threads.append(threading.current_thread())
        real_set(event)

    monkeypatch.setattr(asyncio.Event, "set", set_and_record)
    monkeypatch.setattr("gpu_worker.results.ANSWER_WAIT_S", 60.0)  # only the answer releases the write
    statuses, _, after = held_answer(local_s3, tmp_path, hold_s=0.0, stream=stream)
    assert statuses == [200] and any(key.endswith("result.json") for key in after)
    assert threads and set(threads) == {threading.main_thread()}, [t.name for t in threads]


def test_an_answer_that_never_goes_out_does_not_hold_its_result_back(local_s3, tmp_path, monkeypatch):
    monkeypatch.setattr("gpu_worker.results.ANSWER_WAIT_S", 0.3)
    _, during, _ = held_answer(local_s3, tmp_path, hold_s=3.0)
    assert any(key.endswith("result.json") for key in during)


def test_an_answer_that_is_an_unexpected_error_releases_its_write_at_once(serve, local_s3, monkeypatch):
    """Only a ServiceError released the write; any other error left it waiting for the whole bound."""
    monkeypatch.setattr("gpu_worker.results.ANSWER_WAIT_S", 60.0)
    server = serve(ScriptedEngine(error=RuntimeError("row failed")))  # a plain exception: the answer is a 500
    wait_ready(server)
    response = httpx.post(server.url + "/v1/chat/completions", json=chat_body(PAGE),
                          headers={"X-Request-ID": "broken-1", **EDGE_HEADERS}, timeout=30)  # fmt: skip
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    local_s3.wait_for_key("/broken-1/result.json", 10)


def test_a_head_refused_while_an_answer_streams_drops_the_connection_not_into_the_stream(serve):
    """A pipelined head over the cap arrives while the answer before it is streaming: a 431 written then would land
    inside that stream's bytes, so the connection is dropped instead."""
    gate = threading.Event()
    server = serve(ScriptedEngine(gate=gate))  # the stream stays open until the gate is set
    wait_ready(server)
    body = json.dumps(chat_body(PAGE, stream=True)).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(head + body)
            started, _ = read_until_closed(sock, 10.0, expect=1)  # the stream's head and its role chunk
            assert statuses(started) == [200] and b"text/event-stream" in started, started[:300]
            sock.sendall(
                b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000
            )  # unfinished, over 16 KiB
            rest, closed = read_until_closed(sock, 5.0)
    finally:
        gate.set()
    assert closed and b"HTTP/1.1 431" not in rest, rest[:300]
