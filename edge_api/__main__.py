"""`python -m edge_api`: the edge under uvicorn on HOST:PORT (the local stack's API)."""

from __future__ import annotations

import uvicorn

from edge_api.app import build_app
from edge_api.settings import load_settings


def main() -> None:
    """Read settings once and serve."""
    settings = load_settings()
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
