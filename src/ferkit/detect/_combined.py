"""Two detectors as one: every face of the first, plus the faces of the second that overlap none of
them, and a third asked only when both find nothing. ``dlib-hog+blazeface`` (the default for photos)
keeps dlib's framing, which the crop margins and the classifier's accuracy through the detector were
measured on, adds the faces HOG misses (turned heads, small or low-contrast faces) from BlazeFace, and
when neither finds a face asks BlazeFace's short-range model, made for faces close to the camera: a
face that fills the frame, cut at the chin and forehead, which both full-view detectors miss.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ferkit.detect._base import DetectorError, FaceDetector, Faces, get_detector, iou, register_detector


class CombinedDetector:
    """``primary``'s faces, plus ``secondary``'s faces whose IoU with every primary face is below
    ``overlap``; where neither finds one, ``fallback``'s faces (if given). Scores keep each detector's
    own scale (dlib's SVM margin, BlazeFace's probability), so compare them only within one detector.
    ``crop_margin`` is the primary's."""

    def __init__(self, primary: FaceDetector, secondary: FaceDetector, overlap: float = 0.3,
                 fallback: FaceDetector | None = None):
        self.primary, self.secondary, self.overlap = primary, secondary, float(overlap)
        self.fallback = fallback
        self.name = f"{primary.name}+{secondary.name}"
        self.min_size = primary.min_size
        self.crop_margin = primary.crop_margin

    def detect(self, image: np.ndarray) -> Faces:
        first, second = self.primary.detect(image), self.secondary.detect(image)
        if not len(first) and not len(second) and self.fallback is not None:
            return self.fallback.detect(image)
        if not len(first) or not len(second):
            return first if len(first) else second
        extra = iou(second.boxes, first.boxes).max(1) < self.overlap
        return Faces(np.concatenate([first.boxes, second.boxes[extra]]),
                     np.concatenate([first.scores, second.scores[extra]]))


#: BlazeFace's score threshold inside ``dlib-hog+blazeface`` (benchmarks/README.md, "Face detectors"):
#: with 0.45 the pair finds a face in 270 of the 300 composite photos (0.5: 267) and still no false
#: face on the VOC photos (0.4 adds a hand)
SECONDARY_THRESHOLD = 0.45
#: the short-range model's threshold when both find nothing: on the benchmark's 300 photos of FER+ Valid
#: faces (tight crops enlarged to 96-320 px) the pair finds no face in 26; at 0.7 it finds 18 of those faces
#: and no other box, and none on dogs.jpg (at 0.5: 21 faces, 4 boxes elsewhere, 4 on dogs.jpg)
FALLBACK_THRESHOLD = 0.7


@register_detector("dlib-hog+blazeface")
def _hog_and_blazeface(min_size: int | None = None, **options: Any) -> CombinedDetector:
    if options:
        raise DetectorError(f"dlib-hog+blazeface takes only min_size, not {', '.join(sorted(options))} (the two "
                            "detectors' scores differ in scale: use --detector dlib-hog or blazeface for a score "
                            "threshold)")
    return CombinedDetector(get_detector("dlib-hog", min_size=min_size),
                            get_detector("blazeface", min_size=min_size, threshold=SECONDARY_THRESHOLD),
                            fallback=get_detector("blazeface-short", min_size=min_size, threshold=FALLBACK_THRESHOLD))
