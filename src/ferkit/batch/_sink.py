"""The output folder of a batch run: shards written atomically, a manifest as the commit point,
and resuming from what was committed.

Layout of ``DIR``::

    manifest.json                 run settings, model identity, committed shards, totals
    faces/part-000000.parquet     one row per face (or per input/frame without a face)
    failures/part-000000.parquet  one row per input that failed (only for shards that had some)

A shard holds every row of the inputs it covers (an input never spans two shards). Committing a
shard: its files are written to temporary names and renamed into place, then the manifest, which
lists it, replaces the previous manifest (an atomic rename). The manifest is the only commit
point: shard files it does not list (left by a run killed between the renames) are deleted on
resume, so a ``kill -9`` loses at most the shards in flight and never duplicates a row.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ferkit._fileio import atomic_path, atomic_write_text, remove_stale_temporaries
from ferkit.batch._schema import arrow_schemas, column_names
from ferkit.batch._worker import InputResult
from ferkit.errors import FerkitError

__all__ = ["FORMATS", "MANIFEST", "ShardSink", "read_table"]

FORMATS = ("parquet", "jsonl")
MANIFEST = "manifest.json"
#: 2: the settings are every RecognizerOptions field that decides the rows, and the stream's
MANIFEST_VERSION = 2
_PART = re.compile(r"^part-(\d{6,})\.(parquet|jsonl)$")
#: settings that must match for a run to resume into an existing folder
IDENTITY_KEYS = ("format", "model", "model_sha256", "detector", "classes", "settings")


def _need_pyarrow(what: str) -> Any:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise FerkitError(f"{what} needs pyarrow: pip install \"ferkit[batch]\" (or use --format jsonl)") from None
    return pq


class ShardSink:
    """Writes the shards and the manifest of one output folder; knows what is already done there.

    Args:
        out: the output folder (created; it must be empty of anything but a previous run of the
            same settings, so nothing the user wrote is touched).
        identity: ``format``, ``model``, ``model_sha256``, ``detector``, ``classes`` and the other
            ``settings`` of the run; a folder holding a run with other values is refused.
    """

    def __init__(self, out: str | os.PathLike[str], identity: dict[str, Any], *, landmarks: bool = False):
        self.out = Path(out)
        self.fmt = identity["format"]
        if self.fmt not in FORMATS:
            raise FerkitError(f"--format {self.fmt!r}: expected one of {', '.join(FORMATS)}")
        if self.fmt == "parquet":
            _need_pyarrow("--format parquet")
        self.identity = {k: identity[k] for k in IDENTITY_KEYS}
        self.classes = list(identity["classes"])
        self.landmarks = landmarks
        self.faces_dir, self.failures_dir = self.out / "faces", self.out / "failures"
        if self.out.exists() and not self.out.is_dir():
            raise FerkitError(f"{self.out}: exists and is not a folder")
        self.schemas = arrow_schemas(self.classes, landmarks) if self.fmt == "parquet" else (None, None)
        self.manifest = self._open()
        self.seq = 1 + max((s["seq"] for s in self.manifest["shards"]), default=-1)

    # ------------------------------------------------------------------ opening and resuming
    def _open(self) -> dict[str, Any]:
        path = self.out / MANIFEST
        if self.out.is_dir():
            remove_stale_temporaries(self.out)  # a manifest being replaced when the run was killed
        if path.is_file():
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
                shards = manifest["shards"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise FerkitError(f"{path}: not a ferkit batch manifest ({e.__class__.__name__})") from None
            if manifest.get("ferkit_batch") != MANIFEST_VERSION:
                raise FerkitError(f"{self.out}: holds a batch run of another ferkit (manifest format "
                                  f"{manifest.get('ferkit_batch')!r}, this one writes {MANIFEST_VERSION}); "
                                  "give another --out")
            theirs = {k: manifest.get(k) for k in IDENTITY_KEYS}
            if theirs != self.identity:
                diff = [k for k in IDENTITY_KEYS if theirs[k] != self.identity[k]]
                if diff == ["settings"]:  # name the settings that differ, not the whole dict
                    old, new = theirs["settings"] or {}, self.identity["settings"] or {}
                    diff = [f"settings.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
                    theirs = {f"settings.{k}": old.get(k) for k in (d[9:] for d in diff)}
                raise FerkitError(f"{self.out}: holds a batch run with other {', '.join(diff)} "
                                  f"({'; '.join(f'{k}={theirs[k]!r}' for k in diff)}); give another --out "
                                  "or the same settings to resume")
            self._drop_uncommitted(shards)
            return manifest
        if self.out.is_dir() and any(self.out.iterdir()):
            raise FerkitError(f"{self.out}: folder is not empty and holds no {MANIFEST} (not a batch run's output); "
                              "give a new or empty folder")
        manifest = {"ferkit_batch": MANIFEST_VERSION, **self.identity,
                    "columns": column_names(self.classes, self.landmarks), "shards": [],
                    "totals": {"inputs": 0, "rows": 0, "faces": 0, "failures": 0, "frames": 0}}
        self._write_manifest(manifest)
        return manifest

    def _drop_uncommitted(self, shards: list[dict[str, Any]]) -> None:
        listed = {Path(s[k]).name for s in shards for k in ("faces", "failures") if s.get(k)}
        for folder in (self.faces_dir, self.failures_dir):
            remove_stale_temporaries(folder)
            if folder.is_dir():
                for f in folder.iterdir():
                    if _PART.match(f.name) and f.name not in listed:
                        f.unlink()

    def done_keys(self) -> set[tuple[str, int, int]]:
        """``(path, size, mtime_ns)`` of every input in a committed shard (faces or failures)."""
        keys: set[tuple[str, int, int]] = set()
        for shard in self.manifest["shards"]:
            for k in ("faces", "failures"):
                if shard.get(k):
                    for row in _read_rows(self.out / shard[k], ("path", "size", "mtime_ns")):
                        keys.add((row["path"], int(row["size"]), int(row["mtime_ns"])))
        return keys

    # ------------------------------------------------------------------ writing
    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_text(self.out / MANIFEST, json.dumps(manifest, indent=1) + "\n")

    def commit(self, results: Iterable[InputResult]) -> dict[str, Any] | None:
        """Write one shard holding every row of ``results`` and list it in the manifest."""
        results = list(results)
        if not results:
            return None
        faces = [row for r in results for row in r.rows]
        failures = [r.failure for r in results if r.failure]
        name = f"part-{self.seq:06d}.{self.fmt}"
        entry: dict[str, Any] = {"seq": self.seq, "faces": None, "failures": None, "inputs": len(results),
                                 "rows": len(faces), "faces_found": sum(r.faces for r in results),
                                 "failed": len(failures), "frames": sum(r.frames for r in results)}
        for rows, folder, schema, key in ((faces, self.faces_dir, self.schemas[0], "faces"),
                                          (failures, self.failures_dir, self.schemas[1], "failures")):
            if rows:
                _write_rows(folder / name, rows, schema)
                entry[key] = f"{folder.name}/{name}"
        self.seq += 1
        self.manifest["shards"].append(entry)
        t = self.manifest["totals"]
        for k, v in (("inputs", entry["inputs"]), ("rows", entry["rows"]), ("faces", entry["faces_found"]),
                     ("failures", entry["failed"]), ("frames", entry["frames"])):
            t[k] = t.get(k, 0) + v
        self._write_manifest(self.manifest)
        return entry

    def note(self, **info: Any) -> None:
        """Record run information (engine, timing of the last run) in the manifest."""
        self.manifest.setdefault("runs", []).append(info)
        self._write_manifest(self.manifest)


def _write_rows(path: Path, rows: list[dict[str, Any]], schema: Any) -> None:
    with atomic_path(path) as tmp:
        if schema is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp, compression="zstd")
        else:
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        pq = _need_pyarrow("reading Parquet shards")
        return pq.read_table(path, columns=list(columns)).to_pylist()
    with path.open(encoding="utf-8") as f:
        return [{k: row[k] for k in columns} for row in map(json.loads, f)]


def read_table(out: str | os.PathLike[str], table: str = "faces") -> Any:
    """A committed batch output as a pandas DataFrame: ``table`` is ``"faces"`` or ``"failures"``.
    Only the shards listed in the manifest are read (not those of a run still writing)."""
    import pandas as pd

    out = Path(out)
    if table not in ("faces", "failures"):
        raise FerkitError(f"read_table: table must be 'faces' or 'failures', not {table!r}")
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FerkitError(f"{out / MANIFEST}: cannot read the batch manifest ({e.__class__.__name__})") from None
    files = [out / s[table] for s in manifest["shards"] if s.get(table)]
    if manifest["format"] == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        faces, failures = arrow_schemas(manifest["classes"], "landmarks" in manifest.get("columns", []))
        schema = faces if table == "faces" else failures
        tables = [pq.read_table(f, schema=schema) for f in files] or [schema.empty_table()]
        nullable = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}  # missing boxes: <NA>, not NaN floats
        return pa.concat_tables(tables).to_pandas(types_mapper=nullable.get)
    frames = [pd.read_json(f, lines=True, dtype=False) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
