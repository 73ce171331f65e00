"""ferkit's front door for Python users: ``ferkit.predict`` and its :class:`Results`.

What ``ferkit predict`` does, as one call: inputs (files, folders, globs) expanded, missing files
reported before any model loads, every face found and classified, unreadable inputs collected
instead of raised. The CLI is this function plus argument parsing and printing.

>>> import ferkit
>>> results = ferkit.predict(["photos/", "more/*.jpg"], model="default")
>>> results.to_json()       # the JSON of `ferkit predict --format json`
>>> results.to_csv()        # one row per face
>>> results.to_pandas()     # a DataFrame, one row per face (needs pandas: pip install 'ferkit[batch]')
>>> results.failures        # one line per input that could not be read
>>> ferkit.video("clip.mp4", "clip_out/")   # what `ferkit video` writes: annotated MP4, CSV, JSON, plot
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.errors import FerkitError
from ferkit.types import CsvRowWriter, ImageResult, csv_text, prob_column, row_columns

__all__ = ["Results", "VideoSummary", "expand_inputs", "predict", "video"]


class Results(list):
    """The :class:`~ferkit.types.ImageResult` of each image read, in input order, with the model's
    ``classes`` and the ``failures`` (one line per input that could not be read)."""

    def __init__(self, results: Iterable[ImageResult] = (), classes: Sequence[str] = (),
                 failures: Sequence[str] = ()):
        super().__init__(results)
        self.classes = list(classes)
        self.failures = list(failures)

    @property
    def n_faces(self) -> int:
        return sum(len(r.faces) for r in self)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_json(self) -> str:
        """A JSON list, one object per image: ``{"path", "faces": [{"box", "emotion", ...}], "width", "height"}``."""
        return json.dumps(self.to_dicts(), indent=2) + "\n"

    def rows(self) -> list[dict[str, Any]]:
        """One dict per face, in the columns of ``ferkit.types.row_columns`` (``docs/rows.md``)."""
        return [row for r in self for row in r.rows(self.classes, landmarks=self.landmarks)]

    @property
    def landmarks(self) -> bool:
        """Whether the faces carry landmarks (``--landmarks``): then the rows have a ``landmarks`` column."""
        return any(f.landmarks is not None for r in self for f in r.faces)

    def to_csv(self) -> str:
        """CSV, one row per face (``ferkit.types.row_columns``; probabilities with 6 decimals)."""
        return csv_text(self.rows(), row_columns(self.classes, self.landmarks))

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per face (the columns of :meth:`to_csv`)."""
        try:
            import pandas as pd
        except ImportError:
            raise FerkitError("Results.to_pandas needs pandas: pip install 'ferkit[batch]'") from None
        return pd.DataFrame(self.rows(), columns=row_columns(self.classes, self.landmarks))


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                  recursive: bool = False) -> tuple[list[str], list[str]]:
    """``(image paths, failures)``: folders and globs expanded (sub-folders too with ``recursive``),
    missing files and empty folders or globs as one-line failures. No model is loaded."""
    from ferkit.infer import expand_paths

    args = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths, failures = expand_paths(args, recursive=recursive)
    missing = {p for p in paths if not Path(p).exists()}
    failures += [f"{p}: no such file" for p in paths if p in missing]
    return [p for p in paths if p not in missing], failures


