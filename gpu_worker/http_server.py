"""uvicorn with slow clients bounded: a header deadline per request and a connection cap.

uvicorn has no header read timeout (a client trickling one header byte a second keeps its connection,
and the keep-alive timer is cancelled by every byte), so the h11 protocol is extended here: each request's
head must be complete within the header timeout of the connection opening (or of the previous response),
and a connection above the cap is answered 503 (OpenAI error shape) and closed. The body deadline is each
app's own (`limits.py`). Torch-free: the edge's local server (`edge_api/serve.py`) uses it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gpu_worker.protocol import error_body
from gpu_worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def _over_capacity() -> bytes:
    body = json.dumps(error_body("The server has too many open connections; retry shortly.", "api_error", None,
                                 "too_many_connections")).encode()  # fmt: skip
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


OVER_CAPACITY = _over_capacity()


class BoundedH11Protocol(H11Protocol):
    """H11Protocol plus a header deadline and a connection cap (their values set by `bounded_protocol`)."""

    header_timeout_s: float = 10.0
    max_connections: int = 256
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept, or answer 503 and close when over the cap; start the header clock."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection cap (%d) reached: refusing a new connection", self.max_connections)
            transport.write(OVER_CAPACITY)
            transport.close()
            return
        self._arm_header_timer()

    def handle_events(self) -> None:
        """Stop the header clock once a request's head is complete."""
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        """A kept-alive connection must send its next request's head in time too."""
        super().on_response_complete()
        if not self.transport.is_closing():
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


def bounded_protocol(header_timeout_s: float, max_connections: int) -> type[BoundedH11Protocol]:
    """A protocol class with these limits (uvicorn instantiates the class itself)."""
    attributes = {"header_timeout_s": header_timeout_s, "max_connections": max_connections}
    return type("BoundedH11", (BoundedH11Protocol,), attributes)


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
