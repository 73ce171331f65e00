"""Batched inference over a FaceSet, with the test-time augmentation views of :mod:`.tta`."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.data.faceset import FaceSet
from ferkit.errors import ConfigError, DataError
from ferkit.evaluate.tta import TTA_MODES, make_views, tta_transform, tta_views

__all__ = ["combine_views", "predict_logits", "resolve_device"]

Progress = Callable[[int, int], None]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {device!r} ({str(e).splitlines()[0]})") from None


def predict_logits(
    model: nn.Module, input_cfg: Mapping[str, Any], faces: FaceSet, *, tta: str = "none", batch_size: int = 128,
    device: str | torch.device = "cpu", progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every view of every decodable image: ``(logits (K, V, num_classes) float32, kept)``.

    ``kept`` (K,) holds the row indices into ``faces`` of the images that were decoded, in order;
    an image that cannot be decoded (a corrupt file) is left out rather than stopping the run.
    ``progress(done, total)`` is called after every batch.
    """
    if tta not in TTA_MODES:
        raise ConfigError(f"unknown test-time augmentation {tta!r} (known: {', '.join(TTA_MODES)})")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, not {batch_size}")
    transform, size = tta_transform(input_cfg, tta)
    dev = torch.device(device)
    model = model.to(dev).eval()
    n_views = tta_views(tta)
    out: list[np.ndarray] = []
    kept: list[int] = []
    total = len(faces)
    with torch.inference_mode():
        for start in range(0, total, batch_size):
            batch = []
            for i in range(start, min(start + batch_size, total)):
                try:
                    batch.append(transform(faces.load_image(i)))
                except DataError:
                    continue
                kept.append(i)
            if batch:
                x = make_views(torch.stack(batch).to(dev), tta, size)
                logits = model(x).float().reshape(len(batch), n_views, -1)
                out.append(logits.cpu().numpy())
            if progress is not None:
                progress(min(start + batch_size, total), total)
    if not out:
        raise DataError(f"{faces.root or faces.name}: none of the {total} images could be decoded")
    return np.concatenate(out), np.asarray(kept, dtype=np.int64)


def combine_views(logits: np.ndarray, columns: Sequence[int] | None = None, temperature: float = 1.0,
                  shift: np.ndarray | None = None) -> np.ndarray:
    """``(N, V, C)`` logits -> ``(N, C')`` probabilities: softmax of ``logits[..., columns] / temperature``
    (+ ``shift[columns]``, a change of class prior from ``ferkit.infer.prior_shift``) per view (a
    restricted argmax renormalises over the kept classes), averaged over the views."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if shift is not None:
        z = z + np.asarray(shift, dtype=np.float64)
    if columns is not None:
        z = z[..., list(columns)]
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    p = p.mean(axis=1)
    return p / p.sum(axis=1, keepdims=True)
