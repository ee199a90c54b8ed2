"""The worker's one settings object, read from the environment once at start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
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
    # Repetition guard: an n-gram seen before inside the last `window` tokens is blocked.
    repetition_window: int = Field(90, ge=2)
    repetition_ngram: int = Field(30, ge=2)
    results_bucket: str = "ocr-results"
    s3_endpoint_url: str | None = None
    aws_region: str = "us-west-2"
    result_url_ttl_s: int = Field(3600, ge=1, le=7 * 24 * 3600)
    results_prefix: str = "results/"
    upload_prefix: str = "uploads/"
    log_level: str = "INFO"


def load_settings(**overrides: object) -> WorkerSettings:
    """Read the settings, failing fast with one clear line per bad value."""
    return read_settings(WorkerSettings, "worker", **overrides)
