"""The batching loop: a bounded queue; batches of up to MAX_BATCH_SIZE or what came within BATCH_TIMEOUT_MS.

The engine runs in one worker thread, so the event loop keeps answering `/livez` and streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gpu_worker.engines.base import Engine
from gpu_worker.metrics import WorkerMetrics
from gpu_worker.protocol import NotReady, RateLimited, ServiceError
from gpu_worker.types import OcrRequest, OcrResult

log = logging.getLogger(__name__)
PieceCallback = Callable[[str], None]


@dataclass
class Pending:
    request: OcrRequest
    future: asyncio.Future[OcrResult]
    on_piece: PieceCallback | None = None
    enqueued_at: float = field(default_factory=time.perf_counter)
    queue_ms: float = 0.0


class BatchLoop:
    """Owns the queue and the engine thread; `submit` answers at once with a future or a 429."""

    def __init__(
        self, engine: Engine, metrics: WorkerMetrics, *, max_batch: int, timeout_ms: int, max_queue: int
    ):
        self.engine = engine
        self.metrics = metrics
        self.max_batch = max_batch
        self.timeout_s = timeout_ms / 1000
        self.max_queue = max_queue
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._task: asyncio.Task[None] | None = None
        self._busy = 0
        self._accepting = True

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-loop")

    def submit(self, request: OcrRequest, on_piece: PieceCallback | None = None) -> Pending:
        """Queue one request; raises RateLimited (429) when the queue is full."""
        if not self._accepting:
            raise NotReady("The worker is shutting down.", headers={"Retry-After": "5"})
        if self._queue.qsize() >= self.max_queue:
            raise RateLimited(
                f"The worker's queue is full ({self.max_queue} waiting); retry shortly.",
                code="queue_full",
                headers={"Retry-After": "2"},
            )
        pending = Pending(request, asyncio.get_running_loop().create_future(), on_piece)
        self._queue.put_nowait(pending)
        self.metrics.queue_depth.set(self._queue.qsize())
        return pending

    async def drain(self, timeout_s: float) -> None:
        """Stop accepting, let queued and running batches finish (up to `timeout_s`), then stop."""
        self._accepting = False
        deadline = time.monotonic() + timeout_s
        while (self._queue.qsize() or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _collect(self) -> list[Pending]:
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.timeout_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Take whatever is already waiting without sleeping any longer.
                while len(batch) < self.max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self._busy = len(batch)
            self.metrics.queue_depth.set(self._queue.qsize())
            self.metrics.batch_size.observe(len(batch))
            started = time.perf_counter()
            for item in batch:
                item.queue_ms = (started - item.enqueued_at) * 1000
                self.metrics.queue_wait.observe(item.queue_ms / 1000)

            def on_token(row: int, piece: str, batch: list[Pending] = batch) -> None:
                callback = batch[row].on_piece
                if callback is not None:
                    loop.call_soon_threadsafe(callback, piece)

            requests = [item.request for item in batch]
            try:
                results = await loop.run_in_executor(self._executor, self.engine.run, requests, on_token)
            except Exception as exc:  # the engine itself broke: fail this batch, keep serving
                log.exception("engine failed on a batch of %d", len(batch))
                error = ServiceError(f"The OCR engine failed: {type(exc).__name__}.", code="engine_error")
                results = [OcrResult(error=error) for _ in batch]
            finally:
                self._busy = 0
            self.metrics.inference.observe(time.perf_counter() - started)
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)
