"""Where a saved model's files are, and their checksum (standard library only)."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferkit.errors import WeightsError

__all__ = ["load_json_object", "model_paths", "read_json", "sha256_file"]

#: the file stem inside a model folder (``runs/x/model.safetensors`` + ``runs/x/model.json``)
_DIR_STEM = "model"


def model_paths(path: str | os.PathLike[str], *, weights_suffix: str = ".safetensors") -> tuple[Path, Path]:
    """``(weights, json)`` paths for ``path``: a stem (``runs/x/model``), either file of the pair, or a
    directory (existing, or written with a trailing slash) holding ``model<weights_suffix>`` + ``model.json``."""
    p = Path(path).expanduser()
    if p.is_dir() or os.fspath(path).endswith(("/", os.sep)):
        p = p / _DIR_STEM
    elif p.suffix in (weights_suffix, ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + weights_suffix), p.with_name(p.name + ".json")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_json_object(path: Path) -> dict[str, Any]:
    """A model's JSON file as a dict; WeightsError (one line naming the file) when it cannot be read,
    is not JSON or is not an object. A missing file is the caller's to report (each names its hint)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        text = str(e).strip().splitlines()
        first = f"{type(e).__name__}: {text[0]}" if text else type(e).__name__  # as _pretrained.first_line
        raise WeightsError(f"{path}: not readable JSON ({first})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_json(path: Path, warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """:func:`load_json_object`, or None for anything it refuses (to sniff a file's format); ``warn``
    gets the one-line reason when a file that exists is refused."""
    try:
        return load_json_object(path)
    except WeightsError as e:
        if warn is not None and path.exists():
            warn(str(e))
        return None
