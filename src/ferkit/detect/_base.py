"""Detector protocol, name registry, the `Faces` result and box helpers.

Box convention everywhere in ferkit: ``[x, y, w, h]`` in integer pixels of the image given, the
top-left corner inclusive, clipped to the image. Images are contiguous RGB ``uint8`` arrays
``(H, W, 3)`` (a grayscale ``(H, W)`` array is accepted by the detectors too).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ferkit.errors import FerkitError

__all__ = [
    "DetectorError",
    "FaceDetector",
    "Faces",
    "as_image",
    "clip_boxes",
    "expand_boxes",
    "get_detector",
    "iou",
    "list_detectors",
    "register_detector",
]


class DetectorError(FerkitError, ValueError):
    """An unknown detector name, a missing backend (dlib, model files) or an invalid image."""


# --------------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class Faces:
    """Faces found in one image: aligned arrays, one row per face.

    Attributes:
        boxes: ``(n, 4)`` int64 ``[x, y, w, h]``, clipped to the image, ``w, h >= 1``.
        scores: ``(n,)`` float32 detector scores; higher is more face-like. The scale depends on the
            detector (Haar: cascade level weight, dlib-hog: SVM margin, dlib-cnn: MMOD confidence),
            so compare scores only within one detector.
    Faces are in reading order: left to right (then top to bottom), whatever the detector.
    """

    boxes: np.ndarray
    scores: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.int64).reshape(-1, 4)
        scores = (np.zeros(len(boxes), np.float32) if self.scores is None
                  else np.asarray(self.scores, np.float32).reshape(-1))
        if len(scores) != len(boxes):
            raise ValueError(f"Faces: {len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)

    @classmethod
    def empty(cls) -> Faces:
        return cls(np.zeros((0, 4), np.int64), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def __iter__(self) -> Iterator[tuple[tuple[int, int, int, int], float]]:
        """``((x, y, w, h), score)`` per face, as plain Python numbers."""
        for b, s in zip(self.boxes.tolist(), self.scores.tolist()):
            yield (b[0], b[1], b[2], b[3]), s

    def __getitem__(self, index: Any) -> Faces:
        return Faces(self.boxes[index], self.scores[index])

    @property
    def xyxy(self) -> np.ndarray:
        """``(n, 4)`` ``[x1, y1, x2, y2]`` (x2, y2 exclusive)."""
        b = self.boxes
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    def largest(self) -> int:
        """Index of the face with the largest box area (the first in reading order on a tie)."""
        if len(self) == 0:
            raise ValueError("Faces.largest: no faces")
        return int(np.argmax(self.boxes[:, 2] * self.boxes[:, 3]))

    def sorted(self) -> Faces:
        """Reading order: by x, then y (stable)."""
        order = np.lexsort((self.boxes[:, 1], self.boxes[:, 0]))
        return self[order]


# --------------------------------------------------------------------------------------- protocol
@runtime_checkable
class FaceDetector(Protocol):
    """A face detector backend. ``detect`` returns raw boxes clipped to the image, already filtered
    by the backend's minimum face size; `detect_faces` adds ordering, ``max_faces`` and margins."""

    name: str
    min_size: int
    #: margin (fraction of the box on each side) that makes this detector's crops frame a face like
    #: the FER2013 training crops (forehead to chin), measured by ``benchmarks/crop_geometry.py``;
    #: the default of ``Recognizer(margin=None)``
    crop_margin: float

    def detect(self, image: np.ndarray) -> Faces: ...


Factory = Callable[..., FaceDetector]
_registry: dict[str, Factory] = {}


def register_detector(name: str) -> Callable[[Factory], Factory]:
    """Register a detector factory (a class or a function taking keyword options) under ``name``.

    A name can be registered once (ValueError otherwise)."""

    def deco(factory: Factory) -> Factory:
        if name in _registry:
            raise ValueError(f"detector {name!r} is already registered by {_registry[name].__module__}")
        _registry[name] = factory
        return factory

    return deco


def list_detectors() -> list[str]:
    """Registered detector names, sorted."""
    return sorted(_registry)


def get_detector(name: str, **options: Any) -> FaceDetector:
    """Build the detector registered as ``name`` with ``options`` (``None`` values are dropped, so
    unset CLI flags keep the detector's defaults). Raises DetectorError for an unknown name."""
    if name not in _registry:
        raise DetectorError(f"unknown face detector {name!r} (choose from: {', '.join(list_detectors())})")
    return _registry[name](**{k: v for k, v in options.items() if v is not None})


# --------------------------------------------------------------------------------------- helpers
def as_image(image: Any, *, what: str = "image") -> np.ndarray:
    """Check and return ``image`` as a contiguous uint8 ``(H, W, 3)`` or ``(H, W)`` array.

    A 4-channel array loses its alpha channel. Nothing is converted from BGR: callers hand RGB."""
    if not isinstance(image, np.ndarray):
        raise DetectorError(f"{what}: expected a numpy array, got {type(image).__name__} (use ferkit.infer.load_image)")
    if image.dtype != np.uint8:
        raise DetectorError(f"{what}: expected uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or min(image.shape[:2]) < 1:
        raise DetectorError(f"{what}: expected an (H, W, 3) RGB or (H, W) grayscale array, got shape {image.shape}")
    return np.ascontiguousarray(image)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``[x, y, w, h]`` boxes (any numeric dtype) to a ``width x height`` image; int64, w, h >= 1.

    Rounds the corners, so a box stays where it was; degenerate boxes keep one pixel."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1 = np.clip(np.round(b[:, 0]), 0, width - 1)
    y1 = np.clip(np.round(b[:, 1]), 0, height - 1)
    x2 = np.clip(np.round(b[:, 0] + b[:, 2]), x1 + 1, width)
    y2 = np.clip(np.round(b[:, 1] + b[:, 3]), y1 + 1, height)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(np.int64)


def expand_boxes(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Grow each ``[x, y, w, h]`` box by ``margin`` times its size on every side (float64, unclipped).

    ``margin=0.2`` turns a 100-pixel box into a 140-pixel one around the same centre; a negative
    margin shrinks it."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if margin == 0:
        return b.copy()
    if margin <= -0.5 or not math.isfinite(margin):
        raise DetectorError(f"margin must be a finite number > -0.5, got {margin}")
    dw, dh = b[:, 2] * margin, b[:, 3] * margin
    return np.stack([b[:, 0] - dw, b[:, 1] - dh, b[:, 2] + 2 * dw, b[:, 3] + 2 * dh], axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of ``[x, y, w, h]`` boxes: ``(len(a), len(b))`` float64."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
