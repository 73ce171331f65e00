"""Models shipped inside the package (trained here by ferkit), loaded by name.

``src/ferkit/weights/index.json`` maps names to weight stems in the same folder, e.g.
``{"default": "fer2013_vgg_fer_w15", "vgg_fer": "fer2013_vgg_fer_w15", "vgg_fer_w1": "fer2013_vgg_fer"}``. Each stem is a
``.safetensors`` + ``.json`` pair written by `save_model`, whose sha256 `load_model` checks, and
its ONNX export ``onnx/<stem>.onnx`` + ``onnx/<stem>.json`` (``scripts/export_shipped_onnx.py``),
which the light install (no PyTorch) runs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ferkit.errors import WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def shipped_models() -> dict[str, str]:
    """Shipped model names -> weight stems (empty when the package ships none)."""
    index = WEIGHTS_DIR / "index.json"
    if not index.is_file():
        return {}
    return dict(json.loads(index.read_text(encoding="utf-8")))


def resolve_model_path(model: str | os.PathLike[str]) -> Path:
    """A path to a saved model: an existing file/folder/stem as given, else a shipped model's stem.

    A bare name that is neither raises WeightsError listing the shipped names.
    """
    p = Path(model).expanduser()
    if p.exists() or p.with_name(p.name + ".json").exists():
        return p
    name = os.fspath(model)
    shipped = shipped_models()
    if name in shipped:
        return WEIGHTS_DIR / shipped[name]
    if os.sep in name or name.endswith((".json", ".safetensors")):
        raise WeightsError(f"{name}: no such model file or folder")
    known = ", ".join(sorted(shipped)) or "none shipped yet"
    raise WeightsError(f"{name}: not a model file or folder, nor a shipped model ({known})")


def shipped_onnx(model: object) -> Path | None:
    """The shipped ONNX export (``weights/onnx/<stem>.json``) of a shipped model name, or None for
    anything else (a path, an unknown name, a model shipped without its export)."""
    if not isinstance(model, str):
        return None
    stem = shipped_models().get(model)
    if stem is None or Path(model).expanduser().exists():
        return None
    meta = WEIGHTS_DIR / "onnx" / f"{stem}.json"
    return meta if meta.is_file() else None
