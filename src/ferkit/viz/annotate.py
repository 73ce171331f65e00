"""Drawing results on images: one annotator per concern (box, label, probability bars, landmarks,
FPS), chained by :func:`annotate`. Annotators take plain results (``ferkit.types``), never run a
model, and return a new RGB uint8 array (the input is not modified).

>>> from ferkit.viz import annotate
>>> out = annotate(rgb, result)                 # boxes, labels and bar charts
>>> out = BoxAnnotator(thickness=3).annotate(rgb.copy(), result)
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from ferkit.types import FaceResult, ImageResult

__all__ = [
    "EMOTION_COLORS",
    "BoxAnnotator",
    "LabelAnnotator",
    "LandmarkAnnotator",
    "ProbabilityBarAnnotator",
    "annotate",
    "draw_fps",
    "emotion_color",
]

#: RGB colour per canonical emotion; other class names get a colour derived from the name
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 45, 45),
    "disgust": (120, 170, 30),
    "fear": (150, 70, 200),
    "happy": (255, 190, 0),
    "sad": (40, 110, 230),
    "surprise": (0, 200, 200),
    "neutral": (170, 170, 170),
    "contempt": (170, 100, 50),
}


def emotion_color(name: str) -> tuple[int, int, int]:
    """RGB colour for a class name (stable across runs)."""
    if name in EMOTION_COLORS:
        return EMOTION_COLORS[name]
    h = zlib.crc32(name.encode())
    return (80 + h % 160, 80 + (h >> 8) % 160, 80 + (h >> 16) % 160)


def _faces(result: ImageResult | Iterable[FaceResult]) -> list[FaceResult]:
    return list(result.faces if isinstance(result, ImageResult) else result)


def _scale(scene: np.ndarray) -> float:
    """Text/line scale for an image: 1.0 at 720 px on the short side, at least 0.4."""
    return max(0.4, min(scene.shape[:2]) / 720)


def _text_box(scene: np.ndarray, text: str, org: tuple[int, int], scale: float, fg: tuple, bg: tuple) -> None:
    """Text with a filled background, its bottom-left at ``org``, kept inside the image."""
    import cv2

    font, th = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 1.6))
    (tw, tht), base = cv2.getTextSize(text, font, scale, th)
    h, w = scene.shape[:2]
    x = int(min(max(org[0], 0), max(w - tw - 4, 0)))
    y = int(min(max(org[1], tht + base + 2), h - 1))
    cv2.rectangle(scene, (x, y - tht - base - 2), (x + tw + 4, y), bg, -1)
    cv2.putText(scene, text, (x + 2, y - base), font, scale, fg, th, cv2.LINE_AA)


def _ink(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``color``."""
    return (0, 0, 0) if 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] > 140 else (255, 255, 255)


class BoxAnnotator:
    """A rectangle around each face in its emotion's colour."""

    def __init__(self, thickness: int | None = None):
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, result: ImageResult | Iterable[FaceResult]) -> np.ndarray:
        import cv2

        t = self.thickness or max(1, round(2 * _scale(scene)))
        for f in _faces(result):
            x, y, w, h = f.box
            cv2.rectangle(scene, (x, y), (x + w - 1, y + h - 1), emotion_color(f.emotion), t, cv2.LINE_AA)
        return scene


class LabelAnnotator:
    """``emotion 87%`` (and ``#track``) above each box (inside it when there is no room above)."""

    def __init__(self, show_confidence: bool = True, show_track: bool = True, font_scale: float | None = None):
        self.show_confidence = show_confidence
        self.show_track = show_track
        self.font_scale = font_scale

    def text(self, face: FaceResult) -> str:
        parts = []
        if self.show_track and face.track_id is not None:
            parts.append(f"#{face.track_id}")
        parts.append(face.emotion)
        if self.show_confidence:
            parts.append(f"{100 * face.confidence:.0f}%")
        return " ".join(parts)

    def annotate(self, scene: np.ndarray, result: ImageResult | Iterable[FaceResult]) -> np.ndarray:
        s = self.font_scale or 0.6 * _scale(scene)
        for f in _faces(result):
            x, y, _w, _h = f.box
            color = emotion_color(f.emotion)
            _text_box(scene, self.text(f), (x, y - 2), s, _ink(color), color)
        return scene


