"""`POST /v1/uploads`: a presigned S3 POST for one image, signed locally (no S3 round trip)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from edge_api.deps import Caller, Store

router = APIRouter()


class UploadRequest(BaseModel):
    """`POST /v1/uploads` body."""

    content_type: str = Field(max_length=100)
    size: int = Field(ge=1, description="Bytes of the image to upload.")


@router.post("/v1/uploads", response_model=None)
async def uploads(payload: UploadRequest, key: Caller, store: Store) -> dict[str, Any]:
    """A presigned POST to upload one image to S3; OCR it afterwards by its `image_url`."""
    # Inline on purpose: signing is local CPU work (about a millisecond), so it needs no thread, and a pool
    # shared with S3 calls that hang would make it wait for them.
    return store.presign_upload(key, payload.content_type, payload.size)
