"""`python -m gpu_worker`: serve the worker on HOST:PORT."""

from __future__ import annotations

import logging

import uvicorn

from gpu_worker.app import build_app
from gpu_worker.settings import load_settings


def main() -> None:
    """Read settings once, build the app, serve; SIGTERM finishes in-flight requests first."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = build_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
    )


if __name__ == "__main__":
    main()
