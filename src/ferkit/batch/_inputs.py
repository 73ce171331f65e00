"""What a batch run reads: files, folders and globs of images and videos, or lists of paths
(``.txt``/``.lst`` one per line, ``.csv`` with a ``path`` column, ``.parquet`` with a ``path``
column), each input identified by its path, size and modification time."""
from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ferkit.errors import FerkitError
from ferkit.infer import IMAGE_SUFFIXES, expand_paths

__all__ = ["LIST_SUFFIXES", "VIDEO_SUFFIXES", "Input", "expand_inputs", "read_path_list"]

#: file suffixes treated as videos
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
#: file suffixes read as lists of paths when given as an input (not when found in a folder)
LIST_SUFFIXES = (".txt", ".lst", ".csv", ".parquet")


@dataclass(frozen=True)
class Input:
    """One input of a batch run. ``size`` and ``mtime_ns`` are -1 for a path that does not exist
    (it still gets a row in the failures table)."""

    path: str
    kind: str  # "image" or "video"
    size: int
    mtime_ns: int

    @property
    def key(self) -> tuple[str, int, int]:
        """What resuming compares: the same path, size and modification time is the same input."""
        return (self.path, self.size, self.mtime_ns)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, path: str) -> Input:
        kind = "video" if Path(path).suffix.lower() in VIDEO_SUFFIXES else "image"
        try:
            st = os.stat(path)
        except OSError:
            return cls(path, kind, -1, -1)
        return cls(path, kind, int(st.st_size), int(st.st_mtime_ns))


def read_path_list(path: str | os.PathLike[str]) -> list[str]:
    """The paths listed in a ``.txt``/``.lst`` (one per line; blank lines and ``#`` comments
    skipped), ``.csv`` (a ``path`` column, or the first column when there is no such header) or
    ``.parquet`` file (a ``path`` column). Relative paths are taken relative to the list's folder."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise FerkitError(f"{p}: reading a Parquet list needs pyarrow "
                                  f"(pip install \"ferkit[batch]\")") from None
            table = pq.read_table(p)
            if "path" not in table.column_names:
                raise FerkitError(f"{p}: no 'path' column (columns: {', '.join(table.column_names)})")
            entries = [str(v) for v in table.column("path").to_pylist() if v]
        elif suffix == ".csv":
            with p.open(newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            header = bool(rows) and "path" in rows[0]
            col = rows[0].index("path") if header else 0
            entries = []
            for n, row in enumerate(rows[1:] if header else rows, start=2 if header else 1):
                if len(row) <= col or not row[col].strip():
                    raise FerkitError(f"{p}: row {n}: no path in column {col + 1}")
                entries.append(row[col].strip())
        else:
            lines = p.read_text(encoding="utf-8").splitlines()
            entries = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as e:
        raise FerkitError(f"{p}: cannot read the list of paths ({e.__class__.__name__}: {e})") from None
    except FerkitError:
        raise
    except Exception as e:  # noqa: BLE001 - pyarrow's errors for a corrupt Parquet file
        raise FerkitError(f"{p}: not a readable Parquet file "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return [e if os.path.isabs(e) else os.path.join(p.parent, e) for e in entries]


def expand_inputs(args: Iterable[str | os.PathLike[str]]) -> tuple[list[Input], list[str]]:
    """Inputs -> ``(inputs, problems)``: folders give their image and video files (recursively,
    sorted), globs their matches, list files the paths they list, other paths themselves (a path
    that does not exist is kept, so that it lands in the failures table). Duplicates are dropped.
    ``problems`` are one-line messages about arguments that gave nothing (an empty folder, a glob
    without a match, an empty list)."""
    paths: list[str] = []
    problems: list[str] = []
    for arg in map(os.fspath, args):
        if Path(arg).is_file() and Path(arg).suffix.lower() in LIST_SUFFIXES:
            listed = read_path_list(arg)
            if not listed:
                problems.append(f"{arg}: the list has no paths")
            paths += listed
        else:
            found, why = expand_paths([arg], recursive=True, suffixes=IMAGE_SUFFIXES + VIDEO_SUFFIXES,
                                      what="image or video")
            paths += found
            problems += why
    return [Input.of(q) for q in dict.fromkeys(paths)], problems