class ProbabilityBarAnnotator:
    """A small horizontal bar chart of all class probabilities beside each face (right of the box,
    or left when the box touches the right edge), on a translucent panel."""

    def __init__(self, font_scale: float | None = None, bar_width: int | None = None, opacity: float = 0.6):
        self.font_scale = font_scale
        self.bar_width = bar_width
        self.opacity = opacity

    def annotate(self, scene: np.ndarray, result: ImageResult | Iterable[FaceResult]) -> np.ndarray:
        import cv2

        sc = _scale(scene)
        fs = self.font_scale or 0.4 * sc
        font, th = cv2.FONT_HERSHEY_SIMPLEX, 1
        bar_w = self.bar_width or round(60 * sc)
        H, W = scene.shape[:2]
        for f in _faces(result):
            if not f.probabilities:
                continue
            names = list(f.probabilities)
            label_w = max(cv2.getTextSize(n[:3], font, fs, th)[0][0] for n in names)
            row = cv2.getTextSize("Hg", font, fs, th)[0][1] + max(3, round(4 * sc))
            pw, ph = label_w + bar_w + 8, row * len(names) + 4
            x, y, w, _h = f.box
            px = x + w + 2 if x + w + 2 + pw <= W else max(0, x - pw - 2)
            py = int(np.clip(y, 0, max(0, H - ph)))
            x1, y1 = min(px + pw, W), min(py + ph, H)
            if x1 <= px or y1 <= py:
                continue
            roi = scene[py:y1, px:x1]
            roi[:] = (roi.astype(np.float32) * (1 - self.opacity)).astype(np.uint8)  # darken behind the chart
            for i, name in enumerate(names):
                ry = py + 2 + i * row
                p = float(f.probabilities[name])
                cv2.putText(scene, name[:3], (px + 3, ry + row - 3), font, fs, (255, 255, 255), th, cv2.LINE_AA)
                bx = px + label_w + 6
                cv2.rectangle(scene, (bx, ry + 2), (bx + max(1, round(p * bar_w)), ry + row - 2), emotion_color(name),
                              -1)
        return scene


class LandmarkAnnotator:
    """The landmarks of each face (when they were computed) as small dots."""

    def __init__(self, color: tuple[int, int, int] = (0, 255, 0), radius: int | None = None):
        self.color = color
        self.radius = radius

    def annotate(self, scene: np.ndarray, result: ImageResult | Iterable[FaceResult]) -> np.ndarray:
        import cv2

        r = self.radius or max(1, round(1.5 * _scale(scene)))
        for f in _faces(result):
            if f.landmarks is None:
                continue
            for px, py in np.asarray(f.landmarks).reshape(-1, 2):
                cv2.circle(scene, (round(px), round(py)), r, self.color, -1, cv2.LINE_AA)
        return scene


def draw_fps(scene: np.ndarray, fps: float) -> np.ndarray:
    """``NN.N FPS`` in the top-left corner (in place; returns ``scene``)."""
    _text_box(scene, f"{fps:.1f} FPS", (4, 4), 0.6 * _scale(scene), (255, 255, 255), (0, 0, 0))
    return scene


def annotate(
    image: np.ndarray,
    result: ImageResult | Iterable[FaceResult],
    *,
    boxes: bool = True,
    labels: bool = True,
    bars: bool = True,
    landmarks: bool = False,
    fps: float | None = None,
) -> np.ndarray:
    """A copy of the RGB uint8 ``image`` with each face's box, label (emotion, confidence, track id),
    probability bar chart and optionally landmarks, plus an FPS counter when ``fps`` is given."""
    scene = np.ascontiguousarray(image).copy()
    chain: list[Any] = []
    if bars:
        chain.append(ProbabilityBarAnnotator())
    if boxes:
        chain.append(BoxAnnotator())
    if landmarks:
        chain.append(LandmarkAnnotator())
    if labels:
        chain.append(LabelAnnotator())
    for a in chain:
        scene = a.annotate(scene, result)
    if fps is not None:
        draw_fps(scene, fps)
    return scene
