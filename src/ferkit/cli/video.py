"""`ferkit video SOURCE --out DIR`: emotions of every face in a video file, stream URL or camera.

Writes into DIR (created if needed), each file atomically:

- ``<name>_annotated.mp4``: every frame of the source with boxes, labels (track id, emotion,
  confidence) and probability bars; the same frame count as the source; H.264 (browsers play it)
  with the source's audio copied;
- ``<name>_faces.csv``: one row per face per processed frame, in ferkit's row columns (path, frame, time_s,
  ..., track_id, x, y, w, h, detection_score, emotion, confidence, prob_<class>...; docs/rows.md);
- ``<name>_faces.json``: ``{"source", "fps", "width", "height", "classes", "stride", "frames":
  [{"frame", "time_s", "faces": [...]}]}`` for the processed frames;
- ``<name>_emotions.png``: each track's emotion probabilities over time.

The same job in Python: ``ferkit.video(source, out)``. A progress bar with the processing FPS is shown on
stderr when it is a terminal; a summary line is
printed at the end, and a warning when fewer frames decode than the file's header announces (a
truncated file). Ctrl-C stops early and keeps what was processed.

Defaults for video: the ``blazeface`` detector (6 ms per 640x360 frame; ``--detector dlib-hog+blazeface``
for the photos' default) on every 4th frame with the faces followed by optical flow in between
(``--detect-every 4``: on the sample clip, 4 points more faces found than detecting every frame,
and one track id per person), ``--min-size 40`` and ``--smoothing 0.5`` (labels that do not flicker).
"""
from __future__ import annotations

import argparse
import sys
import time

from ferkit.cli.predict import add_common


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

    from ferkit.api import video
    from ferkit.infer import RecognizerOptions, StreamOptions, options_from_namespace

    stream = options_from_namespace(a, StreamOptions)
    options = options_from_namespace(a, RecognizerOptions)
    progress = Progress(TextColumn("video"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[fps]:.1f} FPS"), TimeRemainingColumn(), console=Console(stderr=True),
                        transient=True, disable=not sys.stderr.isatty())
    meter = FpsMeter()
    with progress:
        task = progress.add_task("video", total=None, fps=0.0)
        summary = video(a.source, a.out, options, stream, on_start=lambda n: progress.update(task, total=n),
                        on_frame=lambda fr: progress.update(task, advance=1, fps=meter.tick()))
    if summary.truncated:
        print(f"warning: {summary.truncated}; the outputs cover the frames that decoded", file=sys.stderr)
    print(summary, file=sys.stderr)
    return 130 if summary.interrupted else 0


def add_stream_options(pr: argparse.ArgumentParser) -> None:
    """The flags of ``ferkit.infer.StreamOptions`` (video and webcam)."""
    from ferkit.infer import StreamOptions, add_arguments

    add_arguments(pr, StreamOptions)


def add_parser(sub) -> None:
    pr = sub.add_parser("video", help="emotions of the faces in a video: annotated MP4, CSV, JSON and a plot",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("source", metavar="SOURCE", help="video file, stream URL or camera index")
    pr.add_argument("--out", metavar="DIR", help="output folder (default: ./<name>_emotions)")
    from ferkit.detect import VIDEO_DETECTOR

    # min_size 40: whole frames up to 960 px through BlazeFace, no tiles (see ferkit.detect)
    add_common(pr, detector=VIDEO_DETECTOR, min_size=40)
    add_stream_options(pr)
    pr.set_defaults(func=run)