def predict(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    model: Any = None,
    options: Any = None,
    *,
    recursive: bool = False,
    recognizer: Any = None,
    on_result: Callable[[ImageResult], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    **option_changes: Any,
) -> Results:
    """Every face in ``inputs`` (image files, folders, globs) with its emotion.

    Args:
        model: shipped model name or saved model path (default: ``options.model``, ``"default"``), or a
            loaded ``(module, meta)`` pair.
        options: a ``ferkit.infer.RecognizerOptions`` (the flags of ``ferkit predict``); ``option_changes``:
            its fields by keyword (``detector="haar"``, ``min_score=0.5``, ``max_detect_megapixels=0.5``).
        recursive: look for images in sub-folders of the folders too.
        recognizer: an already loaded ``ferkit.infer.Recognizer`` to use (then options are not used).
        on_result, on_error: called with each result, and with each failure's one-line message, as
            they come (for progress bars and logs).

    Inputs are checked before the model loads: a missing file is a failure at once. Raises
    FerkitError (one line) when no input could be read; otherwise the failures are in
    ``Results.failures``.
    """
    paths, failures = expand_inputs(inputs, recursive=recursive)
    for msg in failures:
        if on_error:
            on_error(msg)
    if not paths:
        raise FerkitError(failures[0] if len(failures) == 1 else f"predict: nothing to read ({'; '.join(failures)})")
    if recognizer is None:
        from ferkit.infer import Recognizer, RecognizerOptions

        pair = model if isinstance(model, tuple) else None
        # threads: ONNX Runtime's, a Recognizer argument rather than an option of what the job does
        extra = {"threads": option_changes.pop("threads")} if "threads" in option_changes else {}
        changes = {**option_changes, **({"model": os.fspath(model)} if model is not None and pair is None else {})}
        try:
            options = (options or RecognizerOptions()).replace(**changes)
        except TypeError as e:
            raise FerkitError(f"predict: {e}") from None
        recognizer = Recognizer.from_options(options, **extra, **({"model": pair} if pair else {}))

    def failed(_item: Any, e: FerkitError) -> None:
        failures.append(str(e))
        if on_error:
            on_error(str(e))

    results = Results(classes=recognizer.classes)
    for r in recognizer.iter_predict(paths, on_error=failed):
        results.append(r)
        if on_result:
            on_result(r)
    results.failures = failures
    if not results:
        raise FerkitError(failures[0] if len(paths) == 1 and len(failures) == 1
                          else f"predict: none of the {len(paths)} inputs could be read")
    return results


@dataclass
class VideoSummary:
    """What :func:`video` wrote and counted."""

    source: str
    out: Path
    files: dict[str, Path]
    frames: int = 0
    processed: int = 0
    faces: int = 0
    tracks: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    truncated: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (f"{self.source}: {self.frames} frames ({self.processed} processed), {self.faces} faces in "
                f"{self.tracks} tracks, {self.seconds:.1f} s, {self.fps:.1f} FPS"
                f"{' (interrupted)' if self.interrupted else ''}; wrote {self.out}/")


def video_stem(name: str) -> str:
    """The file-name stem of a video source's outputs (``camera0`` for a camera)."""
    import re

    if name.startswith("camera "):
        return "camera" + name.split()[-1]
    stem = Path(name.split("?")[0].rstrip("/")).stem or "stream"
    return re.sub(r"[^\w.-]+", "_", stem)


class _TrackSeries:
    """Each track's times and class probabilities, compactly (a float64 and ``len(classes)`` float32 per
    face, not a dict), for the emotions-over-time plot of a video of any length."""

    #: faces drawn at most: beyond, every track keeps every k-th (a plot is a few thousand pixels wide)
    MAX_POINTS = 20_000

    def __init__(self, classes: list[str]) -> None:
        self.classes = classes
        self.tracks: dict[Any, tuple[Any, Any]] = {}

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        from array import array

        for r in rows:
            times, probs = self.tracks.setdefault(r["track_id"], (array("d"), array("f")))
            times.append(r["time_s"])
            probs.extend(r[prob_column(c)] for c in self.classes)

    def points(self) -> list[dict[str, Any]]:
        """The mappings ``plot_track_emotions`` draws: ``track_id``, ``time_s``, ``probabilities``."""
        total = sum(len(t) for t, _ in self.tracks.values())
        step = max(1, -(-total // self.MAX_POINTS))
        k = len(self.classes)
        return [{"track_id": tid, "time_s": times[i],
                 "probabilities": dict(zip(self.classes, probs[i * k:(i + 1) * k]))}
                for tid, (times, probs) in self.tracks.items() for i in range(0, len(times), step)]


def video(
    source: str | int | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    options: Any = None,
    stream: Any = None,
    *,
    on_frame: Callable[[Any], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
    recognizer: Any = None,
) -> VideoSummary:
    """Emotions of every face in a video file, stream URL or camera: what ``ferkit video`` writes, into ``out``
    (default ``./<name>_emotions``), each file atomically:

    - ``<name>_annotated.mp4``: every frame with boxes, labels and probability bars (H.264, the source's audio);
    - ``<name>_faces.csv``: one row per face per processed frame (``ferkit.types.row_columns``);
    - ``<name>_faces.json``: ``{"source", "fps", "width", "height", "classes", "stride", "smoothing", "detector",
      "detect_every", "frames": [FrameResult.to_dict(), ...]}`` for the processed frames;
    - ``<name>_emotions.png``: each track's emotion probabilities over time.

    ``options``: ``ferkit.infer.RecognizerOptions`` (default: the video defaults, BlazeFace, faces of 40 px
    and more); ``stream``: ``ferkit.infer.StreamOptions``; ``on_frame(frame_result)`` for progress;
    ``on_start(frames)`` once the source is open (its frame count, None for a live source);
    ``recognizer``: an already loaded one to use instead of ``options``. Ctrl-C (KeyboardInterrupt) stops
    early and keeps what was processed (``interrupted``)."""
    import time
    from contextlib import ExitStack

    from ferkit._fileio import atomic_path, remove_stale_temporaries
    from ferkit.detect import VIDEO_DETECTOR
    from ferkit.infer import Recognizer, RecognizerOptions, StreamOptions, VideoWriter, open_source
    from ferkit.viz import annotate, plot_track_emotions

    options = options or RecognizerOptions(detector=VIDEO_DETECTOR, min_size=40)
    stream = stream or StreamOptions()
    src = open_source(source)
    with src:
        rec = recognizer or Recognizer.from_options(options)
        stem = video_stem(str(src.name))
        folder = Path(out if out is not None else f"{stem}_emotions")
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)    # what a killed run of ferkit video was writing
        files = {k: folder / f"{stem}{s}" for k, s in
                 (("mp4", "_annotated.mp4"), ("csv", "_faces.csv"), ("json", "_faces.json"), ("plot", "_emotions.png"))}
        summary = VideoSummary(str(src.name), folder, files)
        if on_start:
            total = src.frame_count
            on_start(stream.max_frames if total is None else min(total, stream.max_frames or total))
        classes = list(rec.classes)
        landmarks = rec.landmarks is not None
        series = _TrackSeries(classes)
        # the CSV and JSON are written frame by frame (a long video's rows are never all in memory), each
        # into a temporary file renamed once the video ends (removed if it fails); the plot keeps each
        # face's time and probabilities and is drawn after both are in place
        with ExitStack() as files_open:
            csv_file, json_file = (files_open.enter_context(
                files_open.enter_context(atomic_path(files[k])).open("w", encoding="utf-8")) for k in ("csv", "json"))
            rows = CsvRowWriter(csv_file, row_columns(classes, landmarks))
            head = {"source": str(src.name), "fps": src.fps, "width": src.width, "height": src.height,
                    "classes": classes, "stride": stream.stride, "smoothing": stream.smoothing,
                    "detector": rec.detector.name, "detect_every": stream.detect_every}
            json_file.write(json.dumps(head)[:-1] + ', "frames": [')
            t0 = time.perf_counter()
            with VideoWriter(files["mp4"], src.fps, (src.width, src.height),
                             audio_from=None if src.live else src.name) as vw:
                try:
                    for fr in rec.stream(src, stream):
                        vw.write(annotate(fr.image, fr, landmarks=landmarks))
                        summary.frames += 1
                        if fr.processed:
                            face_rows = fr.rows(classes, landmarks=landmarks)
                            json_file.write((", " if summary.processed else "") + json.dumps(fr.to_dict()))
                            rows.write(face_rows)
                            series.add(face_rows)
                            summary.processed += 1
                            summary.faces += len(fr.faces)
                        if on_frame:
                            on_frame(fr)
                except KeyboardInterrupt:
                    summary.interrupted = True
            summary.seconds = time.perf_counter() - t0  # the frames' processing: the files below are not per frame
            json_file.write("]}\n")
            for f in (csv_file, json_file):
                f.flush()
                os.fsync(f.fileno())
        plot_track_emotions(series.points(), files["plot"], title=f"{src.name}: emotions per track")
    summary.tracks = len(series.tracks)
    stopped_early = summary.interrupted or (stream.max_frames is not None and summary.frames >= stream.max_frames)
    if src.truncated and not stopped_early:
        summary.truncated = f"{src.name}: {src.truncated} ({src.frame_count - src.frames_read} missing)"
    return summary
