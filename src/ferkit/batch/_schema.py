"""The two tables of a batch run, one row per face and one row per failed input (documented in
``docs/batch_schema.md``), as plain dicts and as Arrow schemas."""
from __future__ import annotations

from typing import Any

from ferkit.batch._inputs import Input
from ferkit.types import ImageResult

__all__ = ["FACE_COLUMNS", "FAILURE_COLUMNS", "face_rows", "failure_row", "prob_column"]

#: the columns of the faces table before the ``prob_<class>`` columns (and ``landmarks``, when asked for)
FACE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "string"), ("size", "int64"), ("mtime_ns", "int64"), ("kind", "string"),
    ("frame", "int64"), ("time_s", "float64"), ("width", "int32"), ("height", "int32"),
    ("face", "int32"), ("track_id", "int32"), ("x", "int32"), ("y", "int32"), ("w", "int32"), ("h", "int32"),
    ("detection_score", "float64"), ("emotion", "string"), ("confidence", "float64"),
)
#: the columns after the probabilities
TRAILING_COLUMNS: tuple[tuple[str, str], ...] = (("model", "string"), ("model_sha256", "string"), ("detector", "string"))
FAILURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "string"), ("size", "int64"), ("mtime_ns", "int64"), ("kind", "string"), ("reason", "string"),
    ("frames_read", "int64"),
)


def prob_column(cls: str) -> str:
    return f"prob_{cls}"


def face_rows(item: Input, result: ImageResult, classes: list[str], ident: dict[str, str],
              *, frame: int | None = None, time_s: float | None = None, landmarks: bool = False) -> list[dict[str, Any]]:
    """Rows of the faces table for one image or one video frame: one per face, or one with no box
    (``face`` and everything after it null) when there is none, so that every input is accounted for."""
    base = {"path": item.path, "size": item.size, "mtime_ns": item.mtime_ns, "kind": item.kind,
            "frame": frame, "time_s": None if time_s is None else round(float(time_s), 4),
            "width": int(result.width), "height": int(result.height)}
    empty = dict.fromkeys(name for name, _ in FACE_COLUMNS[len(base):])
    empty.update({prob_column(c): None for c in classes})
    if landmarks:
        empty["landmarks"] = None
    if not result.faces:
        return [{**base, **empty, **ident}]
    rows = []
    for i, f in enumerate(result.faces):
        x, y, w, h = (int(v) for v in f.box)
        row = {**base, **empty, "face": i, "track_id": f.track_id, "x": x, "y": y, "w": w, "h": h,
               "detection_score": f.detection_score, "emotion": f.emotion, "confidence": float(f.confidence)}
        row.update({prob_column(c): float(f.probabilities[c]) for c in classes})
        if landmarks and f.landmarks is not None:
            row["landmarks"] = [round(float(v), 1) for v in f.landmarks.reshape(-1)]
        rows.append({**row, **ident})
    return rows


def failure_row(item: Input, reason: str, frames_read: int | None = None) -> dict[str, Any]:
    return {"path": item.path, "size": item.size, "mtime_ns": item.mtime_ns, "kind": item.kind,
            "reason": reason, "frames_read": frames_read}


def arrow_schemas(classes: list[str], landmarks: bool = False) -> tuple[Any, Any]:
    """``(faces, failures)`` pyarrow schemas."""
    import pyarrow as pa

    def field(name: str, kind: str) -> Any:
        return pa.field(name, getattr(pa, kind)())

    faces = [field(n, k) for n, k in FACE_COLUMNS] + [field(prob_column(c), "float64") for c in classes]
    if landmarks:
        faces.append(pa.field("landmarks", pa.list_(pa.float32())))
    faces += [field(n, k) for n, k in TRAILING_COLUMNS]
    return pa.schema(faces), pa.schema([field(n, k) for n, k in FAILURE_COLUMNS])


def column_names(classes: list[str], landmarks: bool = False) -> list[str]:
    return ([n for n, _ in FACE_COLUMNS] + [prob_column(c) for c in classes] + (["landmarks"] if landmarks else [])
            + [n for n, _ in TRAILING_COLUMNS])
