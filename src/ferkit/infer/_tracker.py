"""Face tracks in video: ids by box overlap (:class:`IoUTracker`), and boxes followed between two
detections by optical flow (:class:`FlowFollower`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ferkit.detect import Faces, clip_boxes, iou

__all__ = ["DetectAndFollow", "FlowFollower", "IoUTracker"]


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


class FlowFollower:
    """Moves face boxes from one frame to the next without the detector: sparse optical flow
    (OpenCV's pyramidal Lucas-Kanade) of a grid of points inside each box, checked forward and
    backward, the box shifted by the points' median motion and scaled by the median change of their
    distances (the median-flow tracker of Kalal et al. 2010, all faces in one flow call).

    A box is lost when fewer than ``min_points`` of its points survive the forward-backward check
    (``fb_max`` pixels), its scale changes by more than ``max_scale_step`` in one frame, or what it
    holds no longer looks like what it held (normalised cross-correlation of the two patches at
    24x24 below ``min_similarity``: a face covered, or gone while the background stays): the caller
    should run the detector then.

    Args:
        grid: points per box side (grid x grid points over the box's inner 80 %).
        min_points: least surviving points to keep a box.
        fb_max: largest forward-backward error (pixels) of a surviving point.
        max_scale_step: largest box scale change per frame (ratio) before the box is lost.
        min_similarity: least normalised cross-correlation between a box's patch before and after
            (on the sample clip, 95 % of the faces followed from one frame to the next score over 0.89).
    """

    def __init__(self, grid: int = 6, min_points: int = 8, fb_max: float = 1.0, max_scale_step: float = 1.25,
                 min_similarity: float = 0.75):
        self.grid, self.min_points, self.fb_max = int(grid), int(min_points), float(fb_max)
        self.max_scale_step, self.min_similarity = float(max_scale_step), float(min_similarity)
        self._gray: np.ndarray | None = None
        self._boxes = np.zeros((0, 4))

    @staticmethod
    def gray(rgb: np.ndarray) -> np.ndarray:
        import cv2

        return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    def start(self, rgb: np.ndarray, boxes: np.ndarray) -> None:
        """Remember this frame and its ``(n, 4)`` ``[x, y, w, h]`` boxes (after a detection)."""
        self._gray = self.gray(rgb)
        self._boxes = np.asarray(boxes, np.float64).reshape(-1, 4)

    def _points(self) -> np.ndarray:
        t = (np.arange(self.grid) + 0.5) / self.grid * 0.8 + 0.1  # inner 80 % of the box
        gx, gy = np.meshgrid(t, t)
        unit = np.stack([gx.ravel(), gy.ravel()], 1)
        return np.concatenate([b[:2] + unit * b[2:] for b in self._boxes]).astype(np.float32)

    def follow(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This frame's boxes ``(n, 4)`` (float) for the boxes of the previous frame, and a bool
        mask of those followed (False: lost). The frame becomes the previous one."""
        import cv2

        if self._gray is None:
            raise ValueError("FlowFollower.follow before start")
        gray = self.gray(rgb)
        n = len(self._boxes)
        boxes, ok = self._boxes.copy(), np.zeros(n, bool)
        if n:
            p0 = self._points()
            lk = {"winSize": (15, 15), "maxLevel": 3,
                  "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, p0, None, **lk)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self._gray, p1, None, **lk)
            good = (st1.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(back - p0, axis=1) < self.fb_max)
            per = self.grid * self.grid
            for i in range(n):
                sel = slice(i * per, (i + 1) * per)
                g = good[sel]
                if g.sum() < self.min_points:
                    continue
                a, b = p0[sel][g].astype(np.float64), p1[sel][g].astype(np.float64)
                shift = np.median(b - a, axis=0)
                da = np.linalg.norm(a[:, None] - a[None], axis=2)
                db = np.linalg.norm(b[:, None] - b[None], axis=2)
                pair = da > 1e-3
                scale = float(np.median(db[pair] / da[pair])) if pair.any() else 1.0
                if not 1 / self.max_scale_step <= scale <= self.max_scale_step:
                    continue
                x, y, w, h = self._boxes[i]
                cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
                box = np.array([cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale])
                if _similarity(self._gray, self._boxes[i], gray, box) >= self.min_similarity:
                    boxes[i], ok[i] = box, True
        self._gray, self._boxes = gray, boxes[ok]
        return boxes, ok


def _patch(gray: np.ndarray, box: np.ndarray, side: int = 24) -> np.ndarray | None:
    import cv2

    h, w = gray.shape[:2]
    x1, y1 = max(0, round(box[0])), max(0, round(box[1]))
    x2, y2 = min(w, round(box[0] + box[2])), min(h, round(box[1] + box[3]))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return cv2.resize(gray[y1:y2, x1:x2], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)


def _similarity(gray0: np.ndarray, box0: np.ndarray, gray1: np.ndarray, box1: np.ndarray) -> float:
    """Normalised cross-correlation of two boxes' patches (-1..1; 0 when either is flat or empty)."""
    a, b = _patch(gray0, box0), _patch(gray1, box1)
    if a is None or b is None:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0


class DetectAndFollow:
    """Faces per video frame from a detector run every ``every`` frames, followed by optical flow
    (:class:`FlowFollower`) in between.

    The detector runs on the first frame, every ``every``-th frame after it, as soon as a followed
    face is lost or shrinks under ``min_size``, and on every frame while no face is followed (so a
    first face is found at once). On a detection frame the faces followed
    into it that the detector did not find again (no detection overlapping by IoU 0.3) are kept,
    for at most ``coast`` detections in a row: a face the detector misses on one frame (a blink,
    motion blur, a score just under the threshold) does not drop out of its track.

    Args:
        detect: ``rgb -> Faces``, the detector.
        every: frames per detection (1: every frame, nothing followed).
        coast: detections a followed face may be missed by before it is dropped.
        min_size: a followed box smaller than this (pixels) triggers a detection.
    """

    def __init__(self, detect: Callable[[np.ndarray], Faces], every: int, *, coast: int = 1, min_size: int = 1,
                 follower: FlowFollower | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.detect, self.every, self.coast, self.min_size = detect, int(every), int(coast), int(min_size)
        self.follower = follower or FlowFollower()
        self._started = False
        self._since = 0
        self._scores = np.zeros(0, np.float32)
        self._missed = np.zeros(0, np.int64)  # detections in a row that missed each face

    def __call__(self, rgb: np.ndarray) -> Faces:
        h, w = rgb.shape[:2]
        if self.every == 1:
            return self.detect(rgb)
        followed, ok = (self.follower.follow(rgb) if self._started else (np.zeros((0, 4)), np.zeros(0, bool)))
        boxes, scores, missed = followed[ok], self._scores[ok], self._missed[ok]
        small = len(boxes) and boxes[:, 2:].min() < self.min_size
        if len(boxes) and ok.all() and not small and self._since < self.every:
            self._since += 1
            self._scores, self._missed = scores, missed
            return Faces(clip_boxes(boxes, w, h), scores)
        found = self.detect(rgb)
        keep = missed < self.coast
        if len(boxes) and len(found):
            keep &= iou(boxes, found.boxes).max(1) < 0.3
        keep &= boxes[:, 2:].min(1) >= self.min_size
        faces = Faces(np.concatenate([found.boxes, clip_boxes(boxes[keep], w, h)]),
                      np.concatenate([found.scores, scores[keep]]).astype(np.float32))
        self._scores = faces.scores
        self._missed = np.concatenate([np.zeros(len(found), np.int64), missed[keep] + 1])
        self.follower.start(rgb, faces.boxes)
        self._started, self._since = True, 1
        return faces
