"""Image and document references: `data:` URLs and `s3://` uploads, parsed with clear 4xx answers."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from gpu_worker.protocol.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from gpu_worker.protocol.tasks import IMAGE_MEDIA_TYPES, PDF_MEDIA_TYPE

_DATA_URL_RE = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,"
)
_S3_URL_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]+)$")


@dataclass(frozen=True)
class DataImage:
    media_type: str
    data: bytes


@dataclass(frozen=True)
class S3Image:
    bucket: str
    key: str


def decoded_size(b64_len: int) -> int:
    """Upper bound of the bytes a base64 string of this length decodes to."""
    return (b64_len * 3) // 4


def parse_image_url(url: str, *, max_bytes: int) -> DataImage | S3Image:
    """Parse a `data:image/...;base64,` (or `data:application/pdf;base64,`) or `s3://bucket/key` URL; else a 4xx."""
    if url.startswith("data:"):
        match = _DATA_URL_RE.match(url)
        if not match or not match.group("b64"):
            raise InvalidRequest(
                "The image data URL must look like `data:image/png;base64,...`.",
                param="messages",
                code="invalid_image_url",
            )
        mime = (match.group("mime") or "").lower()
        if mime not in IMAGE_MEDIA_TYPES and mime != PDF_MEDIA_TYPE:
            raise UnsupportedMediaType(
                f"Unsupported type {mime or 'none'!r}; send a PNG, JPEG or WebP image, or a PDF.",
                param="messages",
            )
        payload = url[match.end() :]
        if decoded_size(len(payload)) > max_bytes:
            raise PayloadTooLarge(f"The image is larger than {max_bytes} bytes.", param="messages")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                "The image data URL is not valid base64.", param="messages", code="invalid_base64"
            ) from None
        if not data:
            raise InvalidRequest("The image is empty.", param="messages", code="empty_image")
        return DataImage(mime, data)
    if url.startswith("s3://"):
        match = _S3_URL_RE.match(url)
        if not match or ".." in match.group("key").split("/"):
            raise InvalidRequest(
                "Malformed `s3://bucket/key` image reference.", param="messages", code="invalid_image_url"
            )
        return S3Image(match.group("bucket"), match.group("key"))
    if url.startswith(("http://", "https://")):
        raise InvalidRequest(
            "Remote image URLs are not fetched; send a data URL or an `s3://` reference from /v1/uploads.",
            param="messages",
            code="invalid_image_url",
        )
    raise InvalidRequest(
        "`image_url.url` must be a `data:image/...;base64,` URL or an `s3://` upload reference.",
        param="messages",
        code="invalid_image_url",
    )
