"""Facial regions for region voting, cut out with dlib's 68 landmarks.

A face crop is split into the regions of the second paper: ``left_eye`` and ``right_eye`` (each
with its eyebrow), ``nose``, ``mouth``, and ``rest`` (the whole crop with those four boxes greyed
out), next to the full ``face``. Left and right are the person's own: ``left_eye`` is dlib points
42-47 (+ brow 22-26), on the image's right side.

Landmarks on small crops (FER2013's 48x48): the crop is upscaled to at least ``UPSCALE_TO`` pixels,
dlib's HOG detector looks for the face (no further upsampling), and the 68-point shape predictor
runs in the box it found. When it finds none, the fallback is stated and simple: the whole crop is
taken as the face box (which is what a dataset crop or a detector crop is), and the predictor runs
there. :func:`crop_landmarks` reports which faces used the fallback.

>>> points, found = crop_landmarks([crop])             # (1, 68, 2) in crop pixels, (1,) bool
>>> boxes = region_boxes(points[0], crop.shape[1], crop.shape[0])   # {"left_eye": [x0, y0, x1, y1], ...}
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["REGIONS", "REGION_POINTS", "UPSCALE_TO", "crop_landmarks", "region_boxes"]

#: the views region voting classifies, in order; ``face`` is the crop itself
REGIONS = ("face", "left_eye", "right_eye", "nose", "mouth", "rest")
#: dlib 68-point indices (iBUG 300-W) that define each cut-out region
REGION_POINTS: dict[str, list[int]] = {
    "left_eye": list(range(42, 48)) + list(range(22, 27)),
    "right_eye": list(range(36, 42)) + list(range(17, 22)),
    "nose": list(range(27, 36)),
    "mouth": list(range(48, 68)),
}
#: crops smaller than this are upscaled before dlib looks for landmarks
UPSCALE_TO = 192


def region_boxes(points: np.ndarray, width: int, height: int, *, pad: float = 0.25) -> dict[str, np.ndarray]:
    """Square ``[x0, y0, x1, y1]`` float boxes (clipped to the image) around each region's landmarks.

    Each box is the bounding box of the region's points, grown by ``pad`` of its larger side on every
    side and made square about its centre, so the crop keeps the region's aspect when resized."""
    pts = np.asarray(points, dtype=np.float64).reshape(68, 2)
    out = {}
    for name, idx in REGION_POINTS.items():
        p = pts[idx]
        (x0, y0), (x1, y1) = p.min(0), p.max(0)
        side = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * pad)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        box[[0, 2]] = box[[0, 2]].clip(0, width)
        box[[1, 3]] = box[[1, 3]].clip(0, height)
        out[name] = box
    return out


def crop_landmarks(crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """68 landmarks for each face crop (uint8 ``(H, W)`` or ``(H, W, 3)``): ``(points (N, 68, 2)
    float32 in crop pixels, found (N,) bool)``; ``found`` is False where dlib's detector found no face
    and the whole crop was used as the face box (see the module doc)."""
    from ferkit.detect import detect_faces, landmarks

    points = np.zeros((len(crops), 68, 2), np.float32)
    found = np.zeros(len(crops), bool)
    for i, crop in enumerate(crops):
        img = np.asarray(crop)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        h, w = img.shape[:2]
        scale = max(1.0, UPSCALE_TO / max(1, min(h, w)))
        big = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC) if scale > 1 else img
        faces = detect_faces(big, "dlib-hog", upsample=0, min_size=big.shape[0] // 4)
        if len(faces):
            box = faces.boxes[faces.largest()]
            found[i] = True
        else:
            box = np.array([0, 0, big.shape[1], big.shape[0]])
        points[i] = landmarks(big, box[None], 68)[0] / scale
    return points, found
