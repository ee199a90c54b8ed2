"""The edge's one settings object (environment variables that Terraform sets on the Lambda)."""

from __future__ import annotations

import hashlib
from functools import cached_property

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpu_worker.protocol import read_settings


def key_id(api_key: str) -> str:
    """A stable, non-secret id for an API key (logs, S3 prefixes, result ownership)."""
    return "key-" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


class EdgeSettings(BaseSettings):
    """DESIGN.md's edge settings."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    worker_url: str | None = None
    worker_timeout_s: float = Field(110.0, gt=0)
    worker_connect_timeout_s: float = Field(3.0, gt=0)
    local_api_keys: str | None = Field(
        None, description="Comma-separated keys accepted when not behind API Gateway."
    )
    max_body_bytes: int = Field(6 * 1024 * 1024, ge=1024)
    upload_max_bytes: int = Field(20 * 1024 * 1024, ge=1)
    upload_url_ttl_s: int = Field(300, ge=10, le=3600)
    results_bucket: str = "ocr-results"
    s3_endpoint_url: str | None = None
    aws_region: str = "us-west-2"
    result_url_ttl_s: int = Field(3600, ge=1, le=7 * 24 * 3600)
    results_prefix: str = "results/"
    upload_prefix: str = "uploads/"
    result_lookup_days: int = Field(7, ge=1, le=400, description="How many days back GET /v1/results looks.")
    models_cache_s: float = Field(30.0, ge=0)
    emit_metrics: bool = Field(False, description="Emit CloudWatch EMF metrics (on in Lambda).")

    @cached_property
    def local_keys(self) -> dict[str, str]:
        """Accepted local keys by key id (hashed once, not per request)."""
        keys = [k.strip() for k in (self.local_api_keys or "").split(",") if k.strip()]
        return {key_id(k): k for k in keys}


def load_settings(**overrides: object) -> EdgeSettings:
    """Read the settings, failing fast with one clear line per bad value."""
    return read_settings(EdgeSettings, "edge", **overrides)
