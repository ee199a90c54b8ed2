"""`python -m gpu_worker`: serve the worker on HOST:PORT."""

from __future__ import annotations

import logging

import uvicorn

from gpu_worker.app import build_app
from gpu_worker.http_server import server_config
from gpu_worker.settings import load_settings


def main() -> None:
    """Read settings once, build the app, serve; SIGTERM finishes in-flight requests first."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = build_app(settings)
    uvicorn.Server(server_config(app, settings)).run()


if __name__ == "__main__":
    main()
