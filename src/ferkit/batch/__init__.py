"""Archive scale: the main job over many photos and videos, resumable, on one machine or a Ray cluster.

>>> from ferkit.batch import run_batch, read_table
>>> summary = run_batch(["photos/", "interviews/*.mp4"], "out/", fps=1)   # engine="local": all cores
>>> print(summary)                       # inputs, faces, failures, images/s
>>> faces = read_table("out/")           # pandas: one row per face (docs/batch_schema.md)
>>> failed = read_table("out/", "failures")

``engine="ray"`` runs the same workers as a Ray Data actor pool (``address=`` an existing
cluster). Running again with the same settings resumes: inputs already in ``out/`` (same path,
size and modification time) are skipped.
"""
from __future__ import annotations

from ferkit.batch._engines import ENGINES
from ferkit.batch._inputs import LIST_SUFFIXES, VIDEO_SUFFIXES, Input, expand_inputs
from ferkit.batch._run import BatchSummary, run_batch
from ferkit.batch._sink import FORMATS, MANIFEST, read_table
from ferkit.batch._worker import BatchWorker, InputResult

__all__ = [
    "ENGINES",
    "FORMATS",
    "LIST_SUFFIXES",
    "MANIFEST",
    "VIDEO_SUFFIXES",
    "BatchSummary",
    "BatchWorker",
    "Input",
    "InputResult",
    "expand_inputs",
    "read_table",
    "run_batch",
]
