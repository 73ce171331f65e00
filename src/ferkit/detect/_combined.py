"""Two detectors as one: every face of the first, plus the faces of the second that overlap none of
them. ``dlib-hog+blazeface`` (the default for photos) keeps dlib's framing, which the crop margins
and the classifier's accuracy through the detector were measured on, and adds the faces HOG misses
(turned heads, small or low-contrast faces) from BlazeFace.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ferkit.detect._base import DetectorError, FaceDetector, Faces, get_detector, iou, register_detector


class CombinedDetector:
    """``primary``'s faces, plus ``secondary``'s faces whose IoU with every primary face is below
    ``overlap``. Scores keep each detector's own scale (dlib's SVM margin, BlazeFace's
    probability), so compare them only within one detector. ``crop_margin`` is the primary's."""

    def __init__(self, primary: FaceDetector, secondary: FaceDetector, overlap: float = 0.3):
        self.primary, self.secondary, self.overlap = primary, secondary, float(overlap)
        self.name = f"{primary.name}+{secondary.name}"
        self.min_size = primary.min_size
        self.crop_margin = primary.crop_margin

    def detect(self, image: np.ndarray) -> Faces:
        first, second = self.primary.detect(image), self.secondary.detect(image)
        if not len(first) or not len(second):
            return first if len(first) else second
        extra = iou(second.boxes, first.boxes).max(1) < self.overlap
        return Faces(np.concatenate([first.boxes, second.boxes[extra]]),
                     np.concatenate([first.scores, second.scores[extra]]))


#: BlazeFace's score threshold inside ``dlib-hog+blazeface`` (benchmarks/README.md, "Face detectors"):
#: with 0.45 the pair finds a face in 270 of the 300 composite photos (0.5: 267) and still no false
#: face on the VOC photos (0.4 adds a hand)
SECONDARY_THRESHOLD = 0.45


@register_detector("dlib-hog+blazeface")
def _hog_and_blazeface(min_size: int | None = None, **options: Any) -> CombinedDetector:
    if options:
        raise DetectorError(f"dlib-hog+blazeface takes only min_size, not {', '.join(sorted(options))} (the two "
                            "detectors' scores differ in scale: use --detector dlib-hog or blazeface for a score "
                            "threshold)")
    return CombinedDetector(get_detector("dlib-hog", min_size=min_size),
                            get_detector("blazeface", min_size=min_size, threshold=SECONDARY_THRESHOLD))
