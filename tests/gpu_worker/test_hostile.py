"""Bad requests a stranger can send: each gets its status and error type, and the worker stays healthy."""

import asyncio
import base64
import json
import time

import httpx
import pytest
from PIL import Image

from tests.utils.documents import to_bytes
from tests.utils.raw_http import ENDLESS_HEAD, ENDLESS_TRAILER, endless, exchange, statuses
from tests.utils.requests import chat_body, data_url, image_message
from tests.utils.servers import EDGE_HEADERS, LocalS3

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
    # Sent straight to the worker (no edge secret, so no owner): no upload is this caller's.
    ("s3 upload without an owner", chat_body("s3://ocr-results/uploads/k/missing.png"), 403, "permission_error"),
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


def owned_request(worker, url, owner, **headers):
    return httpx.post(worker.url + "/v1/chat/completions", json=chat_body(url),
                      headers={"X-OCR-Owner": owner, **headers}, timeout=60)  # fmt: skip


def test_an_upload_is_read_only_for_its_owner_as_vouched_for_by_the_edge(small_worker, local_s3):
    local_s3.client().put_object(Bucket=local_s3.bucket, Key="uploads/key-alice/page.png",
                                 Body=to_bytes(Image.new("RGB", (40, 30), "white"), "PNG"))  # fmt: skip
    url = "s3://ocr-results/uploads/key-alice/page.png"
    assert owned_request(small_worker, url, "key-alice", **EDGE_HEADERS).status_code == 200
    other = owned_request(small_worker, url, "key-bob", **EDGE_HEADERS)
    assert other.status_code == 403 and other.json()["error"]["code"] == "invalid_image_reference"
    # The owner header alone (a direct caller, no shared secret) is not believed.
    assert owned_request(small_worker, url, "key-alice").status_code == 403
    assert owned_request(small_worker, url, "key-alice", **{"X-Worker-Secret": "guess"}).status_code == 403
    missing = owned_request(
        small_worker, "s3://ocr-results/uploads/key-alice/missing.png", "key-alice", **EDGE_HEADERS
    )
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "image_not_found"


