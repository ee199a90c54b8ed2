"""Forwarding to the worker (through the internal ALB): nested timeouts, one retry on connect failure.

httpx is imported on the first call to the worker, not at import: a cold Lambda pays for it only on a route
that forwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from edge_api.errors import RelayedError
from edge_api.settings import EdgeSettings
from gpu_worker.protocol import GatewayTimeout, NotReady, RateLimited, UpstreamError, http_error_body

if TYPE_CHECKING:
    import httpx

RELAYED_HEADERS = ("retry-after", "x-request-id", "content-type")
RETRY_AFTER_S = "5"  # after the worker could not be reached or dropped the connection


class WorkerClient:
    """One pooled httpx client per process (built once, reused across Lambda invocations)."""

    def __init__(self, settings: EdgeSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.base_url = (settings.worker_url or "").rstrip("/")
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport = transport
        self._models: tuple[float, dict[str, Any]] | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client; every request it sends carries the shared secret (when one is set)."""
        import httpx

        # Built inside the running loop and kept while that loop lives (Mangum reuses one loop across
        # warm invocations, so the connection pool to the ALB survives between requests).
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            timeout = httpx.Timeout(
                self.settings.worker_timeout_s, connect=self.settings.worker_connect_timeout_s
            )
            self._client = httpx.AsyncClient(
                timeout=timeout, transport=self._transport, headers=self.settings.worker_headers
            )
            self._loop = loop
        return self._client

    async def close(self) -> None:
        """Close the pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _require_url(self) -> str:
        if not self.base_url:
            raise UpstreamError("The edge has no WORKER_URL configured.", code="worker_not_configured")
        return self.base_url

    async def send(self, method: str, path: str, request_id: str, **kwargs: Any) -> httpx.Response:
        """Send to the worker (stream=True leaves the body open); one retry if the connection failed."""
        import httpx

        request = self.client.build_request(method, self._require_url() + path, **kwargs)
        for attempt in (1, 2):
            try:
                return await self.client.send(request, stream=True)
            except httpx.ConnectError:
                if attempt == 2:
                    raise UpstreamError(
                        "The OCR worker is unreachable.", headers={"Retry-After": RETRY_AFTER_S}
                    ) from None
            except httpx.TimeoutException:
                raise GatewayTimeout(
                    f"The OCR worker did not answer within {self.settings.worker_timeout_s:g} s; look up the result "
                    f"later with GET /v1/results/{request_id}.",
                ) from None
            except httpx.HTTPError as exc:
                # The worker went away mid-request (crash, restart): as retryable as a refused connection.
                raise UpstreamError(
                    f"The OCR worker connection failed ({type(exc).__name__}).",
                    headers={"Retry-After": RETRY_AFTER_S},
                ) from None
        raise AssertionError("unreachable")

    async def models(self, request_id: str) -> dict[str, Any]:
        """`/v1/models` from the worker, cached for MODELS_CACHE_S."""
        now = time.monotonic()
        if self._models is not None and now - self._models[0] < self.settings.models_cache_s:
            return self._models[1]
        response = await self.send("GET", "/v1/models", request_id)
        body = await read_checked(response)
        self._models = (now, body)
        return body

    async def healthy(self) -> str:
        """'ok', 'not_ready', 'unreachable' or 'not_configured' (never raises)."""
        import httpx

        if not self.base_url:
            return "not_configured"
        try:
            response = await self.client.get(self.base_url + "/health", timeout=3.0)
        except httpx.HTTPError:
            return "unreachable"
        return "ok" if response.status_code == 200 else "not_ready"


def relay_headers(response: httpx.Response) -> dict[str, str]:
    """The worker headers a client should see."""
    return {name: response.headers[name] for name in RELAYED_HEADERS if name in response.headers}


async def read_checked(response: httpx.Response) -> dict[str, Any]:
    """A 2xx JSON body, or the worker's status mapped to our typed errors."""
    import httpx

    try:
        raw = await response.aread()
    except httpx.HTTPError as exc:  # the worker died while sending its answer
        raise UpstreamError(
            f"The OCR worker connection failed ({type(exc).__name__}).",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from None
    finally:
        await response.aclose()
    body = error_body_of(response.status_code, raw)
    if response.status_code >= 300:
        raise upstream_error(response.status_code, body, relay_headers(response))
    return body


def error_body_of(status: int, raw: bytes) -> dict[str, Any]:
    """The worker's JSON, or an OpenAI-shaped body for what is not JSON (an ALB's own error page)."""
    try:
        body = json.loads(raw)
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    return http_error_body(status, f"The OCR worker answered {status} without a JSON body.")


def upstream_error(status: int, body: dict[str, Any], headers: dict[str, str]) -> Exception:
    """What a worker error becomes at the edge: overload and timeouts kept (code and Retry-After), other
    5xx are a 502."""
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    message = error.get("message") or f"The OCR worker answered {status}."
    code = error.get("code") if isinstance(error.get("code"), str) else None
    retry_after = {"Retry-After": headers["retry-after"]} if "retry-after" in headers else {}
    if status == 429:
        return RateLimited(message, code=code, headers=retry_after or {"Retry-After": "2"})
    if status == 503:
        return NotReady(message, code=code, headers=retry_after or {"Retry-After": "10"})
    if status == 504:
        return GatewayTimeout(message, code=code, headers=retry_after)
    if status >= 500:
        return UpstreamError(
            f"The OCR worker failed ({status}): {message}", headers={"Retry-After": RETRY_AFTER_S}
        )
    return RelayedError(status, body, headers)
