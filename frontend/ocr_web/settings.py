"""The web app's one settings object: where the edge is and the key the Reflex backend uses."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FrontendSettings(BaseSettings):
    """EDGE_URL and EDGE_API_KEY stay on the server: the browser never sees the key."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    edge_url: str = "http://127.0.0.1:8080"
    edge_api_key: str = ""
    # Inline images travel base64-encoded inside a 6 MB request: larger ones go through /v1/uploads.
    inline_max_bytes: int = Field(4 * 1024 * 1024, ge=1)
    upload_max_bytes: int = Field(20 * 1024 * 1024, ge=1)
    request_timeout_s: float = Field(120.0, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> FrontendSettings:
    """Read once per process."""
    return FrontendSettings()
