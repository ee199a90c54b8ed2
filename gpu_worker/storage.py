"""Results in S3: annotated.png and result.json under results/<yyyy>/<mm>/<dd>/<request-id>/, signed GETs."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gpu_worker.protocol import InvalidRequest, Link, PayloadTooLarge, PermissionDenied
from gpu_worker.settings import WorkerSettings


def result_prefix(prefix: str, request_id: str, when: dt.datetime | None = None) -> str:
    """`results/<yyyy>/<mm>/<dd>/<request-id>/` for a request made at `when` (UTC)."""
    when = when or dt.datetime.now(dt.UTC)
    return f"{prefix}{when:%Y/%m/%d}/{request_id}/"


class ResultStore:
    """boto3 against S3 or a local S3 endpoint; every call is blocking (run it in a thread)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.bucket = settings.results_bucket
        self.results_prefix = settings.results_prefix
        self.upload_prefix = settings.upload_prefix
        self.ttl = settings.result_url_ttl_s
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.aws_region,
            config=Config(
                signature_version="s3v4", connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}
            ),
        )

    def link(self, key: str) -> Link:
        """A presigned GET link with its expiry (signing is local: no call to S3)."""
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.ttl
        )
        return Link(key=key, url=url, expires_at=int(time.time()) + self.ttl)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write one object."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        """Write one JSON document."""
        self.put(key, json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json")

    def fetch_upload(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The bytes of an upload under our own bucket and uploads prefix; clear 4xx otherwise."""
        if bucket != self.bucket or not key.startswith(self.upload_prefix):
            raise PermissionDenied(
                f"Image references must point under s3://{self.bucket}/{self.upload_prefix}.",
                param="messages",
                code="invalid_image_reference",
            )
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
            if head["ContentLength"] > max_bytes:
                raise PayloadTooLarge(
                    f"The uploaded image is larger than {max_bytes} bytes.", param="messages"
                )
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read(max_bytes + 1)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise InvalidRequest(
                    "The uploaded image was not found (not uploaded yet, or expired).",
                    param="messages",
                    code="image_not_found",
                ) from None
            raise
        except BotoCoreError:
            raise
