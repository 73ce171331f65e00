"""Detect-then-classify evaluation (``ferkit evaluate --detect``): what a user of ``ferkit predict`` gets.

Each image of a labelled set of uncropped photos (one labelled person per image: JAFFE, KDEF, an
in-the-wild set) is read, searched for faces, and its largest face is classified through the
same :class:`ferkit.infer.Recognizer` methods ``ferkit predict`` runs (``detect``, ``crop``,
``classify``: the same reader, detector, crop margin and model preprocessing), never a copy of
them. An image where no face is found gets no prediction (``-1``) and counts as wrong; a file that
cannot be read (not an image, a truncated JPEG) is logged as a one-line warning and left out.

Only the crops are kept between detection and classification (plus a 64-pixel thumbnail per
image for the report), so photos of any size (a 4000x3000 JPEG) go through one at a time.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferkit.data.faceset import FaceSet
from ferkit.detect import Faces
from ferkit.errors import FerkitError

__all__ = ["THUMB_SIZE", "DetectOutput", "compute_detect_metrics", "detect_and_classify", "largest_face"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
#: longest side of the thumbnail kept per image for the report's prediction grid
THUMB_SIZE = 64


@dataclass
class DetectOutput:
    """Per readable image (K rows, in the order of ``kept``)."""

    kept: np.ndarray            # (K,) row indices into the FaceSet of the images that could be read
    found: np.ndarray           # (K,) bool: the detector found a face
    probs: np.ndarray           # (K, C_model) float64 probabilities of the largest face; NaN rows where none
    boxes: np.ndarray           # (K, 4) int64 [x, y, w, h] of the classified face; -1 where none
    n_faces: np.ndarray         # (K,) faces the detector found in the image
    thumbs: list[np.ndarray]    # (K) RGB uint8 thumbnail of the classified crop (of the whole image if no face)
    unreadable: list[str]       # one-line messages of the files that were skipped


def largest_face(faces: Faces) -> int:
    """Index of the face with the largest box area (the first in reading order on a tie)."""
    return faces.largest()


def _thumbnail(rgb: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    if scale >= 1:
        return rgb.copy()
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def detect_and_classify(recognizer: Any, faces: FaceSet, *, progress: Progress | None = None) -> DetectOutput:
    """Run ``recognizer`` (a :class:`ferkit.infer.Recognizer`) over every image of ``faces``:
    read it, detect faces, keep the largest, crop and classify it; crops are classified in batches
    of ``recognizer.batch_size``. Unreadable files are logged (WARNING, one line naming the file)
    and skipped; ``progress(done, total)`` is called after each image."""
    from ferkit.infer import to_rgb_array

    total = len(faces)
    kept: list[int] = []
    found: list[bool] = []
    boxes: list[list[int]] = []
    n_faces: list[int] = []
    thumbs: list[np.ndarray] = []
    unreadable: list[str] = []
    probs = np.full((total, len(recognizer.classes)), np.nan)
    pending: list[np.ndarray] = []     # crops waiting for classification
    pending_rows: list[int] = []       # their rows in ``probs``

    def flush() -> None:
        if pending:
            probs[pending_rows] = recognizer.classify(pending)
            pending.clear()
            pending_rows.clear()

    for i in range(total):
        try:  # the steps of `ferkit predict`: read (large JPEGs reduced), detect, crop
            source = (faces.paths[i] if faces.paths is not None
                      else to_rgb_array(faces.load_image(i), what=str(faces.ids[i])))
            prepared = recognizer.prepare(source, keep_image=True)
        except FerkitError as e:
            unreadable.append(str(e))
            log.warning("%s; skipped", e)
        else:
            dets, rgb = prepared.faces, prepared.image
            row = len(kept)
            kept.append(i)
            n_faces.append(len(dets))
            if len(dets):
                k = largest_face(dets)
                crop = prepared.crops[k]
                pending.append(crop)
                pending_rows.append(row)
                found.append(True)
                boxes.append([int(v) for v in dets.boxes[k]])
                thumbs.append(_thumbnail(crop))
                if len(pending) >= recognizer.batch_size:
                    flush()
            else:
                found.append(False)
                boxes.append([-1, -1, -1, -1])
                thumbs.append(_thumbnail(rgb))
            del rgb, prepared
        if progress is not None:
            progress(i + 1, total)
    flush()
    k = len(kept)
    return DetectOutput(
        kept=np.asarray(kept, dtype=np.int64), found=np.asarray(found, dtype=bool), probs=probs[:k],
        boxes=np.asarray(boxes, dtype=np.int64).reshape(k, 4), n_faces=np.asarray(n_faces, dtype=np.int64),
        thumbs=thumbs, unreadable=unreadable,
    )


def compute_detect_metrics(
    y_true: np.ndarray, probs: np.ndarray, found: np.ndarray, classes: Sequence[str],
) -> dict[str, Any]:
    """:func:`~ferkit.evaluate.metrics.compute_metrics` for detect-then-classify results.

    ``probs`` (N, C) has NaN rows where ``found`` is False. Accuracy, precision, recall, F1,
    support and the confusion matrix are over all N images, an image without a face being wrong
    (it predicts no class, so it is a miss of its true class and a false positive of none, and
    it is absent from the confusion matrix). Mean and per-class AUC, ECE, NLL and the reliability
    bins need probabilities and are over the found faces only.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    from ferkit.evaluate.metrics import compute_metrics

    y_true = np.asarray(y_true, dtype=np.int64)
    found = np.asarray(found, dtype=bool)
    if not found.any():
        raise ValueError("compute_detect_metrics: no face found in any image")
    m = compute_metrics(y_true[found], probs[found], classes)
    y_pred = np.where(found, np.nan_to_num(probs, nan=-1.0).argmax(axis=1), -1)
    labels = list(range(len(classes)))
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for k, name in enumerate(classes):
        m["per_class"][name].update(precision=float(prec[k]), recall=float(rec[k]), f1=float(f1[k]),
                                    support=int(support[k]))
    for how in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=how, zero_division=0)
        m[f"{how}_precision"], m[f"{how}_recall"], m[f"{how}_f1"] = float(p), float(r), float(f)
    m["n_images"] = len(y_true)
    m["accuracy"] = float(accuracy_score(y_true, y_pred))
    m["confusion"] = confusion_matrix(y_true, y_pred, labels=labels).astype(int).tolist()
    return m
