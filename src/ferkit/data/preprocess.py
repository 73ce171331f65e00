"""The preprocessing of inference, in numpy and Pillow alone (no PyTorch): what every backend, the
PyTorch one and ONNX Runtime alike, feeds its model, so their probabilities agree.

Built from the ``input`` section of a model's JSON (``size``, ``channels``, ``mean``, ``std``):
channels (grey -> RGB by copying; RGB -> grey with ITU-R 601 luma, rounded) -> resize to
``size`` x ``size`` (Pillow's antialiased bilinear on the uint8 image; nothing when the face is
already that size, as FER2013's 48 px faces are) -> [0, 1] -> ``(x - mean) / std``.

Training's transforms (``ferkit.data.transforms``, torchvision's v2 ``Resize(antialias=True)``)
use the same steps; their resize agrees with Pillow's to within one grey level (a test checks it),
and on faces already at the model's size the two are equal to the bit.

>>> x = eval_transform(meta["input"])(face)      # float32 (C, size, size) numpy array
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["EvalTransform", "eval_transform", "to_channels"]

#: ITU-R 601 luma weights (as PIL's ``convert("L")`` and torchvision's ``Grayscale``)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _get(cfg: Any, key: str) -> Any:
    return cfg[key] if isinstance(cfg, Mapping) else getattr(cfg, key)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` -> uint8 ``(H, W, channels)``: grey copied to RGB, or RGB
    to grey (luma, rounded to the nearest level)."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == channels:
        return a
    if channels == 3:
        return np.repeat(a, 3, axis=2)
    f = a.astype(np.float32)
    grey = f[..., 0] * LUMA[0] + f[..., 1] * LUMA[1] + f[..., 2] * LUMA[2]
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, :, None]


class EvalTransform:
    """``face (uint8 (H, W) or (H, W, 3)) -> float32 (channels, size, size)``, normalised."""

    def __init__(self, size: int, channels: int, mean: Any, std: Any):
        self.size, self.channels = int(size), int(channels)
        self.mean = np.asarray(list(mean), np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(list(std), np.float32).reshape(-1, 1, 1)

    def __repr__(self) -> str:
        return (f"EvalTransform(size={self.size}, channels={self.channels}, mean={self.mean.ravel().tolist()}, "
                f"std={self.std.ravel().tolist()})")

    def resized(self, img: np.ndarray) -> np.ndarray:
        """The face at the model's channels and size, uint8 ``(size, size, channels)``."""
        from PIL import Image

        a = to_channels(img, self.channels)
        if a.shape[:2] != (self.size, self.size):
            im = Image.fromarray(np.ascontiguousarray(a[..., 0] if self.channels == 1 else a))
            a = np.asarray(im.resize((self.size, self.size), Image.Resampling.BILINEAR, reducing_gap=None))
            a = a[:, :, None] if a.ndim == 2 else a
        return a

    def __call__(self, img: np.ndarray) -> np.ndarray:
        x = self.resized(img).transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)
        return (x - self.mean) / self.std


def eval_transform(input_cfg: Any) -> EvalTransform:
    """The deterministic preprocessing of a model, from its ``input`` section."""
    return EvalTransform(_get(input_cfg, "size"), _get(input_cfg, "channels"), _get(input_cfg, "mean"),
                         _get(input_cfg, "std"))
