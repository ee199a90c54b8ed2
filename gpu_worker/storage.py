"""Results in S3: annotated.png and result.json under results/<yyyy>/<mm>/<dd>/<request-id>/, signed GETs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gpu_worker.presign import LinkSigner
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
        session = boto3.session.Session()
        self.client: Any = session.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.aws_region,
            # Short timeouts, few retries: a silent S3 must cost seconds (the request's budget), not minutes.
            config=Config(
                signature_version="s3v4",
                connect_timeout=settings.s3_connect_timeout_s,
                read_timeout=settings.s3_read_timeout_s,
                retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
                max_pool_connections=max(10, settings.s3_threads + 2),
                # No CRC32 trailer on every result PUT: S3 needs none for these objects (HTTPS guards the transfer).
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.signer = LinkSigner(self.client, session.get_credentials(), self.bucket, self.ttl)

    def link(self, key: str, now: dt.datetime | None = None) -> Link:
        """A presigned GET link with its expiry (signing is local: no call to S3)."""
        url, expires_at = self.signer.sign(key, now)
        return Link(key=key, url=url, expires_at=expires_at)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write one object."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        """Write one JSON document."""
        self.put(key, json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json")

    def probe(self) -> None:
        """One cheap call that proves the bucket answers (raises on any failure)."""
        self.client.head_bucket(Bucket=self.bucket)

    def check_upload(self, bucket: str, key: str, owner: str | None) -> None:
        """Refuse (403) a reference outside our bucket's uploads prefix, or outside the owner's own folder."""
        own = f"{self.upload_prefix}{owner}/" if owner else None
        if bucket != self.bucket or own is None or not key.startswith(own) or ".." in key.split("/"):
            where = f"s3://{self.bucket}/{self.upload_prefix}<your key id>/"
            raise PermissionDenied(
                f"Image references must point at your own uploads under {where} (upload with POST /v1/uploads).",
                param="messages",
                code="invalid_image_reference",
            )

    def fetch_upload(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The bytes of an upload (checked by `check_upload` first); clear 4xx when missing or too large."""
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
