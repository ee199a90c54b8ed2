"""`python -m edge_api`: the edge under uvicorn on HOST:PORT (the local stack's API)."""

from __future__ import annotations

import uvicorn

from edge_api.app import build_app
from edge_api.serve import server_config
from edge_api.settings import load_settings


def main() -> None:
    """Read settings once and serve, with slow clients bounded."""
    settings = load_settings()
    uvicorn.Server(server_config(build_app(settings), settings)).run()


if __name__ == "__main__":
    main()
