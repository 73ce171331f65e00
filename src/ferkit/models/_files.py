"""Where a saved model's files are, and their checksum (standard library only)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["model_paths", "sha256_file"]

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
