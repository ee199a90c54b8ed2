"""At the door, before routing: every request body is read under a size limit and a deadline.

FastAPI would read a body of any size, as slowly as the client sends it; here a body over MAX_BODY_BYTES is a
413 (with the hint to upload) and one not received within HTTP_BODY_TIMEOUT_S a 408 that closes the
connection, whatever the route and whether or not it would have read the body. Under Mangum the body is
already whole, so this costs nothing there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_worker.protocol import PayloadTooLarge, RequestTimeout


def too_large(limit: int) -> PayloadTooLarge:
    """The 413 for a body over `limit` bytes (Lambda's payload limit), pointing at uploads."""
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes; upload large images with POST /v1/uploads.",
        code="payload_too_large",
    )


class BodyLimit:
    """Reads the whole body (at most `limit` bytes, within `timeout_s`), then hands the app a replay of it."""

    def __init__(
        self, app: ASGIApp, limit: int, timeout_s: float, respond: Callable[[Exception, Scope], Response]
    ) -> None:
        self.app, self.limit, self.timeout_s, self.respond = app, limit, timeout_s, respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.respond(too_large(self.limit), scope)(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                error = RequestTimeout(f"The request body was not received within {self.timeout_s:g} s.")
                response = self.respond(error, scope)
                response.headers["Connection"] = "close"  # a slow client is cut, not kept alive
                await response(scope, receive, send)
                return
            if message["type"] != "http.request":  # the client left
                await self.app(scope, replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self.respond(too_large(self.limit), scope)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([body], receive), send)


def replay(messages: list[Message], then: Receive) -> Receive:
    """A receive() that hands out `messages`, then defers to `then` (so a disconnect is still seen)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive
