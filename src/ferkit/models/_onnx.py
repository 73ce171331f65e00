"""An exported ONNX model (``<stem>.onnx`` + ``<stem>.json``, written by ``ferkit.export``): reading
and checking the pair, running it with ONNX Runtime, and the one softmax every backend's logits go
through. Needs numpy and onnxruntime only: the light install (no PyTorch) classifies faces with it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError, WeightsError
from ferkit.models._files import model_paths, read_json, sha256_file

__all__ = ["ONNX_FORMAT", "OnnxClassifier", "default_threads", "is_onnx_export", "onnx_paths", "probabilities",
           "read_onnx_meta"]

#: the ``format`` of the JSON beside an exported ``.onnx`` file
ONNX_FORMAT = "ferkit-onnx/1"


def default_threads() -> int:
    """``torch.get_num_threads()`` when PyTorch is already loaded, else the number of CPUs."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else max(1, os.cpu_count() or 1)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class OnnxClassifier:
    """An exported ONNX model run by ONNX Runtime on the CPU, as a :class:`Classifier`.

    Args:
        path: the ``.onnx`` file (see :func:`ferkit.export.export_onnx`; its JSON is not read here).
        threads: intra-op threads; None = ``torch.get_num_threads()`` when PyTorch is loaded (so one
            setting, ``torch.set_num_threads``, governs both backends), else the CPU count. More
            threads help large batches; on a busy machine one thread is often as fast for single faces.

    Raises WeightsError (one line naming the file) when ONNX Runtime cannot load the file.
    """

    backend = "onnx"

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None):
        import onnxruntime as ort

        if threads is not None and threads < 1:
            raise FerkitError(f"OnnxClassifier: threads must be >= 1, not {threads}")
        self.path = os.fspath(path)
        self.threads = int(threads or default_threads())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: ORT warns about unused initialisers on stderr otherwise
        try:
            self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own pybind11 types (InvalidProtobuf, Fail, NoSuchFile...)
            raise WeightsError(f"{self.path}: not a readable ONNX model ({_first_line(e)})") from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise WeightsError(f"{self.path}: expected an ONNX model with one input, found {len(inputs)}")
        self.input_name: str = inputs[0].name
        self.input_shape: list[int | str] = list(inputs[0].shape)
        # a model exported with a fixed batch of 1 is run one face at a time
        self._fixed_batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else None

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.path!r}, threads={self.threads})"

    def __call__(self, batch: Any) -> np.ndarray:
        if hasattr(batch, "detach"):  # a torch tensor
            batch = batch.detach().cpu().numpy()
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if self._fixed_batch == 1 and len(x) > 1:
            return np.concatenate([self._run(x[i : i + 1]) for i in range(len(x))])
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)


def probabilities(logits: np.ndarray, temperature: float | None = None, shift: np.ndarray | None = None) -> np.ndarray:
    """``softmax(logits / temperature + shift)`` per row, float64 (rows sum to 1); None means 1 / no shift.
    ``shift`` is a per-class log-prior change from :func:`prior_shift`."""
    t = 1.0 if temperature is None else float(temperature)
    if not t > 0:
        raise FerkitError(f"temperature must be > 0, not {temperature!r}")
    z = np.asarray(logits, dtype=np.float64) / t
    if shift is not None:
        z = z + shift
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def onnx_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(onnx, json)`` paths for ``path``: a stem (``out/model``), either file of the pair, or a
    directory (existing, or written with a trailing slash) holding ``model.onnx`` + ``model.json``."""
    return model_paths(path, weights_suffix=".onnx")


def is_onnx_export(path: Any) -> bool:
    """Whether ``path`` names an ONNX export: a ``.onnx`` file name, or a stem/JSON/folder whose
    JSON has format ``ferkit-onnx/1``. Model names (``"default"``) and PyTorch models are not."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    if Path(path).suffix == ".onnx":
        return True
    _, meta_path = onnx_paths(path)
    meta = read_json(meta_path) if meta_path.is_file() else None
    return bool(meta and meta.get("format") == ONNX_FORMAT)


def read_onnx_meta(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """``(onnx path, metadata)`` of an export written by :func:`export_onnx`, with the .onnx file's
    sha256 checked. Raises WeightsError (one line naming the file) for a missing file, bad JSON, a
    PyTorch model's JSON, missing keys or a checksum mismatch."""
    onnx_path, meta_path = onnx_paths(path)
    if not meta_path.is_file():
        raise WeightsError(f"{meta_path}: ONNX model metadata not found (export_onnx writes it next to {onnx_path.name})")
    meta = read_json(meta_path)
    if meta is None:
        raise WeightsError(f"{meta_path}: not a readable JSON object")
    fmt = meta.get("format")
    if fmt != ONNX_FORMAT:
        hint = "; a PyTorch model: use backend='torch', or export it with `ferkit export`" \
            if fmt == "ferkit-model/1" else ""
        raise WeightsError(f"{meta_path}: format is {fmt!r}, expected {ONNX_FORMAT!r}{hint}")
    missing = [k for k in ("classes", "input", "input_name", "sha256") if k not in meta]
    if missing:
        raise WeightsError(f"{meta_path}: lacks {', '.join(missing)}")
    if not onnx_path.is_file():
        raise WeightsError(f"{onnx_path}: ONNX file not found (named by {meta_path.name})")
    if sha256_file(onnx_path) != meta["sha256"]:
        raise WeightsError(f"{onnx_path}: checksum mismatch, file corrupt or modified (sha256 differs from {meta_path.name})")
    return onnx_path, meta