def test_a_page_of_extreme_aspect_ratio_is_answered_not_a_500(small_worker):
    thin = data_url(to_bytes(Image.new("RGB", (12000, 8), "white"), "PNG"))
    response = httpx.post(
        small_worker.url + "/v1/chat/completions", json=chat_body(thin, task="ocr"), timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == ""


# ---- slow clients -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_worker(local_s3: LocalS3):
    from tests.utils.servers import WorkerProcess

    worker = WorkerProcess(local_s3, HEADER_TIMEOUT_S="2", BODY_TIMEOUT_S="2", MAX_CONNECTIONS="64").start()
    yield worker
    worker.stop()


async def trickle(port: int, payload: bytes, interval: float, limit_s: float) -> float | None:
    """Send `payload` one byte per `interval`; the seconds until the server cut us, or None if it never did."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        for byte in payload:
            if time.monotonic() - started > limit_s:
                return None
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), interval)
            except TimeoutError:
                continue
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                return time.monotonic() - started
        return None
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    finally:
        writer.close()


def test_fifty_connections_trickling_headers_are_cut(guarded_worker):
    port = guarded_worker.port
    header = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200

    async def main():
        return await asyncio.gather(*(trickle(port, header, 1.0, 12) for _ in range(50)))

    cut_after = asyncio.run(main())
    assert None not in cut_after, f"{cut_after.count(None)} of 50 slow connections were never cut"
    assert max(cut_after) < 6  # header timeout 2 s (plus scheduling on a busy machine)
    assert httpx.get(guarded_worker.url + "/health").status_code == 200


def test_a_trickled_body_is_refused_with_408(guarded_worker):
    port = guarded_worker.port
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n")  # fmt: skip

    async def main():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        started = time.monotonic()
        for _ in range(20):
            writer.write(b" ")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                continue
            writer.close()
            return data, time.monotonic() - started
        writer.close()
        return b"", None

    data, elapsed = asyncio.run(main())
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b'"code":"request_timeout"' in data and elapsed < 6


def test_connections_over_the_cap_are_closed_at_once(guarded_worker):
    port = guarded_worker.port

    async def main():
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(90)]

        async def was_closed(reader):
            try:  # well inside the 2 s header timeout: only the cap can close a connection this soon
                data = await asyncio.wait_for(reader.read(), 0.5)  # to EOF: a 503 answer, or nothing
                assert data == b"" or data.startswith(b"HTTP/1.1 503"), data[:100]
                assert data == b"" or b"too_many_connections" in data
                return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True

        closed = await asyncio.gather(*(was_closed(reader) for reader, _ in streams))
        for _, writer in streams:
            writer.close()
        return sum(closed)

    closed = asyncio.run(main())
    assert 90 - 64 <= closed < 90
    time.sleep(2.5)  # the ones kept are cut by the header timeout; the worker answers again
    assert httpx.get(guarded_worker.url + "/health").status_code == 200


# ---- request heads: size, pipelining, an answer before the body ----------------------------------


def test_a_request_head_over_the_cap_is_431_in_the_error_shape(guarded_worker):
    port = guarded_worker.port
    kept, _ = exchange(
        port, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 15_000 + b"\r\n\r\n", expect=1
    )
    assert statuses(kept) == [200]  # under the cap (16 KiB): served
    big = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    for writes in ([big], [big[:9000], big[9000:]]):  # read whole, and read in two parts
        refused, closed = exchange(port, *writes)
        assert statuses(refused) == [431] and closed, refused[:200]
        error = json.loads(refused.partition(b"\r\n\r\n")[2])["error"]
        assert error["code"] == "request_header_too_large" and error["type"] == "invalid_request_error"
    assert httpx.get(guarded_worker.url + "/health").status_code == 200


@pytest.mark.parametrize(
    "garbage",
    [b"HELLO\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],
    ids=["not-http", "header-without-colon", "negative-length", "tls-hello"],
)  # fmt: skip
def test_a_request_that_is_not_http_is_400_in_the_error_shape(guarded_worker, garbage):
    reply, closed = exchange(guarded_worker.port, garbage, within_s=2.0)
    assert statuses(reply) == [400] and closed, reply[:200]
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["code"] == "invalid_http_request"


@pytest.mark.parametrize("opening", [ENDLESS_HEAD, ENDLESS_TRAILER], ids=["header", "trailer"])
def test_a_header_or_trailer_that_never_ends_is_cut_with_431(guarded_worker, opening):
    """httptools gathers an unfinished header's (or a chunked body's trailer's) bytes without limit."""
    reply, sent = endless(guarded_worker.port, opening)
    assert reply.startswith(b"HTTP/1.1 431"), (reply[:100], sent)
    assert httpx.get(guarded_worker.url + "/health").status_code == 200


def test_a_trailer_does_not_count_towards_the_next_head(guarded_worker):
    post = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: " + b"t" * 10_000 + b"\r\n\r\n")  # fmt: skip
    get = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 7_000 + b"\r\n\r\n"
    replies, _ = exchange(guarded_worker.port, post + get, expect=2)
    assert statuses(replies) == [422, 200], replies[:300]


def test_pipelined_requests_are_all_answered_in_order(guarded_worker):
    post = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{}")  # fmt: skip
    livez = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    port = guarded_worker.port
    replies, _ = exchange(port, livez + post + livez + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", expect=4)
    assert statuses(replies) == [200, 422, 200, 404], replies[:400]
    # a queued request whose body is still coming when the one before it is answered
    replies, _ = exchange(port, livez + post[:-1], post[-1:], expect=2)
    assert statuses(replies) == [200, 422], replies[:400]


def test_an_answer_sent_before_its_body_was_read_closes_the_connection(guarded_worker):
    """A body over the limit is refused on its Content-Length alone; the connection is then closed, not held
    open for the rest of a body that every trickled byte would keep alive (the header timeout here is 2 s)."""
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\n\r\n{")  # fmt: skip
    reply, closed = exchange(guarded_worker.port, head, within_s=1.5)
    assert statuses(reply) == [413] and closed, reply[:200]
