"""The work of one batch worker: a Recognizer loaded once, and inputs -> table rows.

Both engines run this same code (``local`` in its pool processes, ``ray`` in its actors); the
engines only move :class:`InputResult` objects to the process that writes the shards."""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ferkit.batch._inputs import Input
from ferkit.batch._schema import face_rows, failure_row
from ferkit.errors import FerkitError

__all__ = ["BatchWorker", "InputResult", "recognizer_identity"]


@dataclass
class InputResult:
    """What one input gave: rows of the faces table, and a failure (one line) or None. A truncated
    video has both: the rows of the frames that could be read, and the failure."""

    item: Input
    rows: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    frames: int = 0  # images and sampled video frames classified
    worker: str = ""

    @property
    def faces(self) -> int:
        """Faces found (rows with a box)."""
        return sum(row["face"] is not None for row in self.rows)

    def to_json(self) -> str:
        return json.dumps({"item": self.item.to_dict(), "rows": self.rows, "failure": self.failure,
                           "frames": self.frames, "worker": self.worker})

    @classmethod
    def from_json(cls, text: str) -> InputResult:
        d = json.loads(text)
        return cls(Input(**d["item"]), d["rows"], d["failure"], d["frames"], d["worker"])


def recognizer_identity(rec: Any, model: Any) -> dict[str, str]:
    """The model name, its weights' sha256 and the detector, as written on every row."""
    meta = rec.meta
    name = meta.get("name") or (model if isinstance(model, str) else os.fspath(model))
    return {"model": str(name), "model_sha256": str(meta.get("source_sha256") or meta.get("sha256") or ""),
            "detector": str(rec.detector.name)}


class BatchWorker:
    """Loads a Recognizer from ``spec`` (``RecognizerOptions.to_dict()``, picklable) and processes inputs.

    Args:
        spec: the ``ferkit.infer.RecognizerOptions`` fields; ``model`` a name or path.
        every: classify every ``every``-th video frame; ``fps``: instead, about this many frames
            per second of video (every ``round(video fps / fps)``-th frame).
        stream: the other ``ferkit.infer.StreamOptions`` fields of the videos (default: ``ferkit video``'s).
        threads: OpenCV and classifier threads (torch's, or ONNX Runtime's) in this worker; None
            leaves them as they are.
        recognizer: an already loaded Recognizer built from ``spec`` (the in-process engine).
    """

    def __init__(self, spec: dict[str, Any], *, every: int = 1, fps: float | None = None,
                 stream: dict[str, Any] | None = None, threads: int | None = None, worker: str | None = None,
                 recognizer: Any = None):
        from ferkit.infer import Recognizer, RecognizerOptions, StreamOptions

        if threads is not None:
            import cv2

            cv2.setNumThreads(threads)
        # threads: ONNX Runtime's intra-op threads (the torch backend ignores it)
        self.rec = recognizer if recognizer is not None else Recognizer.from_options(
            RecognizerOptions(**spec), **({} if threads is None else {"threads": threads}))
        self.stream_options = StreamOptions(**(stream or {}))
        if threads is not None and self.rec.backend == "torch":
            import torch

            torch.set_num_threads(threads)
        self.classes = list(self.rec.classes)
        self.ident = recognizer_identity(self.rec, spec.get("model", "default"))
        self.landmarks = self.rec.landmarks is not None
        self.every, self.fps = int(every), fps
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"

    def stride(self, video_fps: float) -> int:
        return max(1, round(video_fps / self.fps)) if self.fps else self.every

    def process(self, items: Sequence[Input]) -> list[InputResult]:
        """Results for ``items``, in order; images are classified together (the Recognizer's
        batch), each video on its own."""
        images = [i for i in items if i.kind == "image"]
        by_path: dict[str, InputResult] = {}
        if images:
            errors: dict[str, str] = {}
            for r in self.rec.iter_predict([i.path for i in images],
                                           on_error=lambda p, e: errors.__setitem__(p, str(e))):
                by_path[r.path] = r
            for i in images:
                if i.path in errors or i.path not in by_path:
                    by_path[i.path] = InputResult(i, failure=failure_row(i, errors.get(i.path, f"{i.path}: not read")),
                                                  worker=self.worker)
                else:
                    rows = face_rows(i, by_path[i.path], self.classes, self.ident, landmarks=self.landmarks)
                    by_path[i.path] = InputResult(i, rows, frames=1, worker=self.worker)
        return [by_path[i.path] if i.kind == "image" else self.video(i) for i in items]

    def video(self, item: Input) -> InputResult:
        """Rows for the sampled frames of a video; a failure for one that cannot be opened, or,
        beside the rows read, for one that ends before its header says."""
        from ferkit.infer import open_source

        out = InputResult(item, worker=self.worker)
        try:
            with open_source(item.path) as src:
                for fr in self.rec.stream(src, self.stream_options, stride=self.stride(src.fps), frames=False,
                                          skipped=False):
                    out.rows += face_rows(item, fr, self.classes, self.ident, landmarks=self.landmarks)
                    out.frames += 1
                if src.truncated:
                    out.failure = failure_row(item, f"{item.path}: {src.truncated}", src.frames_read)
        except FerkitError as e:
            out.failure = failure_row(item, str(e), None)
        return out
