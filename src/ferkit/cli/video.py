"""`ferkit video SOURCE --out DIR`: emotions of every face in a video file, stream URL or camera.

Writes into DIR (created if needed), each file atomically:

- ``<name>_annotated.mp4``: every frame of the source with boxes, labels (track id, emotion,
  confidence) and probability bars; the same frame count as the source; H.264 (browsers play it)
  with the source's audio copied;
- ``<name>_faces.csv``: one row per face per processed frame: frame, time_s, track_id, x, y, w, h,
  emotion, confidence, then one column per class probability;
- ``<name>_faces.json``: ``{"source", "fps", "width", "height", "classes", "stride", "frames":
  [{"frame", "time_s", "faces": [...]}]}`` for the processed frames;
- ``<name>_emotions.png``: each track's emotion probabilities over time.

A progress bar with the processing FPS is shown on stderr when it is a terminal; a summary line is
printed at the end, and a warning when fewer frames decode than the file's header announces (a
truncated file). Ctrl-C stops early and keeps what was processed.

Defaults for video: the ``blazeface`` detector (6 ms per 640x360 frame; ``--detector dlib-hog+blazeface``
for the photos' default) on every 4th frame with the faces followed by optical flow in between
(``--detect-every 4``: on the sample clip, 4 points more faces found than detecting every frame,
and one track id per person), ``--min-size 40`` and ``--smoothing 0.5`` (labels that do not flicker).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ferkit._fileio import atomic_path
from ferkit.cli.predict import add_common, make_recognizer
from ferkit.errors import FerkitError


@contextmanager
def atomic_text_file(path: Path) -> Iterator[IO[str]]:
    """A text file written to a temporary name and renamed onto ``path`` when the block succeeds."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
        yield f


def source_stem(name: str) -> str:
    if name.startswith("camera "):
        return "camera" + name.split()[-1]
    stem = Path(name.split("?")[0].rstrip("/")).stem or "stream"
    return re.sub(r"[^\w.-]+", "_", stem)


