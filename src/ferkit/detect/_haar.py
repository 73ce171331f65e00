"""OpenCV's Haar cascade (Viola-Jones), the FER papers' detector: no extra dependency, fast, frontal
faces only; misses turned and small faces more often than dlib's HOG detector."""
from __future__ import annotations

import os

import numpy as np

from ferkit.detect._base import DetectorError, Faces, as_image, clip_boxes, register_detector

CASCADE = "haarcascade_frontalface_default.xml"


@register_detector("haar")
class HaarDetector:
    """``cv2.CascadeClassifier.detectMultiScale3`` on the grayscale image.

    Args:
        min_size: smallest face side in pixels that is searched for (smaller = slower, more false hits).
        scale_factor: pyramid step (1.1 = 10 %); larger is faster and misses more.
        min_neighbors: overlapping raw hits needed to keep a face; larger = fewer false positives.
        cascade: a cascade XML file (default: OpenCV's ``haarcascade_frontalface_default.xml``).
        threshold: drop faces whose level weight is below this (default: keep all).
    Score: the cascade's level weight (about 0 to 10; higher is surer). ``crop_margin`` 0.05.
    """

    name = "haar"
    #: context to add around a box when cropping a face for a FER model (fraction of the box per side):
    #: with 5 %, Haar's crops are classified most often as the FER2013 crops of the same faces
    #: (benchmarks/crop_geometry.py, MODEL_CARD.md "Crop geometry": 80.9 % agreement, IoU 0.81 with FER2013's framing)
    crop_margin = 0.05

    def __init__(self, min_size: int = 30, scale_factor: float = 1.1, min_neighbors: int = 5,
                 cascade: str | None = None, threshold: float | None = None):
        import cv2

        if min_size < 1:
            raise DetectorError(f"haar: min_size must be >= 1, got {min_size}")
        path = cascade or os.path.join(cv2.data.haarcascades, CASCADE)
        if not os.path.isfile(path):
            raise DetectorError(f"{path}: Haar cascade file not found")
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise DetectorError(f"{path}: not a readable Haar cascade")
        self.min_size = int(min_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> Faces:
        import cv2

        image = as_image(image)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return Faces.empty()
        h, w = gray.shape
        faces = Faces(clip_boxes(np.asarray(rects), w, h), np.asarray(weights, np.float32).reshape(-1))
        return faces if self.threshold is None else faces[faces.scores >= self.threshold]
