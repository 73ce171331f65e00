"""The two tables of a batch run, one row per face and one row per failed input (documented in
``docs/batch_schema.md``), as plain dicts and as Arrow schemas."""
from __future__ import annotations

from typing import Any

from ferkit.batch._inputs import Input
from ferkit.types import ROW_COLUMNS, ImageResult, prob_column

__all__ = ["FACE_COLUMNS", "FAILURE_COLUMNS", "face_rows", "failure_row", "prob_column"]

#: the faces table: ``ferkit.types.ROW_COLUMNS`` with the input's identity after ``path``, then the
#: ``prob_<class>`` columns (and ``landmarks``, when asked for), then :data:`TRAILING_COLUMNS`
FACE_COLUMNS: tuple[tuple[str, str], ...] = (
    ROW_COLUMNS[0], ("size", "int64"), ("mtime_ns", "int64"), ("kind", "string"), *ROW_COLUMNS[1:])
#: the columns after the probabilities
TRAILING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "string"), ("model_sha256", "string"), ("detector", "string"))
FAILURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("path", "string"), ("size", "int64"), ("mtime_ns", "int64"), ("kind", "string"), ("reason", "string"),
    ("frames_read", "int64"),
)


def face_rows(item: Input, result: ImageResult, classes: list[str], ident: dict[str, str],
              *, landmarks: bool = False) -> list[dict[str, Any]]:
    """Rows of the faces table for one image or one video frame (a FrameResult): ``result.rows``, one
    per face, or one with no box when there is none, so that every input is accounted for."""
    where = {"path": item.path, "size": item.size, "mtime_ns": item.mtime_ns, "kind": item.kind}
    return [{**where, **{k: v for k, v in row.items() if k != "path"}, **ident}
            for row in result.rows(classes, landmarks=landmarks, empty=True)]


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
