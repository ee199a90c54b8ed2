"""The real worker (app, server, serving, batching, S3 writes) with an engine that waits a fixed time without the GIL.

A GPU engine spends most of a page waiting on the device with the GIL released; the tiny model on a CPU does the
opposite (its Python decode loop holds the GIL, so any other Python work in the process lengthens it). With this
engine the serving path's own cost shows alone: HTTP latency minus PACED_ENGINE_MS.

    PACED_ENGINE_MS=50 python bench/paced_worker.py     (worker settings from the environment, as `python -m gpu_worker`)

Run as a script from the root of the checkout to measure (its `gpu_worker` is imported from the working directory),
so `bench.worker_http --compare-root` can start it against an older checkout too.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.getcwd())

import uvicorn  # noqa: E402

from gpu_worker.app import build_app  # noqa: E402
from gpu_worker.engines.base import Engine  # noqa: E402
from gpu_worker.http_server import server_config  # noqa: E402
from gpu_worker.protocol import Box  # noqa: E402
from gpu_worker.settings import load_settings  # noqa: E402
from gpu_worker.types import OcrRequest, OcrResult, TokenCallback  # noqa: E402


class PacedEngine(Engine):
    """Sleeps `seconds` per batch (GIL released, as a device wait), then answers a short grounded page."""

    name = "paced"
    model_id = "paced"
    tasks = ("markdown", "ocr", "locate")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def load(self) -> None:
        """Nothing to load."""

    def run(self, batch: list[OcrRequest], on_token: TokenCallback | None = None) -> list[OcrResult]:
        """One fixed result per page after the pause."""
        started = time.perf_counter()
        time.sleep(self.seconds)
        elapsed = (time.perf_counter() - started) * 1000
        return [
            OcrResult(text="Benchmark page 42", raw="Benchmark page 42", completion_tokens=4, inference_ms=elapsed,
                      boxes=[Box(label="text", bbox=[10, 10, 300, 60])])
            for _ in batch
        ]  # fmt: skip


def main() -> None:
    """Serve the worker with the paced engine."""
    settings = load_settings()
    engine = PacedEngine(float(os.environ.get("PACED_ENGINE_MS", "50")) / 1000)
    uvicorn.Server(server_config(build_app(settings, engine=engine), settings)).run()


if __name__ == "__main__":
    main()
