"""Grad-CAM heat maps drawn over the faces of an image (the maps come from ``ferkit.explain``).

>>> from ferkit.viz import draw_heatmaps
>>> out = draw_heatmaps(rgb, explain_image(rec, rgb))   # [(face, heat)] -> RGB uint8 copy
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ferkit.types import FaceResult
from ferkit.viz.annotate import BoxAnnotator, LabelAnnotator

__all__ = ["draw_heatmaps", "heatmap_to_rgb"]


def heatmap_to_rgb(heat: np.ndarray) -> np.ndarray:
    """A ``(h, w)`` map in [0, 1] as an RGB uint8 image with OpenCV's JET colour map (blue low, red high)."""
    import cv2

    u8 = np.clip(np.nan_to_num(np.asarray(heat, np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def draw_heatmaps(
    image: np.ndarray,
    explanations: Iterable[tuple[FaceResult, np.ndarray]],
    *,
    alpha: float = 0.45,
    labels: bool = True,
    label_suffix: str | Sequence[str] | None = None,
) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with each face box alpha-blended with its heat map, then the
    box and the ``emotion NN%`` label on top.

    Args:
        explanations: ``(face, heat)`` pairs; ``heat`` is ``(h, w)`` in [0, 1] over ``face.box``
            (any size: it is resized to the box).
        alpha: weight of the heat map in the blend (0 = image only, 1 = heat map only).
        labels: draw the boxes and labels.
        label_suffix: text appended to every label (or one per face), e.g. ``"cam: sad"``.
    """
    import cv2

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    scene = np.ascontiguousarray(image, dtype=np.uint8).copy()
    pairs = list(explanations)
    ih, iw = scene.shape[:2]
    for face, heat in pairs:
        x, y, w, h = (int(v) for v in face.box)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, iw), min(y + h, ih)
        if x0 >= x1 or y0 >= y1:
            continue
        heat = np.asarray(heat, np.float32)
        if heat.shape != (h, w):
            heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
        color = heatmap_to_rgb(heat[y0 - y : y1 - y, x0 - x : x1 - x])
        roi = scene[y0:y1, x0:x1]
        scene[y0:y1, x0:x1] = cv2.addWeighted(roi, 1.0 - alpha, color, alpha, 0.0)
    if labels and pairs:
        faces = [f for f, _ in pairs]
        scene = BoxAnnotator().annotate(scene, faces)
        labeler = LabelAnnotator()
        if label_suffix is None:
            scene = labeler.annotate(scene, faces)
        else:
            suffixes = [label_suffix] * len(faces) if isinstance(label_suffix, str) else list(label_suffix)
            for f, s in zip(faces, suffixes):
                _Suffixed(labeler, s).annotate(scene, [f])
    return scene


class _Suffixed(LabelAnnotator):
    """The existing label with extra text after it."""

    def __init__(self, base: LabelAnnotator, suffix: str):
        super().__init__(base.show_confidence, base.show_track, base.font_scale)
        self.suffix = suffix

    def text(self, face: FaceResult) -> str:
        return f"{super().text(face)} {self.suffix}".strip()
