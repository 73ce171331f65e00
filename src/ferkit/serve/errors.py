"""The one exception the service raises on purpose: a client mistake, answered as ``{"detail": "..."}``."""
from __future__ import annotations

from ferkit.errors import FerkitError

__all__ = ["InputError"]


class InputError(FerkitError):
    """Bad client input; ``status_code`` is the HTTP status (4xx) of the JSON error answer."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
