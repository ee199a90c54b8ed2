"""The worker's one settings object, read from the environment once at start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpu_worker.protocol import read_settings


class WorkerSettings(BaseSettings):
    """Environment variables of the GPU worker (DESIGN.md, Settings)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    ocr_engine: Literal["auto", "deepseek", "rapidocr"] = "auto"
    deepseek_model: str = "deepseek-community/DeepSeek-OCR-2"
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_timeout_ms: int = Field(20, ge=0, le=10_000)
    max_queue: int = Field(64, ge=1, le=100_000)
    request_timeout_s: float = Field(100.0, gt=0)
    max_new_tokens: int = Field(4096, ge=1, le=32_768)
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=1)
    # Documents (DESIGN.md, Documents and jobs): PDF pages per inline request and per job, render resolution.
    max_sync_pages: int = Field(4, ge=1, le=64)
    max_job_pages: int = Field(500, ge=1, le=10_000)
    pdf_dpi: int = Field(144, ge=36, le=600)
    max_pdf_bytes: int = Field(100 * 1024 * 1024, ge=1)
    # Jobs (unset queue = no consumer). jobs_max_receive must equal the queue's redrive maxReceiveCount.
    jobs_queue_url: str | None = None
    jobs_table: str | None = None
    jobs_topic_arn: str | None = None
    # The DLQ the worker drains (pages that never got counted are counted failed); unset: found from the redrive.
    jobs_dlq_url: str | None = None
    jobs_max_receive: int = Field(3, ge=1, le=1000)
    jobs_visibility_s: int = Field(120, ge=5, le=43_200)
    jobs_poll_s: int = Field(10, ge=0, le=20)
    jobs_retry_delay_s: int = Field(2, ge=0, le=900)
    # A completion event still unsent this long after the job finished is sent again by any worker (its
    # sender died). Longer than one send can take: 4 webhook attempts of 10 s plus backoff.
    jobs_event_retry_s: int = Field(120, ge=1, le=86_400)
    # Local stack/tests only: webhooks to a loopback receiver (every other non-public address is always refused).
    allow_loopback_webhooks: bool = False
    # Repetition guard: an n-gram seen before inside the last `window` tokens is blocked.
    repetition_window: int = Field(90, ge=2)
    repetition_ngram: int = Field(30, ge=2)
    # Static KV cache (transformers compiles the decode step on CUDA): on only where `bench/gpu_fullsize.py`
    # reported it kept (the same tokens, and faster) on that GPU.
    deepseek_static_cache: bool = False
    results_bucket: str = "ocr-results"
    s3_endpoint_url: str | None = None
    aws_region: str = "us-west-2"
    result_url_ttl_s: int = Field(3600, ge=1, le=7 * 24 * 3600)
    results_prefix: str = "results/"
    upload_prefix: str = "uploads/"
    log_level: str = "INFO"
    # S3: short timeouts and few retries, so a hung S3 costs seconds, not minutes (DESIGN.md, Failure rules).
    s3_connect_timeout_s: float = Field(2.0, gt=0, le=60)
    s3_read_timeout_s: float = Field(5.0, gt=0, le=300)
    s3_max_attempts: int = Field(2, ge=1, le=10)
    s3_threads: int = Field(8, ge=1, le=256)  # blocking S3 calls run here, apart from decoding and the engine
    decode_threads: int = Field(2, ge=1, le=64)
    s3_probe_interval_s: float = Field(3.0, gt=0)  # /health's cached S3 check (one HEAD of the bucket)
    s3_probe_timeout_s: float = Field(2.0, gt=0)  # a HEAD slower than this counts as S3 down
    # Results that S3 did not take wait here (oldest dropped first when full) and are retried.
    spool_dir: str | None = None  # default: <temp dir>/ocr-worker-spool-<port>
    spool_max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    spool_retry_s: float = Field(2.0, gt=0)
    # Owner and request-id headers are trusted only beside this secret (the edge sends it); unset = never.
    worker_shared_secret: SecretStr | None = None
    # Admission: refuse early (429) when the estimated queue wait would eat this share of the timeout.
    admission_wait_fraction: float = Field(0.8, gt=0, le=1)
    # Slow clients: headers and body must arrive within these times; connections above the cap are closed.
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(30.0, gt=0)
    max_connections: int = Field(256, ge=1)


def load_settings(**overrides: object) -> WorkerSettings:
    """Read the settings, failing fast with one clear line per bad value."""
    return read_settings(WorkerSettings, "worker", **overrides)
