"""A simple IoU tracker: each face keeps an id while its box overlaps its previous box."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferkit.detect import iou

__all__ = ["IoUTracker"]


@dataclass
class _Track:
    id: int
    box: np.ndarray
    probs: np.ndarray | None
    missed: int = 0


class IoUTracker:
    """Greedy IoU matching of this frame's boxes to the live tracks, with optional EMA smoothing.

    Args:
        iou_threshold: least IoU between a track's last box and a new box to continue the track.
        max_missed: frames (updates) a track survives without a matching box; a face that is hidden
            for a moment keeps its id.
        smoothing: exponential moving average of each track's probabilities,
            ``p = smoothing * p_previous + (1 - smoothing) * p_new``; 0 = off, 0.6 = a few frames of memory.
    Ids start at 1 and are never reused.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, smoothing: float = 0.0):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.smoothing = float(smoothing)
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, boxes: np.ndarray, probs: np.ndarray | None = None) -> tuple[list[int], np.ndarray | None]:
        """Assign ids to this frame's ``(n, 4)`` ``[x, y, w, h]`` boxes; return ``(ids, probs)``, the
        probabilities smoothed per track when ``smoothing`` > 0 (else ``probs`` unchanged)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        n = len(boxes)
        ids: list[int] = [0] * n
        track_of: list[_Track | None] = [None] * n
        if self._tracks and n:
            m = iou(np.stack([t.box for t in self._tracks]), boxes)
            used_t: set[int] = set()
            for flat in np.argsort(-m, axis=None, kind="stable"):
                ti, di = divmod(int(flat), n)
                if m[ti, di] < self.iou_threshold:
                    break
                if ti in used_t or track_of[di] is not None:
                    continue
                used_t.add(ti)
                track_of[di] = self._tracks[ti]
        matched = {id(t) for t in track_of if t is not None}
        for t in self._tracks:
            if id(t) not in matched:
                t.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        out = None if probs is None else np.array(probs, np.float64, copy=True).reshape(n, -1 if n else 0)
        for i in range(n):
            t = track_of[i]
            if t is None:
                t = _Track(self._next_id, boxes[i], None)
                self._next_id += 1
                self._tracks.append(t)
            t.box, t.missed = boxes[i], 0
            if out is not None:
                if self.smoothing and t.probs is not None and t.probs.shape == out[i].shape:
                    out[i] = self.smoothing * t.probs + (1 - self.smoothing) * out[i]
                    out[i] /= out[i].sum()
                t.probs = out[i].copy()
            ids[i] = t.id
        return ids, out

    def reset(self) -> None:
        self._tracks, self._next_id = [], 1
