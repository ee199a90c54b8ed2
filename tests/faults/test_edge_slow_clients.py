"""Slow clients against the edge's local server: trickled headers and bodies are cut, others still served."""

import select
import socket
import time

import httpx
import pytest

from tests.utils.raw_http import ENDLESS_HEAD, ENDLESS_TRAILER, endless, exchange, statuses
from tests.utils.servers import EdgeProcess

pytestmark = pytest.mark.integration
KEY = "sk-edge-slow-clients"
HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 2, 3
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def edge(local_s3):
    server = EdgeProcess(local_s3, "http://127.0.0.1:9", KEY, HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
                         HTTP_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S), HTTP_MAX_CONNECTIONS="120").start()  # fmt: skip
    yield server
    server.stop()


class Trickler:
    """A client that sends `first` at once, then one more byte every `every` s, until the server cuts it."""

    def __init__(self, port: int, first: bytes, byte: bytes = b"a") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(first)
        self.sock.setblocking(False)
        self.byte = byte
        self.reply = b""
        self.closed_at: float | None = None

    def tick(self) -> None:
        """Read what the server said (a FIN or reset means cut), then trickle one more byte."""
        if self.closed_at is not None:
            return
        try:
            while select.select([self.sock], [], [], 0)[0]:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionResetError
                self.reply += data
            self.sock.send(self.byte)
        except OSError:
            self.closed_at = time.monotonic()
            self.sock.close()


def trickle(tricklers: list[Trickler], seconds: float, edge) -> list[int]:
    """Trickle for up to `seconds`; meanwhile a normal client is served. Its statuses."""
    deadline, statuses = time.monotonic() + seconds, []
    while time.monotonic() < deadline and any(t.closed_at is None for t in tricklers):
        for t in tricklers:
            t.tick()
        statuses.append(httpx.get(edge.url + "/health", timeout=5).status_code)
        time.sleep(0.5)
    for t in tricklers:
        if t.closed_at is None:
            t.sock.close()
    return statuses


def test_clients_trickling_headers_are_cut_and_others_still_served(edge):
    started = time.monotonic()
    tricklers = [Trickler(edge.port, HEAD + b"X-Slow: ") for _ in range(50)]
    statuses = trickle(tricklers, 15, edge)
    still_open = [t for t in tricklers if t.closed_at is None]
    assert not still_open, f"{len(still_open)} of 50 trickling connections still open after 15 s"
    latest = max(t.closed_at for t in tricklers) - started
    assert latest < HEADER_TIMEOUT_S + 4, f"the last was cut after {latest:.1f} s"
    assert statuses and set(statuses) == {200}


def test_clients_trickling_bodies_are_cut_with_a_408(edge):
    started = time.monotonic()
    with_key = HEAD + f"x-api-key: {KEY}\r\nContent-Length: 100000\r\n\r\n{{".encode()
    without_key = (
        HEAD + b"Content-Length: 100000\r\n\r\n{"
    )  # refused before its body is needed: cut all the same
    tricklers = [Trickler(edge.port, with_key) for _ in range(40)] + [
        Trickler(edge.port, without_key) for _ in range(10)
    ]
    statuses = trickle(tricklers, 15, edge)
    assert not [t for t in tricklers if t.closed_at is None]
    latest = max(t.closed_at for t in tricklers) - started
    assert latest < BODY_TIMEOUT_S + 4, f"the last was cut after {latest:.1f} s"
    assert all(t.reply.startswith(b"HTTP/1.1 408") for t in tricklers[:40]), {t.reply[:40] for t in tricklers}
    assert b'"code":"request_timeout"' in tricklers[0].reply
    assert statuses and set(statuses) == {200}


def test_idle_connections_that_send_nothing_are_closed(edge):
    started = time.monotonic()
    tricklers = [Trickler(edge.port, b"", byte=b"") for _ in range(20)]
    trickle(tricklers, 10, edge)
    assert not [t for t in tricklers if t.closed_at is None]
    assert max(t.closed_at for t in tricklers) - started < HEADER_TIMEOUT_S + 4


def test_connections_over_the_cap_are_refused_in_the_error_shape(edge):
    held = [socket.create_connection(("127.0.0.1", edge.port)) for _ in range(125)]
    try:
        time.sleep(0.3)
        response = httpx.get(edge.url + "/health", timeout=5)
        assert response.status_code == 503 and response.json()["error"]["code"] == "too_many_connections"
        assert int(response.headers["retry-after"]) > 0
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(edge.url + "/health", timeout=5).status_code == 200


def test_oversized_and_endless_request_heads_are_refused_431(edge):
    big, closed = exchange(edge.port, HEAD + b"X-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
    assert statuses(big) == [431] and closed, big[:200]
    assert b'"code":"request_header_too_large"' in big
    for opening in (ENDLESS_HEAD, ENDLESS_TRAILER):
        reply, sent = endless(edge.port, opening)
        assert reply.startswith(b"HTTP/1.1 431"), (reply[:100], sent)
    assert httpx.get(edge.url + "/health", timeout=5).status_code == 200