class FpsMeter:
    """Frames per second over the last ``window`` seconds."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: list[float] = []

    def tick(self) -> float:
        now = time.perf_counter()
        self.times.append(now)
        while len(self.times) > 2 and now - self.times[0] > self.window:
            self.times.pop(0)
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


def run(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ferkit.infer import VideoWriter, open_source
    from ferkit.viz import annotate, plot_track_emotions

    check_stream_options(a, "video")
    src = open_source(a.source)
    with src:
        rec = make_recognizer(a, a.device)
        stem = source_stem(str(src.name))
        out = Path(a.out if a.out else f"{stem}_emotions")
        out.mkdir(parents=True, exist_ok=True)
        mp4, csv_path, json_path, png = (out / f"{stem}{s}" for s in
                                         ("_annotated.mp4", "_faces.csv", "_faces.json", "_emotions.png"))
        classes = rec.classes
        rows: list[dict[str, Any]] = []
        total = src.frame_count if a.max_frames is None or src.frame_count is None else min(a.max_frames, src.frame_count)
        progress = Progress(TextColumn("video"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]:.1f} FPS"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                            disable=not sys.stderr.isatty())
        meter, n_frames, n_processed, n_faces, interrupted = FpsMeter(), 0, 0, 0, False
        t0 = time.perf_counter()
        audio = None if src.live else src.name
        with VideoWriter(mp4, src.fps, (src.width, src.height), audio_from=audio) as vw, atomic_text_file(csv_path) as fc, \
                atomic_text_file(json_path) as fj, progress:
            task = progress.add_task("video", total=total, fps=0.0)
            w = csv.writer(fc, lineterminator="\n")
            w.writerow(["frame", "time_s", "track_id", "x", "y", "w", "h", "emotion", "confidence", *classes])
            head = {"source": str(src.name), "fps": src.fps, "width": src.width, "height": src.height,
                    "classes": classes, "stride": a.stride, "smoothing": a.smoothing, "detector": rec.detector.name,
                    "detect_every": a.detect_every}
            fj.write(json.dumps(head)[:-1] + ', "frames": [\n')
            first = True
            try:
                for fr in rec.stream(src, stride=a.stride, smoothing=a.smoothing, detect_every=a.detect_every,
                                      max_frames=a.max_frames):
                    vw.write(annotate(fr.image, fr, landmarks=a.landmarks is not None))
                    n_frames += 1
                    if fr.processed:
                        n_processed += 1
                        n_faces += len(fr.faces)
                        for f in fr.faces:
                            w.writerow([fr.frame, f"{fr.time_s:.4f}", f.track_id, *f.box, f.emotion, f"{f.confidence:.6f}",
                                        *(f"{f.probabilities[c]:.6f}" for c in classes)])
                            rows.append({"track_id": f.track_id, "time_s": fr.time_s, "probabilities": f.probabilities})
                        fj.write(("" if first else ",\n") + json.dumps(fr.to_dict()))
                        first = False
                    progress.update(task, advance=1, fps=meter.tick())
            except KeyboardInterrupt:
                interrupted = True
            fj.write("\n]}\n")
        dt = time.perf_counter() - t0  # the frames' processing: the plot below is not per frame
        plot_track_emotions(rows, png, title=f"{src.name}: emotions per track")
    stopped_early = interrupted or (a.max_frames is not None and n_frames >= a.max_frames)
    if src.truncated and not stopped_early:
        print(f"warning: {src.name}: {src.truncated} ({src.frame_count - src.frames_read} missing); "
              "the outputs cover the frames that decoded", file=sys.stderr)
    n_tracks = len({r["track_id"] for r in rows})
    print(f"{src.name}: {n_frames} frames ({n_processed} processed), {n_faces} faces in {n_tracks} tracks, "
          f"{dt:.1f} s, {n_frames / dt if dt else 0:.1f} FPS{' (interrupted)' if interrupted else ''}; wrote {out}/",
          file=sys.stderr)
    return 130 if interrupted else 0


def check_stream_options(a: argparse.Namespace, command: str) -> None:
    """One-line errors naming the flag for the options of :func:`add_stream_options`."""
    if a.stride < 1:
        raise FerkitError(f"{command}: --stride must be >= 1, not {a.stride}")
    if not 0 <= a.smoothing < 1:
        raise FerkitError(f"{command}: --smoothing must be in [0, 1), not {a.smoothing}")
    if a.detect_every < 1:
        raise FerkitError(f"{command}: --detect-every must be >= 1, not {a.detect_every}")


def add_stream_options(pr: argparse.ArgumentParser) -> None:
    pr.add_argument("--stride", type=int, default=1, help="classify every N-th frame (frame skipping; default: %(default)s)")
    pr.add_argument("--smoothing", type=float, default=0.5,
                    help="EMA of each track's probabilities (labels that do not flicker frame to frame), 0 = off, "
                         "0.8 = about 5 frames of memory (default: %(default)s)")
    from ferkit.detect import VIDEO_DETECT_EVERY

    pr.add_argument("--detect-every", type=int, default=VIDEO_DETECT_EVERY, metavar="K",
                    help="run the face detector on every K-th processed frame and follow the faces in between by "
                         "optical flow (the detector also runs when a face is lost; a new face is found at most "
                         "K-1 frames late); 1 = detect on every frame (default: %(default)s, chosen on the sample clip: "
                         "benchmarks/README.md)")
    pr.add_argument("--max-frames", type=int, help="stop after this many frames")


def add_parser(sub) -> None:
    pr = sub.add_parser("video", help="emotions of the faces in a video: annotated MP4, CSV, JSON and a plot",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("source", metavar="SOURCE", help="video file, stream URL or camera index")
    pr.add_argument("--out", metavar="DIR", help="output folder (default: ./<name>_emotions)")
    from ferkit.detect import VIDEO_DETECTOR

    add_common(pr, detector=VIDEO_DETECTOR)
    add_stream_options(pr)
    pr.set_defaults(min_size=40)  # whole frames up to 960 px through BlazeFace, no tiles (see ferkit.detect)
    pr.add_argument("--device", default="cpu", help="torch device for the classifier (default: %(default)s)")
    pr.set_defaults(func=run)
