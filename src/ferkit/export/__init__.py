"""Model export for fast inference: ONNX files that ONNX Runtime runs on any CPU.

>>> from ferkit.export import export_onnx
>>> export_onnx("default", "exports/default")       # exports/default.onnx + exports/default.json
>>> from ferkit.infer import Recognizer
>>> rec = Recognizer("exports/default.onnx")      # runs on ONNX Runtime

Inference only loads ONNX files (shipped ones, or those written here); it never exports: export a
model once, here or with ``ferkit export MODEL --out FILE.onnx``, then give the ``.onnx`` file.

Each export is checked against PyTorch on a real face before it is written (largest probability
difference below 1e-4). The graph ends at the logits; softmax and a stored temperature stay in
Python. ``onnx`` and ``onnxruntime`` are imported only when a function needs them.
"""
from __future__ import annotations

from ferkit.export._onnx import (
    ONNX_FORMAT,
    ExportError,
    export_onnx,
    is_onnx_export,
    onnx_paths,
    read_onnx_meta,
)

__all__ = [
    "ONNX_FORMAT",
    "ExportError",
    "export_onnx",
    "is_onnx_export",
    "onnx_paths",
    "read_onnx_meta",
]
