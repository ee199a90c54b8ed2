"""uvicorn with slow and oversized clients bounded: a header deadline, a head-size cap and a connection cap.

The parser is httptools (llhttp), uvicorn's fast one: at one caller it takes about 0.25 ms off each request against
h11 on a small machine (`bench/worker_http.py`). uvicorn bounds neither a request head's time nor its size (a
client trickling one header byte a second keeps its connection, as every byte cancels the keep-alive timer; and
llhttp hands header bytes to httptools, which gathers them without limit), so the protocol is extended here:
- each request's head must be complete within the header timeout of the connection opening (or of the end of the
  previous exchange), or the connection is dropped;
- a head over `max_head_bytes` is answered 431 and the connection closed (h11 had a 16 KiB limit of its own), and
  so are a chunked body's trailers and chunk lines past that size (plus a little per chunk);
- a connection above the cap is answered 503 and closed;
- a request that is not valid HTTP is answered 400 and the connection closed, as uvicorn does, in the error shape.
Every refusal is in the OpenAI error shape. The body deadline is each app's own (`limits.py`). Torch-free: the
edge's local server (`edge_api/serve.py`) uses it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gpu_worker.protocol import error_body
from gpu_worker.settings import WorkerSettings

log = logging.getLogger(__name__)
MAX_HEAD_BYTES = 16 * 1024  # as h11's default; API Gateway allows 10 KB of headers, an ALB 64 KB
FRAMING_PER_CHUNK = 64  # a chunk's size line and line ends, with room for an extension


def _refusal(status: str, message: str, type_: str, code: str, extra: str = "") -> bytes:
    body = json.dumps(error_body(message, type_, None, code), separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}connection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


OVER_CAPACITY = _refusal("503 Service Unavailable", "The server has too many open connections; retry shortly.",
                         "api_error", "too_many_connections", "retry-after: 1\r\n")  # fmt: skip


class HeadTooLarge(Exception):
    """Raised from the parser's callback to stop it at a head over the cap."""


class BoundedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus a header deadline, a head-size cap and a connection cap (set by `bounded_protocol`).

    The head clock and byte count run from the connection's start, or from the end of the previous exchange (its
    request read and its response sent), to the end of the next head. A chunked body's framing (chunk sizes and
    trailers, which httptools gathers as it does headers) is held to the same cap, plus a little per chunk."""

    header_timeout_s: float = 10.0
    max_connections: int = 256
    max_head_bytes: int = MAX_HEAD_BYTES
    _header_timer: asyncio.TimerHandle | None = None
    _in_head = True  # the bytes arriving belong to a request head (else to a body)
    _head_bytes = 0  # a head's bytes so far, counted per chunk read
    _head_fields = 0  # its target and headers as the parser hands them over (a head read in one chunk)
    _framing = 0  # an open body's bytes that are not its data: chunk sizes, their line ends, trailers
    _chunks = 0  # the body's chunks so far
    _delivered = 0  # body data handed over during the chunk being parsed
    _boundary = False  # a head or body ended inside the chunk being parsed (it mixes both: not counted)
    _head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept, or answer 503 and close when over the cap; start the head clock."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection cap (%d) reached: refusing a new connection", self.max_connections)
            self._refuse(OVER_CAPACITY)
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        """Parse; then count the chunk towards the open head, or towards the open body's framing, and refuse either
        once over the cap (httptools gathers an unfinished header's or trailer's bytes itself, before any callback
        could count them). A chunk in which a head or a body ends is not counted, so either may run one chunk over
        the cap before it is cut."""
        self._boundary, self._delivered = False, 0
        super().data_received(data)
        if self._boundary or self.transport.is_closing():
            return
        if self._in_head:
            self._head_bytes += len(data)
            over = self._head_bytes > self.max_head_bytes
        else:
            self._framing += len(data) - self._delivered
            over = self._framing > self.max_head_bytes + FRAMING_PER_CHUNK * self._chunks
        if over:
            self._refuse_head()

    def on_message_begin(self) -> None:
        """A new request: its head's count starts from nothing."""
        self._head_fields = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """Count the request target towards the head's size."""
        self._head_fields += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header towards the head's size (a trailer counts as framing, per chunk read)."""
        if self._in_head:
            self._head_fields += len(name) + len(value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: stop its clock; refuse it when its target and headers are over the cap."""
        fields, self._in_head, self._boundary = self._head_fields, False, True
        self._head_bytes = self._framing = self._chunks = 0
        self._disarm_header_timer()
        if fields > self.max_head_bytes:
            self._head_too_large = True
            raise HeadTooLarge  # stops the parser; uvicorn answers a parser error with send_400_response
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Body data is not framing."""
        self._delivered += len(body)
        super().on_body(body)

    def on_chunk_header(self) -> None:
        """Each chunk may add a few bytes of framing."""
        self._chunks += 1

    def on_message_complete(self) -> None:
        """The request is read: what follows is the next head (its clock starts once this response is sent)."""
        self._in_head, self._head_bytes, self._boundary = True, 0, True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, in the error shape (uvicorn's is plain text): a 431 for an oversized
        head, else a 400. The connection is closed."""
        if self._head_too_large:
            self._refuse_head()
            return
        self._refuse(_refusal("400 Bad Request", "The request is not valid HTTP/1.1.", "invalid_request_error",
                              "invalid_http_request"))  # fmt: skip

    def _refuse_head(self) -> None:
        log.info("refusing a request head or chunked framing over %d bytes", self.max_head_bytes)
        message = f"The request head, or a chunked body's framing, is over {self.max_head_bytes} bytes."
        self._refuse(_refusal("431 Request Header Fields Too Large", message, "invalid_request_error",
                              "request_header_too_large"))  # fmt: skip

    def _refuse(self, answer: bytes) -> None:
        """Answer and close; while an earlier request's response is being sent, only drop the connection (a refusal
        written now would land inside that response)."""
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.abort()
            return
        self.transport.write(answer)
        self.transport.close()

    def on_response_complete(self) -> None:
        """A kept-alive connection must send its next request's head in time too. A response sent before its
        request's body was read closes the connection (as h11 does): the rest of that body is never waited for."""
        pipelined = bool(self.pipeline)  # a queued request's head is already in: it runs now
        super().on_response_complete()
        if pipelined or self.transport.is_closing():
            return
        if not self._in_head:
            self.transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the timer with the connection."""
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection that sent no complete request head within %g s", self.header_timeout_s
            )
            self.transport.abort()


def bounded_protocol(
    header_timeout_s: float, max_connections: int, max_head_bytes: int = MAX_HEAD_BYTES
) -> type[BoundedProtocol]:
    """A protocol class with these limits (uvicorn instantiates the class itself)."""
    attributes = {
        "header_timeout_s": header_timeout_s, "max_connections": max_connections, "max_head_bytes": max_head_bytes
    }  # fmt: skip
    return type("Bounded", (BoundedProtocol,), attributes)


def server_config(app: Any, settings: WorkerSettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration the worker runs with (also used by tests that serve an app in a thread)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "http": bounded_protocol(settings.header_timeout_s, settings.max_connections),
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": int(settings.request_timeout_s) + 5,
        **overrides,
    }
    return uvicorn.Config(app, **options)
