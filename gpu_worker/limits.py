"""ASGI middleware at the door, before routing: the arrival time, and the body read under a size limit and a deadline.

FastAPI would read a body of any size, as slowly as the client sends it; here a body over `limit` bytes is a 413 and
one not received within `timeout_s` a 408 that closes the connection, whatever the route and whether or not it would
have read the body. The app then gets a replay of the whole body. Torch-free: the edge uses it too (its Lambda zip
carries this module); under Mangum the body is already whole, so it costs nothing there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_worker.protocol import PayloadTooLarge, RequestTimeout


class BodyLimit:
    """Stamps `scope["state"]["received"]` (for deadlines downstream), refuses bodies over `limit` bytes (413, the
    message ending with `hint`) or slower than `timeout_s` (408), then hands the app a replay of the body."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        timeout_s: float,
        respond: Callable[[Exception, Scope], Response],
        hint: str = "",
    ) -> None:
        self.app, self.limit, self.timeout_s, self.respond, self.hint = app, limit, timeout_s, respond, hint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["received"] = time.perf_counter()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.respond(self._too_large(), scope)(scope, receive, send)
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
                await self.respond(self._too_large(), scope)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([body], receive), send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body is larger than {self.limit} bytes{self.hint}.")


def replay(messages: list[Message], then: Receive) -> Receive:
    """A receive() that hands out `messages`, then defers to `then` (so a disconnect is still seen)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive
