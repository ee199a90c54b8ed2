"""`GET /v1/results/{request_id}`: a finished request's stored result, for the key that made it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from edge_api.deps import Caller, Store

router = APIRouter()


@router.get("/v1/results/{request_id}")
async def results(request_id: str, key: Caller, store: Store) -> JSONResponse:
    """The stored result (this key's only), 404 while it is still running, 503 while S3 does not answer."""
    status, body = await store.find_result(request_id, key)
    return JSONResponse(body, status_code=status)
