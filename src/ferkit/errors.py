"""Exceptions raised by ferkit. Library code raises these; only the CLI prints and exits.

Every message is one line that names the file (and row or field) and what is wrong.
"""
from __future__ import annotations


class FerkitError(Exception):
    """Base class of every error ferkit raises on purpose."""


class DataError(FerkitError, ValueError):
    """A dataset path, layout, row, class or split is missing or malformed."""


class ConfigError(FerkitError, ValueError):
    """A training/evaluation config key or value is unknown or invalid."""


class UnknownModelError(FerkitError, KeyError):
    """A model name is not in the registry (nor a timm model)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightsError(FerkitError, ValueError):
    """A weights file is missing, unsafe, corrupt or does not fit the model."""


class FerkitDeprecationWarning(DeprecationWarning):
    """A name or option that still works but will be removed; the message says what to use instead.
    The CLI shows it as one line on stderr."""


def first_line(exc: BaseException) -> str:
    """``"ErrorType: first line of the message"``, for one-line error messages."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def shorten(text: str, limit: int = 160) -> str:
    """``text`` on one line (runs of white space made one space), cut at most ``limit`` characters at a word
    boundary with `` ...``, never mid-word: a text with no space before ``limit`` is not cut at all."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 3)
    return text if cut <= 0 else text[:cut].rstrip(",;:") + " ..."
