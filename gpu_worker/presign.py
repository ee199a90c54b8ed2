"""Presigned S3 GET links signed locally, for the worker's results and the edge's lookups and jobs.

botocore's `generate_presigned_url` resolves the endpoint, serialises the call and runs its generic signer for every
link (about 0.5 ms each; a job of 500 pages lists 1,000 links). The bucket's URL and the scope it is signed for are
the same for every key, so a `LinkSigner` learns them once from botocore's own first link, and signs each link here
(bench/result_links.py). Standard library only: the edge's Lambda zip carries this module (boto3 is the runtime's).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit


class LinkSigner:
    """Presigned GETs in one bucket, with their expiry, for a boto3 S3 client and the credentials it signs with."""

    def __init__(self, client: Any, credentials: Any, bucket: str, ttl: int) -> None:
        self.client, self.credentials, self.bucket, self.ttl = client, credentials, bucket, ttl
        self._template: LinkTemplate | None = None
        self._lock = threading.Lock()

    def sign(self, key: str, now: dt.datetime | None = None) -> tuple[str, int]:
        """(URL, Unix time it expires) of a GET of `key`; raises as botocore would (e.g. NoCredentialsError).
        An empty key is refused, as botocore refuses it: its link would list the bucket."""
        if not key:
            raise ValueError("an S3 object key cannot be empty")
        now = now or dt.datetime.now(dt.UTC)
        template = self._template or self._learn()
        url = presigned_get(template, key, self.credentials.get_frozen_credentials(), self.ttl, now)
        return url, int(now.timestamp()) + self.ttl

    def _learn(self) -> LinkTemplate:
        """The bucket's URL and the scope botocore signs for, read off one link it signs. Its endpoint rules may
        pick another region than the client's (us-east-1 for aws-global); X-Amz-Credential is
        key/date/region/service/aws4_request."""
        with self._lock:
            if self._template is None:
                marker = "link-template-probe"
                probe = self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": marker}, ExpiresIn=self.ttl
                )
                scope = unquote(parse_qs(urlsplit(probe).query)["X-Amz-Credential"][0]).split("/")
                self._template = LinkTemplate(probe.split("?", 1)[0].removesuffix(marker), scope[2], scope[3])
            return self._template


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


def presigned_get(template: LinkTemplate, key: str, credentials: Any, ttl: int, now: dt.datetime) -> str:
    """A presigned GET URL for `key` (AWS Signature Version 4 in the query string, as S3 documents it and as
    botocore's S3 query signer writes it, byte for byte): one SHA-256 and one HMAC, the signing key cached.
    `credentials`: botocore's frozen credentials (access_key, secret_key, token)."""
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
