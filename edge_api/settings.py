"""The edge's one settings object (environment variables that Terraform sets on the Lambda)."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge_api.keys import key_id
from gpu_worker.protocol import read_settings


class EdgeSettings(BaseSettings):
    """DESIGN.md's edge settings."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    worker_url: str | None = None
    worker_timeout_s: float = Field(110.0, gt=0)
    worker_connect_timeout_s: float = Field(3.0, gt=0)
    worker_shared_secret: SecretStr | None = Field(
        None, description="Sent as X-Worker-Secret on every call to the worker; unset: not sent."
    )
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
    # Documents and jobs (DESIGN.md): PDF uploads have their own limit; unset table/queue = no /v1/jobs.
    upload_max_pdf_bytes: int = Field(100 * 1024 * 1024, ge=1)
    jobs_table: str | None = None
    jobs_queue_url: str | None = None
    max_job_pages: int = Field(500, ge=1, le=10_000)
    allow_http_webhooks: bool = Field(
        False, description="Local stack/tests only: http:// and loopback webhook URLs."
    )
    # DynamoDB and SQS for /v1/jobs and /v1/usage: the S3 timeouts and attempts below, their own pool and deadline.
    jobs_deadline_s: float = Field(
        5.0, gt=0, description="The most one jobs request waits on AWS before a 503."
    )
    jobs_max_concurrency: int = Field(
        8, ge=1, le=64, description="Threads (and connections) for the jobs calls."
    )
    # S3 can hang rather than refuse: every call is bounded, and a request waits on S3 at most s3_deadline_s.
    s3_connect_timeout_s: float = Field(1.0, gt=0)
    s3_read_timeout_s: float = Field(2.0, gt=0)
    s3_max_attempts: int = Field(2, ge=1, le=5, description="Attempts per S3 call, the first included.")
    s3_deadline_s: float = Field(3.0, gt=0, description="The most one request waits on S3 before a 503.")
    s3_max_concurrency: int = Field(8, ge=1, le=64, description="Threads (and pooled connections) for S3.")
    s3_retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503 when S3 does not answer.")
    # The local server (uvicorn) only; in AWS, API Gateway terminates the client connections.
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="Time a client has to send a request's head."
    )
    http_body_timeout_s: float = Field(60.0, gt=0, description="Time a client has to send a request's body.")
    http_max_connections: int = Field(256, ge=1, description="Open connections; more are answered 503.")
    http_keep_alive_s: int = Field(5, ge=1, description="How long an idle keep-alive connection stays open.")

    @cached_property
    def local_keys(self) -> dict[str, str]:
        """Accepted local keys by key id (hashed once, not per request)."""
        keys = [k.strip() for k in (self.local_api_keys or "").split(",") if k.strip()]
        return {key_id(k): k for k in keys}

    @property
    def worker_headers(self) -> dict[str, str]:
        """Headers every call to the worker carries: the shared secret, when one is set."""
        secret = self.worker_shared_secret.get_secret_value() if self.worker_shared_secret else ""
        return {"X-Worker-Secret": secret} if secret else {}


def load_settings(**overrides: object) -> EdgeSettings:
    """Read the settings, failing fast with one clear line per bad value."""
    return read_settings(EdgeSettings, "edge", **overrides)
