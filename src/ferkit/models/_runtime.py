"""Running a trained classifier: the :class:`Classifier` interface and its two runtimes, PyTorch
(:class:`TorchClassifier`, here) and ONNX Runtime (:class:`OnnxClassifier`, in ``_onnx``, which
needs no PyTorch), plus :func:`probabilities`, the one softmax with temperature that every
backend's logits go through.

``ferkit.infer`` chooses and loads a runtime (``load_classifier``); ``ferkit.export`` writes the ONNX
files and checks them against PyTorch with these same classes.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ferkit.models._onnx import OnnxClassifier, probabilities

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
