"""Landmarks, eye-level alignment and the face crop used by inference."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ferkit.detect._base import DetectorError, Faces, as_image, expand_boxes

__all__ = ["align", "crop_face", "eye_angle", "eye_centers", "landmarks"]

#: indices of the two eyes' points in dlib's 68-point (iBUG 300-W) and 5-point layouts
_EYES = {68: (slice(36, 42), slice(42, 48)), 5: (slice(0, 2), slice(2, 4))}


def _boxes(boxes: Faces | np.ndarray | list) -> np.ndarray:
    return boxes.boxes if isinstance(boxes, Faces) else np.asarray(boxes, np.int64).reshape(-1, 4)


def landmarks(image: np.ndarray, boxes: Faces | np.ndarray | list, n: int = 68) -> np.ndarray:
    """dlib's facial landmarks for each face box: ``(len(boxes), n, 2)`` float32 pixel ``(x, y)``.

    ``n=68``: the iBUG 300-W layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
    ``n=5``: two corners per eye and the base of the nose; 10x smaller model, enough for alignment.
    The predictors were trained on dlib's own boxes; they also work on Haar boxes, a bit less tightly.
    """
    from ferkit.detect._dlib import raw_shapes

    image = as_image(image)
    b = _boxes(boxes)
    if len(b) == 0:
        if n not in (5, 68):
            raise DetectorError(f"landmarks: n must be 5 or 68, got {n}")
        return np.zeros((0, n, 2), np.float32)
    return raw_shapes(image, b, n)


def eye_centers(points: np.ndarray) -> np.ndarray:
    """Centres of the two eyes from one face's 68 or 5 landmarks: ``(2, 2)``, the image-left eye first."""
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] not in _EYES:
        raise DetectorError(f"landmarks: expected one face's (68, 2) or (5, 2) points, got shape {p.shape}")
    a, b = (p[s].mean(axis=0) for s in _EYES[p.shape[0]])
    return np.stack([a, b] if a[0] <= b[0] else [b, a])


def eye_angle(points: np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye to the image-right eye (0 = level;
    positive = the right eye is lower, i.e. the head is tilted clockwise on screen)."""
    (lx, ly), (rx, ry) = eye_centers(points)
    return math.degrees(math.atan2(ry - ly, rx - lx))


def align(image: np.ndarray, points: np.ndarray, *,
          center: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the whole image so that this face's eyes are level.

    Args:
        image: RGB uint8 ``(H, W, 3)`` (or grayscale).
        points: one face's 68 or 5 landmarks (see :func:`landmarks`).
        center: rotation centre; default the midpoint between the eyes.
    Returns:
        ``(aligned image of the same size, 2x3 affine matrix)``; map points with
        ``pts @ M[:, :2].T + M[:, 2]``. Corners that come from outside the image repeat its border.
    """
    import cv2

    image = as_image(image)
    eyes = eye_centers(points)
    c = tuple(map(float, eyes.mean(axis=0))) if center is None else (float(center[0]), float(center[1]))
    m = cv2.getRotationMatrix2D(c, eye_angle(points), 1.0)
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), m


def crop_face(
    image: np.ndarray,
    box: Any,
    *,
    margin: float = 0.0,
    points: np.ndarray | None = None,
    square: bool = True,
) -> np.ndarray:
    """The face crop that inference classifies: a new contiguous array.

    Args:
        image: RGB uint8 ``(H, W, 3)`` or grayscale ``(H, W)``.
        box: ``[x, y, w, h]``.
        margin: extra context on every side, as a fraction of the box size (0.1 = 10 % each side).
        points: this face's 68 or 5 landmarks; when given, the crop is rotated about the box centre
            so that the eyes are level (alignment), otherwise it is cut straight.
        square: make the crop square (side = the box's longer side), so that resizing to the model's
            square input does not stretch the face.
    Parts of the crop outside the image repeat the image border (a face cut by the frame edge keeps
    its position in the crop instead of being stretched).
    """
    import cv2

    image = as_image(image)
    (x, y, w, h), = expand_boxes(np.asarray(box, np.float64).reshape(1, 4), margin).tolist()
    cx, cy = x + w / 2, y + h / 2
    if square:
        w = h = max(w, h)
    cw, ch = max(1, round(w)), max(1, round(h))
    x0, y0 = round(cx - cw / 2), round(cy - ch / 2)
    if points is not None:
        m = cv2.getRotationMatrix2D((cx, cy), eye_angle(points), 1.0)
        m[0, 2] -= x0
        m[1, 2] -= y0
        return cv2.warpAffine(image, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ih, iw = image.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + cw, iw), min(y0 + ch, ih)
    if sx0 >= sx1 or sy0 >= sy1:
        raise DetectorError(f"crop_face: box {list(map(int, np.round(box)))} lies outside the {iw}x{ih} image")
    crop = image[sy0:sy1, sx0:sx1]
    pads = (sy0 - y0, y0 + ch - sy1, sx0 - x0, x0 + cw - sx1)
    if any(pads):
        return cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(crop).copy()
