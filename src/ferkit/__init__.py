"""ferkit: facial expression recognition toolkit.

`import ferkit` is cheap: heavy submodules (torch, lightning) are imported on first use.

>>> import ferkit
>>> results = ferkit.predict(["photo.jpg", "photos/"])   # Results: .to_json(), .to_csv(), .to_pandas(), .failures
>>> ferkit.video("clip.mp4", "clip_out/")                 # annotated MP4, per-face CSV and JSON, emotion plot

Training and evaluation live in their subpackages: ``from ferkit.train import train``,
``from ferkit.evaluate import evaluate``.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "predict": "ferkit.api",
    "Results": "ferkit.api",
    "video": "ferkit.api",
    "create_model": "ferkit.models",
    "list_models": "ferkit.models",
    "load_model": "ferkit.models",
    "save_model": "ferkit.models",
    "load_dataset": "ferkit.data",
    "FaceSet": "ferkit.data",
    "TrainConfig": "ferkit.train",
    "Recognizer": "ferkit.infer",
    "load_image": "ferkit.infer",
    "detect_faces": "ferkit.detect",
    "export_onnx": "ferkit.export",
}

__all__ = ["__version__", *_LAZY]  # noqa: PLE0604 - names resolved lazily by __getattr__


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
