"""Typed results of inference: plain dataclasses holding Python numbers and CPU numpy arrays.

``ImageResult.to_dict()`` is the JSON contract of ``ferkit predict --format json``::

    {"path": str, "faces": [{"box": [x, y, w, h], "emotion": str, "confidence": float,
                             "probabilities": {class: float}, ...}], ...}

Boxes are ``[x, y, w, h]`` integer pixels of the (EXIF-rotated) image, clipped to it.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FaceResult", "FrameResult", "ImageResult"]


@dataclass
class FaceResult:
    """One face: where it is and what it expresses.

    Attributes:
        box: ``(x, y, w, h)`` in pixels.
        emotion: the most probable class.
        confidence: its probability.
        probabilities: every class of the model -> probability (sums to 1), in the model's class order.
        landmarks: ``(n, 2)`` float32 ``(x, y)`` points (68 or 5) when they were computed, else None.
        track_id: the person's id across video frames (``stream``), else None.
        detection_score: the face detector's score (scale depends on the detector).
    """

    box: tuple[int, int, int, int]
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    landmarks: np.ndarray | None = None
    track_id: int | None = None
    detection_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: box, emotion, confidence, probabilities, then the optional keys that are set."""
        d: dict[str, Any] = {
            "box": [int(v) for v in self.box],
            "emotion": self.emotion,
            "confidence": float(self.confidence),
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
        }
        if self.track_id is not None:
            d["track_id"] = int(self.track_id)
        if self.detection_score is not None:
            d["detection_score"] = float(self.detection_score)
        if self.landmarks is not None:
            d["landmarks"] = np.round(np.asarray(self.landmarks, np.float64), 1).tolist()
        return d


@dataclass
class ImageResult:
    """Every face found in one image (an empty ``faces`` list when there is none).

    Attributes:
        path: the file the image came from (None for an array).
        faces: one :class:`FaceResult` per face, in the detector's reading order (left to right).
        width, height: the image size in pixels.
    """

    path: str | None
    faces: list[FaceResult] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[FaceResult]:
        return iter(self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "faces": [f.to_dict() for f in self.faces],
            "width": int(self.width),
            "height": int(self.height),
        }


@dataclass
class FrameResult(ImageResult):
    """One frame of a video, stream or camera (``Recognizer.stream``).

    Attributes:
        frame: 0-based index in the source.
        time_s: position in seconds (frame / fps for files; time since the start for live sources).
        processed: False for frames skipped by ``stride``; their faces are the last processed
            frame's (so drawing does not flicker), and they should not be counted as measurements.
        image: the RGB frame itself, for drawing or recording; None when ``stream(frames=False)``.
            Not part of ``to_dict``.
    """

    frame: int = 0
    time_s: float = 0.0
    processed: bool = True
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        return {"frame": int(self.frame), "time_s": round(float(self.time_s), 4), **d}
