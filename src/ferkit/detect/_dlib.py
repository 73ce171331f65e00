"""dlib backends: the HOG + linear SVM frontal face detector, the MMOD CNN detector and the
5/68-point shape predictors.

dlib comes from the ``dlib-bin`` wheel and the model files from ``face-recognition-models``. Both
are imported on first use, never at import time. ``face_recognition_models/__init__.py`` imports
``pkg_resources`` (missing on new setuptools), so the files are located through the package's
import spec without importing it.
"""
from __future__ import annotations

import importlib.util
import math
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.detect._base import DetectorError, Faces, as_image, clip_boxes, register_detector

MODEL_FILES = {
    "cnn": "mmod_human_face_detector.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
}
#: side of the smallest box each dlib detector reports without upsampling (measured on obama.jpg
#: scaled down step by step: HOG's 80x80 window reports 73-pixel boxes, MMOD's 80-pixel ones)
SMALLEST_BOX = {"dlib-hog": 73, "dlib-cnn": 80}


def dlib_module() -> Any:
    """``import dlib`` or DetectorError saying how to install it."""
    try:
        import dlib
    except ImportError as e:
        raise DetectorError(f"dlib is not installed ({e}); pip install dlib-bin face-recognition-models") from e
    return dlib


def model_file(key: str) -> Path:
    """Path of one of ``face_recognition_models``' files (``cnn``, ``landmarks68``, ``landmarks5``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("face_recognition_models is not installed; pip install face-recognition-models")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / MODEL_FILES[key]
        if path.is_file():
            return path
    raise DetectorError(f"{MODEL_FILES[key]}: not found in face_recognition_models; reinstall face-recognition-models")


_lock = threading.Lock()


@cache
def _shared(key: str) -> Any:
    """dlib models loaded once per process and shared by every detector instance."""
    dlib = dlib_module()
    with _lock:
        if key == "hog":
            return dlib.get_frontal_face_detector()
        path = str(model_file(key))
        try:
            if key == "cnn":
                return dlib.cnn_face_detection_model_v1(path)
            return dlib.shape_predictor(path)
        except RuntimeError as e:
            raise DetectorError(f"{path}: dlib cannot read this model file ({str(e).strip().splitlines()[0]})") from e


def auto_upsample(min_size: int, smallest_box: int) -> int:
    """Times to double the image so that faces of ``min_size`` pixels reach the detector's smallest box."""
    return max(0, math.ceil(math.log2(smallest_box / max(min_size, 1)) - 1e-9))


def _rects_to_boxes(rects: list[tuple[int, int, int, int]], width: int, height: int) -> np.ndarray:
    """dlib (left, top, right, bottom) with inclusive right/bottom -> clipped [x, y, w, h]."""
    if not rects:
        return np.zeros((0, 4), np.int64)
    r = np.asarray(rects, np.float64)
    return clip_boxes(np.stack([r[:, 0], r[:, 1], r[:, 2] - r[:, 0] + 1, r[:, 3] - r[:, 1] + 1], axis=1), width, height)


class _DlibDetector:
    name = "dlib"
    #: context added around a box when cropping a face for a FER model, per detector (see the subclasses)
    crop_margin: float

    def __init__(self, min_size: int | None = None, upsample: int | None = None):
        if min_size is not None and min_size < 1:
            raise DetectorError(f"{self.name}: min_size must be >= 1, got {min_size}")
        if upsample is not None and upsample < 0:
            raise DetectorError(f"{self.name}: upsample must be >= 0, got {upsample}")
        smallest = SMALLEST_BOX[self.name]
        if upsample is None:
            upsample = 1 if min_size is None else auto_upsample(min_size, smallest)
        self.upsample = int(upsample)
        #: smallest face side kept: the given min_size, else what the detector can find at this upsampling
        self.min_size = int(min_size) if min_size is not None else smallest // 2**self.upsample

    def _raw(self, image: np.ndarray) -> tuple[list[tuple[int, int, int, int]], list[float]]:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> Faces:
        image = as_image(image)
        rects, scores = self._raw(image)
        h, w = image.shape[:2]
        faces = Faces(_rects_to_boxes(rects, w, h), scores)
        keep = np.minimum(faces.boxes[:, 2], faces.boxes[:, 3]) >= self.min_size
        return faces[keep]


