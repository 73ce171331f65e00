"""Image preprocessing, defined once.

`eval_transform(input_cfg)` is the exact preprocessing a model was trained with; it is built from
the ``input`` section of a training config or of a saved model's JSON (``size``, ``channels``,
``mean``, ``std``), so inference never restates it. `train_transform` adds the configured
augmentations in front of the same final steps.

Input to both: a uint8 numpy array, (H, W) grayscale or (H, W, 3) RGB. Output: a float32 tensor
(C, size, size), normalised.

`eval_transform` is ``ferkit.data.preprocess``'s (numpy and Pillow: inference needs no PyTorch and
no torchvision, about 2-4 s of every start-up) with a tensor out; its resize agrees with
torchvision's v2 ``Resize(antialias=True)`` used in training to within one grey level, and on faces
already at the model's size the two are equal to the bit (tests check both). Training's transforms
use torchvision's v2, imported when they are built.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["BatchAugment", "EvalTransform", "eval_transform", "model_size_transform", "to_tensor_image",
           "train_transform"]


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
    from torchvision.transforms import v2

    size = int(_get(input_cfg, "size"))
    return [_ToChannels(int(_get(input_cfg, "channels"))), v2.Resize((size, size), antialias=True)]


def _tail(input_cfg: Any) -> list:
    from torchvision.transforms import v2

    return [v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(_get(input_cfg, "mean")), list(_get(input_cfg, "std")))]


def model_size_transform(input_cfg: Any) -> Any:
    """The first steps of `eval_transform`: channels -> resize to size x size (uint8 tensor, no scaling);
    a torchvision v2 ``Compose``."""
    from torchvision.transforms import v2

    return v2.Compose(_head(input_cfg))


class EvalTransform(torch.nn.Module):
    """:class:`ferkit.data.preprocess.EvalTransform` (numpy and Pillow) with a float32 tensor out, for
    the data loaders of training and evaluation: the same numbers inference feeds every backend."""

    def __init__(self, size: int, channels: int, mean: Any, std: Any):
        super().__init__()
        from ferkit.data.preprocess import EvalTransform as _Numpy

        self.core = _Numpy(size, channels, mean, std)
        self.size, self.channels = self.core.size, self.core.channels

    def forward(self, img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.core(img))

    def extra_repr(self) -> str:
        return repr(self.core)[len("EvalTransform("):-1]


def eval_transform(input_cfg: Any) -> EvalTransform:
    """Deterministic preprocessing: channels -> resize to size x size -> [0, 1] -> normalise
    (``ferkit.data.preprocess``), as a tensor."""
    return EvalTransform(_get(input_cfg, "size"), _get(input_cfg, "channels"), _get(input_cfg, "mean"),
                         _get(input_cfg, "std"))


def train_transform(input_cfg: Any, aug: Any) -> Any:
    """`eval_transform` plus the augmentations of the papers, each switched by the ``augment`` config
    (a torchvision v2 ``Compose``)."""
    from torchvision.transforms import v2

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


class BatchAugment(torch.nn.Module):
    """The ``augment`` config applied to whole batches on the training device (GPU or CPU).

    Input: uint8 ``(N, C, size, size)`` as `model_size_transform` makes them; output: the float
    batch `eval_transform` would give, augmented. One random draw per sample, from ``generator``
    (a resumed run passes a generator seeded by its step, so it replays the same augmentation).
    Steps: horizontal flip; one affine warp per sample (rotation, shift, zoom, shear; borders
    replicated, so zooming out never shows black frames a detector crop would not have); brightness,
    contrast and gamma; Gaussian blur (probability ``blur``, sigma 0.3-1 px); a low-resolution copy
    (probability ``downscale``, a half to the full side: small faces far from the camera); Gaussian
    noise up to ``noise`` (as a fraction of the range); normalisation; random erasing
    (probability ``erasing``, 2-33% of the area, as torchvision's RandomErasing).
    """

    def __init__(self, input_cfg: Any, aug: Any):
        super().__init__()
        self.size = int(_get(input_cfg, "size"))
        self.register_buffer("mean", torch.tensor(list(_get(input_cfg, "mean"))).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(_get(input_cfg, "std"))).view(1, -1, 1, 1), persistent=False)
        keys = ("hflip", "rotation", "shift", "zoom", "shear", "brightness", "contrast", "gamma", "blur", "downscale",
                "noise", "erasing")
        self.p = {k: _get(aug, k) for k in keys}

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p, g = self.p, generator
        n, dev = x.shape[0], x.device

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, device=dev, generator=g)

        def sym(scale: float) -> torch.Tensor:  # uniform in [-scale, scale], one per sample
            return (rand(n) * 2 - 1) * scale

        x = x.float() / 255.0
        # geometry: flip, rotation, zoom, shear and shift as one inverse affine map per sample
        flip = torch.where(rand(n) < 0.5, -1.0, 1.0) if p["hflip"] else torch.ones(n, device=dev)
        angle = sym(math.radians(p["rotation"]))
        zoom = 1 + sym(p["zoom"])
        shear = sym(math.radians(p["shear"]))
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = cos * flip / zoom
        theta[:, 0, 1] = (-sin + torch.tan(shear) * cos) / zoom
        theta[:, 1, 0] = sin * flip / zoom
        theta[:, 1, 1] = (cos + torch.tan(shear) * sin) / zoom
        theta[:, :, 2] = torch.stack([sym(2 * p["shift"]), sym(2 * p["shift"])], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        # photometric
        if p["brightness"]:
            x = x * (1 + sym(p["brightness"])).view(n, 1, 1, 1)
        if p["contrast"]:
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - m) * (1 + sym(p["contrast"])).view(n, 1, 1, 1) + m
        x = x.clamp(0, 1)
        if p["gamma"]:
            x = x.clamp_min(1e-4) ** torch.exp(sym(p["gamma"])).view(n, 1, 1, 1)
        if p["blur"]:
            sigma = 0.3 + rand(n) * 0.7
            k = torch.arange(-3, 4, device=dev, dtype=x.dtype)
            kern = torch.exp(-(k.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
            kern = kern / kern.sum(1, keepdim=True)                       # (n, 7) separable Gaussians
            c = x.shape[1]
            w = kern.repeat_interleave(c, 0)
            xb = x.reshape(1, n * c, *x.shape[-2:])
            xb = F.conv2d(F.pad(xb, (3, 3, 0, 0), mode="replicate"), w.view(n * c, 1, 1, 7), groups=n * c)
            xb = F.conv2d(F.pad(xb, (0, 0, 3, 3), mode="replicate"), w.view(n * c, 1, 7, 1), groups=n * c)
            x = torch.where((rand(n) < p["blur"]).view(n, 1, 1, 1), xb.view_as(x), x)
        if p["downscale"]:
            small = max(8, self.size // 2) + int(rand(1) * (self.size // 2))
            xd = F.interpolate(F.interpolate(x, size=(small, small), mode="area"), size=x.shape[-2:],
                               mode="bilinear", align_corners=False)
            x = torch.where((rand(n) < p["downscale"]).view(n, 1, 1, 1), xd, x)
        if p["noise"]:
            x = (x + torch.randn(x.shape, device=dev, generator=g)
                 * (rand(n) * p["noise"]).view(n, 1, 1, 1)).clamp(0, 1)
        x = (x - self.mean) / self.std
        if p["erasing"]:
            h, w = x.shape[-2:]
            area = (0.02 + rand(n) * 0.31) * h * w
            ratio = torch.exp(math.log(0.3) + rand(n) * (math.log(3.3) - math.log(0.3)))
            eh = (area * ratio).sqrt().clamp(1, h)
            ew = (area / ratio).sqrt().clamp(1, w)
            y0, x0 = rand(n) * (h - eh), rand(n) * (w - ew)
            yy = torch.arange(h, device=dev).view(1, h, 1)
            xx = torch.arange(w, device=dev).view(1, 1, w)
            box = ((yy >= y0.view(n, 1, 1)) & (yy < (y0 + eh).view(n, 1, 1))
                   & (xx >= x0.view(n, 1, 1)) & (xx < (x0 + ew).view(n, 1, 1)))
            box &= (rand(n) < p["erasing"]).view(n, 1, 1)
            x = x.masked_fill(box.unsqueeze(1), 0.0)
        return x
