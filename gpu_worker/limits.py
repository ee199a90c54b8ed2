"""ASGI middleware at the door: the arrival time, the body size limit and the body read deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_worker.protocol import PayloadTooLarge, RequestTimeout


class BodyLimit:
    """Stamps the arrival time, refuses bodies over `limit` bytes (413) or slower than `timeout_s` (408).

    The body is read here (FastAPI would read all of it anyway), so an oversize or trickled one never
    reaches the app; `scope["state"]["received"]` is when the request arrived, for deadlines downstream.
    """

    def __init__(
        self, app: ASGIApp, limit: int, timeout_s: float, respond: Callable[[Exception], Response]
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["received"] = time.perf_counter()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(PayloadTooLarge(self._too_large()), scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                error = RequestTimeout(f"The request body was not received within {self.timeout_s:g} s.")
                await self._refuse(error, scope, receive, send, headers={"Connection": "close"})
                return
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(PayloadTooLarge(self._too_large()), scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    def _too_large(self) -> str:
        return f"The request body is larger than {self.limit} bytes."

    async def _refuse(
        self,
        exc: Exception,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str] | None = None,
    ) -> None:
        response = self.respond(exc)
        response.headers.update(headers or {})
        await response(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive() that hands out `messages`, then defers to `then` (e.g. to see a disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