@register_detector("dlib-hog")
class DlibHogDetector(_DlibDetector):
    """dlib's HOG + linear SVM frontal face detector (``get_frontal_face_detector``).

    Args:
        min_size: smallest face side in pixels kept; also picks ``upsample`` when that is None: the
            detector's smallest box is 73 px, so 73 px -> 0, 36 px -> 1, 18 px -> 2 doublings (each
            costs ~4x time). Default: upsample once, keep everything found (faces down to ~36 px).
        upsample: times the image is doubled before detection (overrides the choice from min_size).
        threshold: SVM score threshold (dlib's ``adjust_threshold``); lower finds more, with more false hits.
    Score: the SVM margin (about 0 to 3).
    """

    name = "dlib-hog"
    #: dlib's boxes are tighter than FER2013's framing (brows to lips): with 5 % more on each side the
    #: crops are classified most often as the FER2013 crops of the same faces (benchmarks/crop_geometry.py,
    #: MODEL_CARD.md "Crop geometry": 79.6 % agreement, accuracy within 1.1 points of the original crops)
    crop_margin = 0.05

    def __init__(self, min_size: int | None = None, upsample: int | None = None, threshold: float = 0.0):
        super().__init__(min_size, upsample)
        self.threshold = float(threshold)

    def _raw(self, image: np.ndarray) -> tuple[list[tuple[int, int, int, int]], list[float]]:
        rects, scores, _kinds = _shared("hog").run(image, self.upsample, self.threshold)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects], list(scores)


@register_detector("dlib-cnn")
class DlibCnnDetector(_DlibDetector):
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``): finds turned and partly
    hidden faces the HOG detector misses, but takes seconds per photo on a CPU (dlib-bin has no CUDA).

    Args: as for ``dlib-hog`` (its smallest box is 80 px without upsampling, 40 px with the default one).
    Score: the MMOD confidence (about 0 to 1.5).
    """

    name = "dlib-cnn"
    #: MMOD's boxes are as tight as HOG's; 10 % more on each side gave the highest agreement with the
    #: FER2013 crops of the same faces (benchmarks/crop_geometry.py on 185 faces, MODEL_CARD.md "Crop
    #: geometry": 79.5 %; from 0 to 10 % it is within two faces)
    crop_margin = 0.1

    def __init__(self, min_size: int | None = None, upsample: int | None = None, threshold: float = 0.0):
        super().__init__(min_size, upsample)
        self.threshold = float(threshold)

    def _raw(self, image: np.ndarray) -> tuple[list[tuple[int, int, int, int]], list[float]]:
        dets = _shared("cnn")(image, self.upsample)
        out = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence) for d in dets]
        out = [d for d in out if d[4] >= self.threshold]
        return [d[:4] for d in out], [d[4] for d in out]


def raw_shapes(image: np.ndarray, boxes: np.ndarray, n: int) -> np.ndarray:
    """dlib shape predictor on each ``[x, y, w, h]`` box: ``(len(boxes), n, 2)`` float32 (x, y)."""
    if n not in (5, 68):
        raise DetectorError(f"landmarks: n must be 5 or 68, got {n}")
    predictor = _shared(f"landmarks{n}")
    dlib = dlib_module()
    out = np.zeros((len(boxes), n, 2), np.float32)
    for i, (x, y, w, h) in enumerate(np.asarray(boxes, np.int64).reshape(-1, 4).tolist()):
        shape = predictor(image, dlib.rectangle(x, y, x + w - 1, y + h - 1))
        out[i] = [(p.x, p.y) for p in shape.parts()]
    return out
