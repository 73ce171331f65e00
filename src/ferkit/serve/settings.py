"""Server settings: one pydantic-settings object, read from ``FERKIT_SERVE_*`` environment variables
and overridden by explicit values (``ferkit serve`` passes its options). Routes get it with
``Depends(get_settings)``; ``create_app(settings)`` overrides that dependency with its own object."""
from __future__ import annotations

import os
from dataclasses import fields
from functools import lru_cache
from typing import Any, get_type_hints

from pydantic import Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferkit.errors import FerkitError
from ferkit.infer import NOT_SERVED, RecognizerOptions

__all__ = ["ENV_PREFIX", "Settings", "get_settings", "usable_cores"]

ENV_PREFIX = "FERKIT_SERVE_"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, so a container's or taskset's
    limit counts), at least 1."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


#: RecognizerOptions fields the server does not take: it batches faces across requests (max_batch)
NOT_SERVER_OPTIONS = NOT_SERVED


def _recognizer_fields() -> dict[str, Any]:
    """A pydantic field per ``ferkit.infer.RecognizerOptions`` field: the server's model and face
    settings are those of ``ferkit predict``, with the same names, units, defaults and checks."""
    hints = get_type_hints(RecognizerOptions)
    return {f.name: (hints[f.name], Field(f.default, description=f.metadata["help"]))
            for f in fields(RecognizerOptions) if f.name not in NOT_SERVER_OPTIONS}


#: the model and face part of :class:`Settings`, generated from ``RecognizerOptions``
RecognizerSettings = create_model("RecognizerSettings", __base__=BaseSettings, **_recognizer_fields())


class Settings(RecognizerSettings):  # type: ignore[misc, valid-type]
    """Everything ``ferkit serve`` can be told; each field is also ``FERKIT_SERVE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="address to bind; loopback unless asked otherwise")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(default_factory=lambda: usable_cores(), ge=1,
                         description="uvicorn worker processes, each with its own model (default: one per usable core)")
    max_upload_mb: float = Field(10.0, gt=0, description="largest accepted upload (image bytes), in MB (10**6 bytes)")
    max_batch: int = Field(32, ge=1, description="most faces classified together across concurrent requests")
    batch_wait_ms: float = Field(0.0, ge=0, le=1000, description="how long a batch waits for more faces (0: it takes "
                                 "only what queued up while the classifier was busy, adding no latency)")

    max_pending: int = Field(16, ge=1, description="images accepted at once (complete uploads and WebSocket frames "
                             "being detected or classified); beyond, 503 with Retry-After; uploads being received "
                             "hold at most max_pending x max_upload_mb bytes")
    request_budget_s: float = Field(30.0, gt=0, le=3600, description="seconds an image may wait for and use the "
                                    "detector; beyond, 503 and its work is dropped")
    head_timeout_s: float = Field(10.0, gt=0, le=600, description="seconds a connection may take to send a request's "
                                  "line and headers (slow or half-sent heads are closed)")
    body_timeout_s: float = Field(60.0, gt=0, le=3600, description="seconds a request's body may take after its head; "
                                  "a slower (or stalled) upload is answered 408 and its connection closed")
    min_body_rate_kb_s: float = Field(10.0, ge=0, description="slowest average upload rate in KB/s (10**3 bytes), "
                                      "checked after the first 5 s of a body; slower uploads get 408 "
                                      "(0: no rate check)")
    allowed_hosts: str | None = Field(None, description="extra Host names the server answers to, comma-separated "
                                      "('*': any); loopback names and the bound address always")
    token: SecretStr | None = Field(None, description="bearer token required on everything but /health and the page")

    @model_validator(mode="after")
    def _recognizer_options(self) -> Settings:
        self.recognizer_options()  # RecognizerOptions' own checks: one line naming the field
        return self

    def recognizer_options(self) -> RecognizerOptions:
        """The server's ``ferkit.infer.RecognizerOptions`` (batch_size: the Recognizer's default)."""
        try:
            return RecognizerOptions(**{f.name: getattr(self, f.name) for f in fields(RecognizerOptions)
                                        if f.name not in NOT_SERVER_OPTIONS})
        except FerkitError as e:
            raise ValueError(str(e)) from None

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
    def body_budget_bytes(self) -> int:
        """Bytes of request bodies being received at once (per worker): ``max_pending`` full uploads."""
        return self.max_pending * self.max_upload_bytes

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment (cached); ``create_app`` overrides this dependency."""
    return Settings()
