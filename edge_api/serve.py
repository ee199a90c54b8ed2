"""The edge's local server: uvicorn with slow and oversized clients bounded (header deadline, head-size cap,
connection cap, keep-alive).

The bounded protocol is the worker's (`gpu_worker/http_server.py`, torch-free); the body deadline is
the app's (`gpu_worker/limits.py`, also torch-free), so it holds under Mangum too. In AWS, API Gateway
faces the clients and none of this runs (the Lambda zip leaves uvicorn out).
"""

from __future__ import annotations

from typing import Any

import uvicorn

from edge_api.settings import EdgeSettings
from gpu_worker.http_server import bounded_protocol


def server_config(app: Any, settings: EdgeSettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration the local edge runs with."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "http": bounded_protocol(settings.http_header_timeout_s, settings.http_max_connections),
        "timeout_keep_alive": settings.http_keep_alive_s,
        **overrides,
    }
    return uvicorn.Config(app, **options)
