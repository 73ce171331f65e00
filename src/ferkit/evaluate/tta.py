"""Test-time augmentation (TTA) on top of the model's own preprocessing.

Preprocessing is always :func:`ferkit.data.transforms.eval_transform` built from the model's
``input`` metadata (never restated here); TTA only adds views:

``none``
    one view, exactly ``eval_transform``.
``flip``
    two views: the ``eval_transform`` image and its horizontal mirror.
``ten-crop``
    ten views: ``eval_transform`` at a slightly larger size (``ceil(size * TEN_CROP_RESIZE)``, 54 px
    for a 48 px model), then the four corner crops and the centre crop at the model's input size,
    and the mirror of each.

Predictions average the softmax probabilities of the views
(:func:`ferkit.evaluate.inference.combine_views`). Importing this module does not import torch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["TEN_CROP_RESIZE", "TTA_MODES", "make_views", "tta_transform", "tta_views"]

TTA_MODES: tuple[str, ...] = ("none", "flip", "ten-crop")
#: ten-crop first resizes to this factor of the model's input size
TEN_CROP_RESIZE = 1.125
_VIEWS = {"none": 1, "flip": 2, "ten-crop": 10}


def tta_views(tta: str) -> int:
    """Number of views a TTA mode produces per image."""
    return _VIEWS[tta]


def tta_transform(input_cfg: Mapping[str, Any], tta: str):
    """``(per-image transform, crop size)``: the model's ``eval_transform``, at the larger
    ten-crop size for ``ten-crop``."""
    from ferkit.data.transforms import eval_transform

    size = int(input_cfg["size"])
    if tta == "ten-crop":
        return eval_transform({**input_cfg, "size": math.ceil(size * TEN_CROP_RESIZE)}), size
    return eval_transform(input_cfg), size


def make_views(x: Any, tta: str, size: int) -> Any:
    """(B, C, H, W) batch from :func:`tta_transform` -> (B * V, C, size, size), the V views of an
    image next to each other."""
    import torch

    if tta == "none":
        return x
    if tta == "flip":
        return torch.stack([x, x.flip(-1)], dim=1).flatten(0, 1)
    h, w = x.shape[-2:]
    tops = (0, 0, h - size, h - size, (h - size) // 2)
    lefts = (0, w - size, 0, w - size, (w - size) // 2)
    crops = [x[..., t:t + size, left:left + size] for t, left in zip(tops, lefts)]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops, dim=1).flatten(0, 1)
