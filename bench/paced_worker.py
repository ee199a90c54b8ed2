"""The real worker (app, server, serving, batching, S3 writes) with an engine that waits a fixed time without the GIL.

A GPU engine spends most of a page waiting on the device with the GIL released; the tiny model on a CPU does the
opposite (its Python decode loop holds the GIL, so any other Python work in the process lengthens it). With the
tests' scripted engine, which only sleeps and answers a fixed grounded page, the serving path's own cost shows
alone: HTTP latency minus PACED_ENGINE_MS.

    PACED_ENGINE_MS=50 python bench/paced_worker.py     (worker settings from the environment, as `python -m gpu_worker`)

Run as a script from the root of the checkout to measure (its `gpu_worker` and test engine are imported from the
working directory), so `bench.worker_http --compare-root` can start it against an older checkout too.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.getcwd())

import uvicorn  # noqa: E402

from gpu_worker.app import build_app  # noqa: E402
from gpu_worker.http_server import server_config  # noqa: E402
from gpu_worker.settings import load_settings  # noqa: E402
from tests.utils.engines import ScriptedEngine  # noqa: E402


def main() -> None:
    """Serve the worker with the paced engine."""
    settings = load_settings()
    engine = ScriptedEngine(delay=float(os.environ.get("PACED_ENGINE_MS", "50")) / 1000)
    uvicorn.Server(server_config(build_app(settings, engine=engine), settings)).run()


if __name__ == "__main__":
    main()
