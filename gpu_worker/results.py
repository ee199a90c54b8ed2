"""Result writes off the response path: S3 in its own bounded pool, a spool when S3 fails, a cached S3 probe.

A result is promised (its key in a response or a 504) only when it will be stored: written now, or
spooled on local disk and retried until S3 takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gpu_worker.metrics import WorkerMetrics
from gpu_worker.spool import ResultSpool, StoredObject
from gpu_worker.storage import ResultStore

log = logging.getLogger(__name__)
S3_ERRORS = (ClientError, BotoCoreError, OSError)
# A write waits for its answer to be handed to the server (the answer must not share the GIL with botocore),
# but never longer than this: a client that never reads its answer does not hold its result back.
ANSWER_WAIT_S = 2.0


class ResultWriter:
    """Writes each result once, in the background; keeps what S3 refuses and retries it."""

    def __init__(
        self,
        store: ResultStore,
        spool: ResultSpool,
        metrics: WorkerMetrics,
        s3_pool: ThreadPoolExecutor,
        *,
        retry_s: float,
        probe_interval_s: float,
        probe_timeout_s: float,
    ) -> None:
        self.store = store
        self.spool = spool
        self.metrics = metrics
        self.s3_pool = s3_pool
        self.retry_s = retry_s
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        # The probe has its own thread: hung writes filling the S3 pool must not blind /health.
        self._probe_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-probe")
        self._probe_future: Future[None] | None = None
        self.s3_error: str | None = None  # last known S3 failure; None while S3 answers
        self.s3_checked_at: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the spool drainer and the S3 probe on the running loop."""
        self._refresh_gauges()
        self._loops = [asyncio.create_task(self._drain_loop()), asyncio.create_task(self._probe_loop())]

    async def stop(self, timeout_s: float) -> None:
        """Let writes in flight finish (or spool), try the spool once more, then stop."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._drain_once(), timeout=min(timeout_s, 10))
        for task in self._loops:
            task.cancel()
        self._probe_pool.shutdown(wait=False, cancel_futures=True)

    # ---- writes ----------------------------------------------------------------------------------

    def can_promise(self) -> bool:
        """True when a result will be stored: S3 answers, or the spool has room to keep it until it does."""
        try:
            return self.s3_error is None or self.spool.has_room()
        except OSError:
            return False

    def submit(
        self, request_id: str, build: Callable[[], list[StoredObject]], after: asyncio.Event | None = None
    ) -> asyncio.Task[bool]:
        """Build (annotate, serialise) and store one result in the background, once `after` is set (the answer
        has gone out) or ANSWER_WAIT_S has passed; the task says if it was kept."""
        task = asyncio.create_task(self._write(request_id, build, after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _write(
        self, request_id: str, build: Callable[[], list[StoredObject]], after: asyncio.Event | None
    ) -> bool:
        loop = asyncio.get_running_loop()
        if after is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(after.wait(), ANSWER_WAIT_S)
        try:
            objects = await loop.run_in_executor(self.s3_pool, build)
        except Exception:
            log.exception("building the stored result of %s failed", request_id)
            self.metrics.results_lost.inc()
            return False
        if self.s3_error is None:  # while S3 is known to be failing, go straight to the spool
            try:
                await loop.run_in_executor(self.s3_pool, self._put_all, objects)
                return True
            except S3_ERRORS as exc:
                self._s3_failed(exc)
                log.warning("storing result %s failed (%s); spooling it", request_id, exc)
        return await self._keep(request_id, objects)

    async def _keep(self, request_id: str, objects: list[StoredObject]) -> bool:
        try:
            await asyncio.to_thread(self.spool.add, request_id, objects)
        except OSError as exc:
            log.error("result %s is lost: S3 failed and the spool could not keep it (%s)", request_id, exc)
            self.metrics.results_lost.inc()
            return False
        self._refresh_gauges()
        self._wake.set()
        return True

    def _put_all(self, objects: list[StoredObject]) -> None:
        # In order: result.json goes last, so whoever finds it finds the rest.
        for item in objects:
            self.store.put(item.key, item.body, item.content_type)

    def _s3_failed(self, exc: BaseException) -> None:
        self.metrics.s3_failures.inc()
        self.s3_error = f"{type(exc).__name__}: {exc}"[:300]
        self.s3_checked_at = time.time()

    # ---- the spool drainer -----------------------------------------------------------------------

    async def _drain_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.retry_s)
            self._wake.clear()
            try:
                await self._drain_once()
            except Exception:  # keep draining whatever one entry did
                log.exception("spool drain failed")

    async def _drain_once(self) -> None:
        loop = asyncio.get_running_loop()
        entries = await asyncio.to_thread(self.spool.entries)
        for entry in entries:
            try:
                objects = await asyncio.to_thread(self.spool.load, entry)
            except (OSError, ValueError, KeyError):
                log.error("unreadable spool entry %s dropped", entry.name)
                await asyncio.to_thread(self.spool.remove, entry)
                self.metrics.results_lost.inc()
                continue
            try:
                await loop.run_in_executor(self.s3_pool, self._put_all, objects)
            except S3_ERRORS as exc:
                self._s3_failed(exc)
                break
            await asyncio.to_thread(self.spool.remove, entry)
            self.metrics.spool_written.inc()
            self.s3_error = None
        self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        try:
            entries = self.spool.entries()
            self.metrics.spool_results.set(len(entries))
            self.metrics.spool_bytes.set(self.spool.size_bytes())
        except OSError:
            pass
        self.metrics.spool_dropped.set(self.spool.dropped)

    # ---- the S3 probe ----------------------------------------------------------------------------

    async def _probe_loop(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.probe_interval_s)

    async def probe(self) -> None:
        """Check S3 once (in the probe's own thread, bounded in time); a probe still hung counts as down."""
        if self._probe_future is not None and not self._probe_future.done():
            self.s3_error = self.s3_error or "TimeoutError: the S3 probe has not answered"
            return
        self._probe_future = self._probe_pool.submit(self.store.probe)
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._probe_future), self.probe_timeout_s)
        except TimeoutError:
            self.s3_error = f"TimeoutError: S3 did not answer within {self.probe_timeout_s:g} s"
        except S3_ERRORS as exc:
            self.s3_error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            self.s3_error = None
            if self.spool.entries():
                self._wake.set()
        self.s3_checked_at = time.time()

    def health(self) -> dict[str, Any]:
        """S3's state for /health: ok or its error, when it was checked, results waiting in the spool."""
        try:
            spooled = len(self.spool.entries())
        except OSError:
            spooled = -1
        return {
            "ok": self.s3_error is None,
            "error": self.s3_error,
            "checked_at": self.s3_checked_at,
            "spooled_results": spooled,
        }
