"""Running a trained classifier: the :class:`Classifier` interface and its two runtimes, PyTorch
(:class:`TorchClassifier`) and ONNX Runtime (:class:`OnnxClassifier`), plus :func:`probabilities`,
the one softmax with temperature that every backend's logits go through.

``ferkit.infer`` chooses and loads a runtime (``load_classifier``); ``ferkit.export`` writes the ONNX
files and checks them against PyTorch with these same classes.
"""
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ferkit.errors import FerkitError, WeightsError

__all__ = ["Classifier", "OnnxClassifier", "TorchClassifier", "probabilities"]


@runtime_checkable
class Classifier(Protocol):
    """``classifier(batch) -> logits``: float32 ``(N, C, H, W)`` numpy array or tensor in,
    ``(N, classes)`` float32 numpy logits out."""

    backend: str

    def __call__(self, batch: np.ndarray | torch.Tensor) -> np.ndarray: ...


class TorchClassifier:
    """A PyTorch module (in eval mode, on ``device``) as a :class:`Classifier`."""

    backend = "torch"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def __repr__(self) -> str:
        return f"TorchClassifier({type(self.model).__name__}, device={str(self.device)!r})"

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(batch, dtype=torch.float32).to(self.device)
        return self.model(x).float().cpu().numpy()


class OnnxClassifier:
    """An exported ONNX model run by ONNX Runtime on the CPU, as a :class:`Classifier`.

    Args:
        path: the ``.onnx`` file (see :func:`ferkit.export.export_onnx`; its JSON is not read here).
        threads: intra-op threads; None = ``torch.get_num_threads()``, so one setting
            (``torch.set_num_threads``) governs both backends. More threads help large batches;
            on a busy machine one thread is often as fast for single faces.

    Raises WeightsError (one line naming the file) when ONNX Runtime cannot load the file.
    """

    backend = "onnx"

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None):
        import onnxruntime as ort

        from ferkit.models._pretrained import first_line

        if threads is not None and threads < 1:
            raise FerkitError(f"OnnxClassifier: threads must be >= 1, not {threads}")
        self.path = os.fspath(path)
        self.threads = int(threads or torch.get_num_threads())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: ORT warns about unused initialisers on stderr otherwise
        try:
            self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own pybind11 types (InvalidProtobuf, Fail, NoSuchFile...)
            raise WeightsError(f"{self.path}: not a readable ONNX model ({first_line(e)})") from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise WeightsError(f"{self.path}: expected an ONNX model with one input, found {len(inputs)}")
        self.input_name: str = inputs[0].name
        self.input_shape: list[int | str] = list(inputs[0].shape)
        # a model exported with a fixed batch of 1 is run one face at a time
        self._fixed_batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else None

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.path!r}, threads={self.threads})"

    def __call__(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        x = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else batch
        x = np.ascontiguousarray(x, dtype=np.float32)
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
