"""Typed results of inference: plain dataclasses holding Python numbers and CPU numpy arrays.

``ImageResult.to_dict()`` is the JSON contract of ``ferkit predict --format json``::

    {"path": str, "faces": [{"box": [x, y, w, h], "emotion": str, "confidence": float,
                             "probabilities": {class: float}, ...}], ...}

Boxes are ``[x, y, w, h]`` integer pixels of the (EXIF-rotated) image, clipped to it.

``ImageResult.rows(classes)`` is the flat form, one dict per face with the columns of
:data:`ROW_COLUMNS` and one ``prob_<class>`` column per class (:func:`row_columns`): the one column naming
of every table ferkit writes (``predict --format csv``, ``Results.to_pandas``, ``ferkit video``'s CSV,
``ferkit batch``'s Parquet and JSON lines; ``docs/rows.md``).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ROW_COLUMNS", "CsvRowWriter", "FaceResult", "FrameResult", "ImageResult", "csv_text", "prob_column",
           "row_columns"]

#: the columns of a face's row, in order, with their Arrow types (``docs/rows.md``): then one
#: ``prob_<class>`` float64 column per class of the model, then ``landmarks`` when they were computed
ROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "string"), ("frame", "int64"), ("time_s", "float64"), ("width", "int32"), ("height", "int32"),
    ("face", "int32"), ("track_id", "int32"), ("x", "int32"), ("y", "int32"), ("w", "int32"), ("h", "int32"),
    ("detection_score", "float64"), ("emotion", "string"), ("confidence", "float64"),
)


def prob_column(cls: str) -> str:
    """The column of a class's probability: ``prob_happy``."""
    return f"prob_{cls}"


def row_columns(classes: list[str] | tuple[str, ...], landmarks: bool = False) -> list[str]:
    """Every column of the rows of a model with ``classes``, in order."""
    return [n for n, _ in ROW_COLUMNS] + [prob_column(c) for c in classes] + (["landmarks"] if landmarks else [])


class CsvRowWriter:
    """The CSV sink of rows, written as they come into an open text file: a header of ``columns``, then
    one line per row; None is empty, floats have 6 decimals (``time_s`` 4), a list (landmarks) is its
    numbers joined by spaces."""

    def __init__(self, f: Any, columns: list[str]) -> None:
        import csv

        self.columns = columns
        self._w = csv.writer(f, lineterminator="\n")
        self._w.writerow(columns)

    @staticmethod
    def _cell(key: str, v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4f}" if key == "time_s" else f"{v:.6f}"
        if isinstance(v, list):
            return " ".join(f"{x:g}" for x in v)
        return v

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._w.writerow([self._cell(k, row.get(k)) for k in self.columns])


def csv_text(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    """The rows as CSV text (:class:`CsvRowWriter`'s format)."""
    import io

    buf = io.StringIO()
    CsvRowWriter(buf, columns).write(rows)
    return buf.getvalue()


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

    def row(self, classes: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """The face's own columns of :data:`ROW_COLUMNS` (box, track, scores) and its probabilities."""
        x, y, w, h = (int(v) for v in self.box)
        return {"track_id": self.track_id, "x": x, "y": y, "w": w, "h": h,
                "detection_score": None if self.detection_score is None else float(self.detection_score),
                "emotion": self.emotion, "confidence": float(self.confidence),
                **{prob_column(c): float(self.probabilities.get(c, 0.0)) for c in classes}}


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

    def _where(self) -> dict[str, Any]:
        return {"path": self.path, "frame": None, "time_s": None}

    def rows(self, classes: list[str] | tuple[str, ...], *, landmarks: bool = False,
             empty: bool = False) -> list[dict[str, Any]]:
        """One row per face (:func:`row_columns`); ``empty``: one row with no face (``face`` and the
        columns after it None) for an image without one, so that every image is accounted for."""
        base = {**self._where(), "width": int(self.width), "height": int(self.height)}
        columns = row_columns(classes, landmarks)
        if not self.faces:
            return [dict.fromkeys(columns) | base] if empty else []
        rows = []
        for i, f in enumerate(self.faces):
            row = dict.fromkeys(columns) | base | {"face": i} | f.row(classes)
            if landmarks and f.landmarks is not None:
                row["landmarks"] = [round(float(v), 1) for v in np.asarray(f.landmarks).reshape(-1)]
            rows.append(row)
        return rows

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

    def _where(self) -> dict[str, Any]:
        return {"path": self.path, "frame": int(self.frame), "time_s": round(float(self.time_s), 4)}

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        return {"frame": int(self.frame), "time_s": round(float(self.time_s), 4), **d}
