"""The one exception the service raises on purpose: a client mistake, answered as ``{"detail": "..."}``."""
from __future__ import annotations

from ferkit.errors import FerkitError

__all__ = ["InputError"]


class InputError(FerkitError):
    """Bad client input (4xx) or a busy server (503); ``status_code`` is the HTTP status of the JSON
    error answer, ``headers`` extra response headers (``Retry-After``)."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
