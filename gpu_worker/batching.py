"""The batching loop: a bounded queue; batches of up to MAX_BATCH_SIZE, started as soon as the engine is free.

An idle engine starts on the first request at once (no window at one caller); requests that arrive while a
batch runs form the next one, so batching under load comes from the queue itself. The loop waits up to
BATCH_TIMEOUT_MS for more only while requests are known to be on their way in (accepted, image still being
read). Admission is by estimated wait, not only by count: a request that would wait past its budget gets
an early 429. The engine runs in one worker thread, so the event loop keeps answering `/livez` and streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
    batch: int = 0  # which batch it ran in (pages of one document may share one)


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
        self.incoming = 0  # requests accepted by serving whose image is still being read
        self.batch_s: float | None = None  # recent engine time per batch (moving average)
        self.batches = 0

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-loop")

    def estimated_wait_s(self) -> float:
        """Seconds until a request queued now would have its result: batches ahead, the running one, its own."""
        if self.batch_s is None:
            return 0.0
        ahead = math.ceil(self._queue.qsize() / self.max_batch) + (1 if self._busy else 0)
        return (ahead + 1) * self.batch_s

    def submit(
        self, request: OcrRequest, on_piece: PieceCallback | None = None, budget_s: float | None = None
    ) -> Pending:
        """Queue one request; RateLimited (429) when the queue is full or the wait would exceed `budget_s`.
        The request streams (`OcrRequest.stream`, what the engine reads) exactly when it comes with `on_piece`."""
        if not self._accepting:
            raise NotReady("The worker is shutting down.", headers={"Retry-After": "5"})
        if self._queue.qsize() >= self.max_queue:
            raise RateLimited(
                f"The worker's queue is full ({self.max_queue} waiting); retry shortly.",
                code="queue_full",
                headers={"Retry-After": "2"},
            )
        wait = self.estimated_wait_s()
        # With nothing queued or running, the request is tried whatever the estimate: it can only be itself.
        if budget_s is not None and (self._queue.qsize() or self._busy) and wait > budget_s:
            self.metrics.admission_rejected.inc()
            retry = max(1, math.ceil(wait - budget_s))
            raise RateLimited(
                f"The worker is busy: the estimated wait is {wait:.1f} s, over this request's {budget_s:.1f} s "
                f"budget; retry in about {retry} s.",
                code="queue_full",
                headers={"Retry-After": str(retry)},
            )
        request.stream = on_piece is not None
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
        self._take_waiting(batch)
        # Hold the batch open only while more requests are known to be coming (never at one caller).
        deadline = time.monotonic() + self.timeout_s
        while len(batch) < self.max_batch and self.incoming > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
            self._take_waiting(batch)
        return batch

    def _take_waiting(self, batch: list[Pending]) -> None:
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self._busy = len(batch)
            self.metrics.queue_depth.set(self._queue.qsize())
            self.metrics.batch_size.observe(len(batch))
            started = time.perf_counter()
            self.batches += 1
            for item in batch:
                item.batch = self.batches
                item.queue_ms = (started - item.enqueued_at) * 1000
                self.metrics.queue_wait.observe(item.queue_ms / 1000)

            def on_token(row: int, piece: str, batch: list[Pending] = batch) -> None:
                callback = batch[row].on_piece
                if callback is not None:
                    loop.call_soon_threadsafe(callback, piece)

            requests = [item.request for item in batch]
            # Without a stream in the batch the engine gets no callback and decodes no text as it goes.
            streaming = on_token if any(item.request.stream for item in batch) else None
            try:
                results = await loop.run_in_executor(self._executor, self.engine.run, requests, streaming)
            except Exception as exc:  # the engine itself broke: fail this batch, keep serving
                log.exception("engine failed on a batch of %d", len(batch))
                error = ServiceError(f"The OCR engine failed: {type(exc).__name__}.", code="engine_error")
                results = [OcrResult(error=error) for _ in batch]
            finally:
                self._busy = 0
            elapsed = time.perf_counter() - started
            self.metrics.inference.observe(elapsed)
            self.batch_s = elapsed if self.batch_s is None else 0.7 * self.batch_s + 0.3 * elapsed
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)
