"""S3 for the edge: presigned upload POSTs under uploads/<key-id>/, and finished results by request id."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from edge_api.settings import EdgeSettings
from gpu_worker.protocol import IMAGE_MEDIA_TYPES, NotFound, PayloadTooLarge, UnsupportedMediaType


class EdgeStore:
    """boto3 calls (blocking: run them in a thread)."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.aws_region,
            config=Config(
                signature_version="s3v4", connect_timeout=3, read_timeout=10, retries={"max_attempts": 2}
            ),
        )

    def upload_prefix(self, owner: str) -> str:
        """Where this key's uploads live."""
        return f"{self.settings.upload_prefix}{owner}/"

    def presign_upload(self, owner: str, content_type: str, size: int) -> dict[str, Any]:
        """A presigned POST for one image of `content_type` and at most `size` bytes."""
        if content_type not in IMAGE_MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"Uploads take PNG, JPEG or WebP images, not {content_type!r}.", param="content_type"
            )
        if size > self.settings.upload_max_bytes:
            raise PayloadTooLarge(
                f"The upload limit is {self.settings.upload_max_bytes} bytes.",
                param="size",
                code="upload_too_large",
            )
        key = f"{self.upload_prefix(owner)}{uuid.uuid4().hex}"
        ttl = self.settings.upload_url_ttl_s
        post = self.client.generate_presigned_post(
            Bucket=self.settings.results_bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, size]],
            ExpiresIn=ttl,
        )
        return {
            "url": post["url"],
            "fields": post["fields"],
            "image_url": f"s3://{self.settings.results_bucket}/{key}",
            "expires_at": int(time.time()) + ttl,
        }

    def find_result(self, request_id: str, owner: str) -> tuple[int, dict[str, Any]]:
        """(status, body) of a stored result of this key; NotFound while running, or for another key."""
        today = dt.datetime.now(dt.UTC).date()
        for days_back in range(self.settings.result_lookup_days + 1):
            day = today - dt.timedelta(days=days_back)
            key = f"{self.settings.results_prefix}{day:%Y/%m/%d}/{request_id}/result.json"
            try:
                stored = json.loads(
                    self.client.get_object(Bucket=self.settings.results_bucket, Key=key)["Body"].read()
                )
            except ClientError as exc:
                # Without s3:ListBucket a missing object answers 403, not 404.
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied", "403"):
                    continue
                raise
            if stored.get("owner") != owner:
                break  # another key's result: answer exactly as if it did not exist
            return int(stored.get("status", 200)), self._fresh_links(stored.get("body") or {})
        raise NotFound(
            f"No result for request {request_id!r} (still running, expired, or not yours).",
            code="result_not_found",
        )

    def _fresh_links(self, body: dict[str, Any]) -> dict[str, Any]:
        """Re-sign the stored links: the ones saved with the result may have expired."""
        ocr = body.get("ocr")
        if isinstance(ocr, dict):
            for name in ("result", "annotated_image"):
                link = ocr.get(name)
                if isinstance(link, dict) and link.get("key"):
                    link["url"] = self.client.generate_presigned_url(
                        "get_object",
                        Params={"Bucket": self.settings.results_bucket, "Key": link["key"]},
                        ExpiresIn=self.settings.result_url_ttl_s,
                    )
                    link["expires_at"] = int(time.time()) + self.settings.result_url_ttl_s
        return body
