"""Server settings: one pydantic-settings object, read from ``FERKIT_SERVE_*`` environment variables
and overridden by explicit values (``ferkit serve`` passes its options). Routes get it with
``Depends(get_settings)``; ``create_app(settings)`` overrides that dependency with its own object."""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferkit.images import MAX_MEGAPIXELS

__all__ = ["ENV_PREFIX", "Settings", "get_settings", "usable_cores"]

ENV_PREFIX = "FERKIT_SERVE_"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, so a container's or taskset's
    limit counts), at least 1."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Settings(BaseSettings):
    """Everything ``ferkit serve`` can be told; each field is also ``FERKIT_SERVE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="address to bind; loopback unless asked otherwise")
    port: int = Field(8000, ge=0, le=65535)
    model: str = Field("default", description="shipped model name or saved model path")
    detector: str | None = Field(None, description="face detector name (None: the Recognizer's default, dlib-hog+blazeface)")
    backend: Literal["torch", "onnx"] | None = Field(None, description="inference backend (None: the Recognizer's default)")
    device: str = Field("cpu", description="torch device for the classifier")
    min_size: int | None = Field(None, ge=1, description="smallest face side in pixels (None: the detector's default)")
    workers: int = Field(default_factory=lambda: usable_cores(), ge=1,
                         description="uvicorn worker processes, each with its own model (default: one per usable core)")
    max_upload_mb: float = Field(10.0, gt=0, description="largest accepted upload (image bytes), in MB (10**6 bytes)")
    max_megapixels: float = Field(MAX_MEGAPIXELS, gt=0, description="largest image decoded (a large JPEG counts at the "
                                   "reduced size it is decoded at), from its header, before decoding; as ferkit predict")
    max_detect_megapixels: float = Field(2.0, gt=0, description="faces are detected on a copy of the image scaled "
                                         "down to this many megapixels (boxes mapped back, crops from the full image)")
    max_batch: int = Field(32, ge=1, description="most faces classified together across concurrent requests")
    batch_wait_ms: float = Field(0.0, ge=0, le=1000, description="how long a batch waits for more faces (0: it takes "
                                 "only what queued up while the classifier was busy, adding no latency)")

    max_pending: int = Field(16, ge=1, description="images accepted at once (requests and WebSocket frames being read, "
                             "detected or classified); beyond, 503 with Retry-After, before the upload is read")
    request_budget_s: float = Field(30.0, gt=0, le=3600, description="seconds an image may wait for and use the "
                                    "detector; beyond, 503 and its work is dropped")
    head_timeout_s: float = Field(10.0, gt=0, le=600, description="seconds a connection may take to send a request's "
                                  "line and headers (slow or half-sent heads are closed)")
    allowed_hosts: str | None = Field(None, description="extra Host names the server answers to, comma-separated "
                                      "('*': any); loopback names and the bound address always")
    token: SecretStr | None = Field(None, description="bearer token required on everything but /health and the page")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        from ferkit.serve.security import TOKEN_PATTERN

        if v is not None and not TOKEN_PATTERN.fullmatch(v.get_secret_value()):
            raise ValueError("the token must be 16 or more of A-Z a-z 0-9 . _ ~ - (e.g. python -c "
                             "'import secrets; print(secrets.token_urlsafe(24))')")
        return v

    @property
    def extra_hosts(self) -> list[str]:
        return [h for h in (self.allowed_hosts or "").split(",") if h.strip()]

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment (cached); ``create_app`` overrides this dependency."""
    return Settings()
