"""The Lambda entry point behind API Gateway (REST proxy, payload v1): the same app as `python -m edge_api`."""

from __future__ import annotations

import gc

# A cold start builds some 90,000 objects that live as long as the process (FastAPI's and the contract's pydantic
# models, the routes) and frees almost none (about 700 are garbage), so the collector's passes over them during the
# import are wasted: about 10% of the import's instructions (callgrind: 1,681M -> 1,518M; bench/edge_cold_import.py
# for the time). Collection is off while the module loads; what it built is then frozen (later collections, during
# requests, skip it) and collection is back as it was.
collecting = gc.isenabled()
gc.disable()
try:
    import asyncio
    import os
    from typing import Any

    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum

    from edge_api.app import build_app
    from edge_api.observability import make_logger, make_metrics
    from edge_api.settings import load_settings

    logger = make_logger()
    metrics = make_metrics()
    settings = load_settings(emit_metrics=os.environ.get("EMIT_METRICS", "true").lower() != "false")
    app = build_app(settings, logger=logger, metrics=metrics)
    asgi = Mangum(app, lifespan="off")
finally:
    gc.freeze()
    if collecting:
        gc.enable()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run one API Gateway event through the app."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:  # a loop closed by someone else (tests): Mangum needs a current one
        asyncio.set_event_loop(asyncio.new_event_loop())
    return asgi(event, context)
