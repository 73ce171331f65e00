"""Face detection, landmarks, alignment and face crops.

>>> from ferkit.detect import detect_faces, landmarks, crop_face
>>> faces = detect_faces(image)                       # RGB uint8 (H, W, 3); default detector
>>> for (x, y, w, h), score in faces: ...
>>> pts = landmarks(image, faces, n=68)               # (n_faces, 68, 2)
>>> crop = crop_face(image, faces.boxes[0], margin=0.1, points=pts[0])   # eyes levelled

Detectors, by name (:func:`list_detectors`):

- ``dlib-hog+blazeface`` (default for photos): the faces dlib-hog finds, plus those BlazeFace finds
  that overlap none of them (turned or low-contrast faces HOG misses); dlib's framing where both
  find a face; where neither finds one, BlazeFace's short-range model (score >= 0.7), for a face that
  fills the frame, cut at chin and forehead. ~95 ms per VOC photo.
- ``dlib-hog``: dlib's HOG + SVM detector. On the 9 annotated PASCAL VOC photos in
  ``../shared/data/samples/voc_faces`` (43 faces) it found all 43 (IoU >= 0.5) with no false hit, in
  ~46 ms per photo, and no face on dogs.jpg (``benchmarks/bench_detect.py``, busy 2-core CPU).
  Frontal and slightly turned faces down to ~36 px (one upsampling by default).
- ``haar``: OpenCV's Haar cascade, the FER papers' choice; needs nothing beyond OpenCV. Same photos:
  36/43 at IoU 0.5 (38 at 0.3: its boxes are looser), ~89 ms per photo, two "faces" on dogs.jpg.
- ``dlib-cnn``: dlib's MMOD CNN; copes with turned faces; 40/43 at ~3.5 s per photo on a CPU.
- ``blazeface`` (default of ``ferkit video`` and ``webcam``): MediaPipe's BlazeFace full-range model
  through LiteRT: 42/43 with no false hit at ~24 ms per photo (whole photo + tiles for small faces);
  6 ms per 640x360 frame, finding 2.4x the faces dlib-hog finds in the sample clip (audience faces,
  turned heads). ``blazeface-short``: the 128 px short-range model, for faces close to the camera.

All return boxes as ``[x, y, w, h]`` integer pixels clipped to the image, in reading order (left to
right), each with a detector score. dlib is imported on first use; a missing backend raises
:class:`DetectorError`; nothing prints or exits.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# (registers blazeface, blazeface-short; LiteRT loads lazily)
from ferkit.detect import _blazeface as _blazeface_backend  # noqa: F401
from ferkit.detect import _combined as _combined_backend  # noqa: F401  (registers dlib-hog+blazeface)
from ferkit.detect import _dlib as _dlib_backends  # noqa: F401  (registers dlib-hog, dlib-cnn; dlib loads lazily)
from ferkit.detect import _haar as _haar_backend  # noqa: F401  (registers haar)
from ferkit.detect._align import align, crop_face, eye_angle, eye_centers, landmarks
from ferkit.detect._base import (
    DetectorError,
    FaceDetector,
    Faces,
    as_image,
    clip_boxes,
    expand_boxes,
    get_detector,
    iou,
    list_detectors,
    register_detector,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "VIDEO_DETECTOR",
    "VIDEO_DETECT_EVERY",
    "DetectorError",
    "FaceDetector",
    "Faces",
    "align",
    "clip_boxes",
    "crop_face",
    "detect_faces",
    "expand_boxes",
    "eye_angle",
    "eye_centers",
    "get_detector",
    "iou",
    "landmarks",
    "list_detectors",
    "register_detector",
]

#: for photos (predict, serve, batch, evaluate --detect), chosen by measurement (benchmarks/README.md):
#: dlib-hog's faces plus BlazeFace's (score >= 0.45) that overlap none: all 43 VOC faces with no false
#: hit, a face in 270 of the 300 FER2013 faces placed into photos (dlib-hog alone 234) and the best
#: accuracy through the detector there (64.3%; dlib-hog 58.0%, blazeface 51-55%: its crops of pasted
#: faces differ)
DEFAULT_DETECTOR = "dlib-hog+blazeface"
#: for video and webcam: 16x faster than dlib-hog per 640x360 frame, and it finds more faces
VIDEO_DETECTOR = "blazeface"
#: frames per detection in ``ferkit video`` and ``webcam`` (``--detect-every``; the faces are followed
#: by optical flow in between, ``ferkit.infer.DetectAndFollow``): on the sample clip recall stays
#: within 1 point of detecting every frame up to 10; 4 keeps the boxes as close to the detector's
#: and a new face at most 3 frames late (benchmarks/README.md, "Detect, then follow")
VIDEO_DETECT_EVERY = 4


@lru_cache(maxsize=16)
def _cached(name: str, options: tuple[tuple[str, Any], ...]) -> FaceDetector:
    return get_detector(name, **dict(options))


def detect_faces(
    image: np.ndarray,
    detector: str | FaceDetector = DEFAULT_DETECTOR,
    *,
    min_size: int | None = None,
    margin: float = 0.0,
    max_faces: int | None = None,
    **options: Any,
) -> Faces:
    """Find the faces in an RGB uint8 image.

    Args:
        image: ``(H, W, 3)`` RGB uint8 (or ``(H, W)`` grayscale), e.g. from ``ferkit.infer.load_image``.
        detector: a registered name (``"dlib-hog"``, ``"haar"``, ``"dlib-cnn"``) or a detector object.
        min_size: smallest face side in pixels (default: the detector's: 30 for Haar; for dlib, one
            upsampling, which finds faces down to ~36 px).
            Smaller finds more distant faces and is slower (dlib doubles the image for faces < 80 px).
        margin: grow every box by this fraction of its size on each side before clipping.
        max_faces: keep only the highest-scoring faces.
        options: detector options (``upsample``, ``threshold``, ``scale_factor``, ``min_neighbors``).
    Returns:
        :class:`Faces`, boxes ``[x, y, w, h]`` clipped to the image, in reading order.
    """
    image = as_image(image)
    if isinstance(detector, str):
        opts = {k: v for k, v in {"min_size": min_size, **options}.items() if v is not None}
        det = _cached(detector, tuple(sorted(opts.items())))
    else:
        if min_size is not None or options:
            raise DetectorError("detect_faces: pass min_size and options to the detector object's constructor")
        det = detector
    faces = det.detect(image)
    if max_faces is not None and len(faces) > max_faces:
        faces = faces[np.argsort(-faces.scores, kind="stable")[:max_faces]]
    if margin and len(faces):
        h, w = image.shape[:2]
        faces = Faces(clip_boxes(expand_boxes(faces.boxes, margin), w, h), faces.scores)
    return faces.sorted()
