"""Results in S3: annotated.png and result.json under results/<yyyy>/<mm>/<dd>/<request-id>/, signed GETs."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError

from gpu_worker.protocol import InvalidRequest, Link, PayloadTooLarge, PermissionDenied
from gpu_worker.settings import WorkerSettings


def result_prefix(prefix: str, request_id: str, when: dt.datetime | None = None) -> str:
    """`results/<yyyy>/<mm>/<dd>/<request-id>/` for a request made at `when` (UTC)."""
    when = when or dt.datetime.now(dt.UTC)
    return f"{prefix}{when:%Y/%m/%d}/{request_id}/"


@dataclass(frozen=True)
class LinkTemplate:
    """What every presigned GET in one bucket shares: the bucket's URL and the scope it is signed for."""

    base: str  # the bucket's URL, ending in "/": the key follows
    region: str
    service: str

    @cached_property
    def path(self) -> str:
        """The bucket URL's path: S3 signs the path as sent (no normalising of // or ..), this and the key."""
        return urlsplit(self.base).path

    @cached_property
    def host(self) -> str:
        """The Host header the link is signed with: lowercase, no userinfo, no default port."""
        parts = urlsplit(self.base)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
        default = {"http": 80, "https": 443}.get(parts.scheme)
        return host if parts.port in (None, default) else f"{host}:{parts.port}"


def presigned_get(
    template: LinkTemplate, key: str, credentials: ReadOnlyCredentials, ttl: int, now: dt.datetime
) -> str:
    """A presigned GET URL for `key` (AWS Signature Version 4 in the query string, as S3 documents it and as
    botocore's S3 query signer writes it, byte for byte): one SHA-256 and one HMAC, the signing key cached."""
    path = quote(key, safe="/~")
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/{template.region}/{template.service}/aws4_request"
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(ttl),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.token is not None:
        params["X-Amz-Security-Token"] = credentials.token
    encoded = [(name, quote(value, safe="-_.~")) for name, value in params.items()]
    canonical = "\n".join((
        "GET",
        template.path + path,
        "&".join(f"{name}={value}" for name, value in sorted(encoded)),
        f"host:{template.host}",
        "",
        "host",
        "UNSIGNED-PAYLOAD",
    ))  # fmt: skip
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signing_key = _signing_key(credentials.secret_key, stamp[:8], template.region, template.service)
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    query = "&".join(f"{name}={value}" for name, value in encoded)
    return f"{template.base}{path}?{query}&X-Amz-Signature={signature}"


@lru_cache(maxsize=8)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """SigV4's derived key: the same for every link signed on one day with one secret."""
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class ResultStore:
    """boto3 against S3 or a local S3 endpoint; every call is blocking (run it in a thread)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.bucket = settings.results_bucket
        self.results_prefix = settings.results_prefix
        self.upload_prefix = settings.upload_prefix
        self.ttl = settings.result_url_ttl_s
        session = boto3.session.Session()
        self.credentials = session.get_credentials()  # the client's own (refreshed when they expire)
        self._link_template: LinkTemplate | None = None  # learnt on the first link
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

    def link(self, key: str, now: dt.datetime | None = None) -> Link:
        """A presigned GET link with its expiry (signing is local: no call to S3).

        botocore's `generate_presigned_url` resolves the endpoint, serialises the call and runs its generic signer
        on every link (0.25 to 1 ms, two links per answer, on the response path); the bucket's URL and scope are
        the same for every key, so they are learnt once from botocore and each link is signed here."""
        now = now or dt.datetime.now(dt.UTC)
        template = self._link_template or self._learn_link_template()
        credentials = self.credentials.get_frozen_credentials()  # refreshed by botocore when they expire
        url = presigned_get(template, key, credentials, self.ttl, now)
        return Link(key=key, url=url, expires_at=int(now.timestamp()) + self.ttl)

    def _learn_link_template(self) -> LinkTemplate:
        """The bucket's URL and the scope botocore signs for, read off one link it signs (raises as it does, e.g.
        NoCredentialsError). Its endpoint rules may pick another region than the client's (us-east-1 for
        aws-global); X-Amz-Credential is key/date/region/service/aws4_request."""
        marker = "link-template-probe"
        probe = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": marker}, ExpiresIn=self.ttl
        )
        scope = unquote(parse_qs(urlsplit(probe).query)["X-Amz-Credential"][0]).split("/")
        self._link_template = LinkTemplate(probe.split("?", 1)[0].removesuffix(marker), scope[2], scope[3])
        return self._link_template

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
