"""Image preprocessing, defined once.

`eval_transform(input_cfg)` is the exact preprocessing a model was trained with; it is built from
the ``input`` section of a training config or of a saved model's JSON (``size``, ``channels``,
``mean``, ``std``), so inference never restates it. `train_transform` adds the configured
augmentations in front of the same final steps.

Input to both: a uint8 numpy array, (H, W) grayscale or (H, W, 3) RGB. Output: a float32 tensor
(C, size, size), normalised.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

__all__ = ["eval_transform", "model_size_transform", "to_tensor_image", "train_transform"]


def _get(cfg: Any, key: str) -> Any:
    return cfg[key] if isinstance(cfg, Mapping) else getattr(cfg, key)


def to_tensor_image(img: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 (H, W) or (H, W, 3) array -> uint8 tensor (channels, H, W), converting gray<->RGB."""
    t = torch.tensor(img)  # a copy: dataset arrays may be read-only memory maps
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    if t.shape[0] == channels:
        return t
    if channels == 3:  # gray -> RGB
        return t.expand(3, -1, -1).contiguous()
    # RGB -> gray with ITU-R 601 luma, as PIL's convert("L") does
    w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (t.float() * w).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)


class _ToChannels(torch.nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, img: np.ndarray) -> torch.Tensor:
        return to_tensor_image(img, self.channels)


def _head(input_cfg: Any) -> list:
    size = int(_get(input_cfg, "size"))
    return [_ToChannels(int(_get(input_cfg, "channels"))), v2.Resize((size, size), antialias=True)]


def _tail(input_cfg: Any) -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(_get(input_cfg, "mean")), list(_get(input_cfg, "std")))]


def model_size_transform(input_cfg: Any) -> v2.Compose:
    """The first steps of `eval_transform`: channels -> resize to size x size (uint8 tensor, no scaling)."""
    return v2.Compose(_head(input_cfg))


def eval_transform(input_cfg: Any) -> v2.Compose:
    """Deterministic preprocessing: channels -> resize to size x size -> [0, 1] -> normalise."""
    return v2.Compose(_head(input_cfg) + _tail(input_cfg))


def train_transform(input_cfg: Any, aug: Any) -> v2.Compose:
    """`eval_transform` plus the augmentations of the papers, each switched by the ``augment`` config."""
    size = int(_get(input_cfg, "size"))
    steps = _head(input_cfg)
    if _get(aug, "resized_crop") > 0:
        steps.append(v2.RandomResizedCrop(size, scale=(_get(aug, "resized_crop"), 1.0), antialias=True))
    if _get(aug, "crop_padding") > 0:
        steps.append(v2.RandomCrop(size, padding=int(_get(aug, "crop_padding")), padding_mode="edge"))
    if _get(aug, "hflip"):
        steps.append(v2.RandomHorizontalFlip())
    rot, shift, zoom, shear = (_get(aug, k) for k in ("rotation", "shift", "zoom", "shear"))
    if rot or shift or zoom or shear:
        steps.append(
            v2.RandomAffine(
                degrees=rot,
                translate=(shift, shift) if shift else None,
                scale=(1 - zoom, 1 + zoom) if zoom else None,
                shear=shear or None,
            )
        )
    if _get(aug, "brightness") or _get(aug, "contrast"):
        steps.append(v2.ColorJitter(brightness=_get(aug, "brightness") or None, contrast=_get(aug, "contrast") or None))
    steps += _tail(input_cfg)
    if _get(aug, "erasing") > 0:
        steps.append(v2.RandomErasing(p=_get(aug, "erasing")))
    return v2.Compose(steps)
