"""`ferkit video` and `ferkit webcam --headless` with default settings on the 640x360 sample clip,
in the same run as a plain OpenCV decode + Haar loop (the `fer` package's pipeline: decode, gray,
``detectMultiScale``, crop and resize each face to 48x48), so that the ratio between them is stable
on a machine whose speed varies.

Each ferkit command runs in-process through ``ferkit.cli.main`` (model loading excluded, as in the
FPS the commands print: the frames' processing, from the first frame to the last output written);
``--detector`` adds rows with another detector (``dlib-hog``: the previous default).

    python benchmarks/bench_video.py [--clip PATH] [--detector dlib-hog] [--repeat 2]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import _report  # the script's own folder is on sys.path

from ferkit.cli import main as ferkit_main

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples" / "short_hamilton_clip.mp4"


def haar_loop(clip: Path) -> tuple[float, int, int]:
    """FPS, frames and faces of decode + Haar + 48x48 gray crops, OpenCV alone."""
    import cv2

    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    cap = cv2.VideoCapture(str(clip))
    n = faces = 0
    t0 = time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        for x, y, w, h in cascade.detectMultiScale(gray, 1.1, 5, minSize=(30, 30)):
            cv2.resize(gray[y:y + h, x:x + w], (48, 48))
            faces += 1
        n += 1
    dt = time.perf_counter() - t0
    cap.release()
    return n / dt, n, faces


def ferkit_fps(argv: list[str]) -> tuple[float, str]:
    """The FPS a ferkit command prints on its summary line, and that line."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = ferkit_main(argv)
    line = err.getvalue().strip().splitlines()[-1]
    if code != 0:
        raise SystemExit(f"ferkit {' '.join(argv)} failed: {line}")
    return float(re.search(r"([\d.]+) FPS", line).group(1)), line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--detector", action="append", default=[], help="extra rows with this detector")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, best kept (default: %(default)s)")
    a = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"clip {a.clip.name}")
    best = max(haar_loop(a.clip) for _ in range(a.repeat))
    print(f"{'OpenCV decode + Haar + 48x48 crops (fer pipeline)':<58} {best[0]:6.1f} FPS  "
          f"({best[1]} frames, {best[2]} faces)")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("ferkit video (defaults)", ["video", str(a.clip), "--out", f"{tmp}/v"]),
                ("ferkit webcam --headless --source clip (defaults)",
                 ["webcam", "--headless", "--source", str(a.clip)])]
        for det in a.detector:
            runs.append((f"ferkit video --detector {det}",
                         ["video", str(a.clip), "--out", f"{tmp}/v", "--detector", det]))
        measured = {}
        for label, argv in runs:
            fps, line = max(ferkit_fps(argv) for _ in range(a.repeat))
            measured[label] = fps
            print(f"{label:<58} {fps:6.1f} FPS  ({fps / best[0]:.2f}x the Haar loop; {line.split(': ', 1)[1]})")
    video_fps, webcam_fps = measured[runs[0][0]], measured[runs[1][0]]
    _report.target(f"ferkit video with its defaults on the clip >= 36 FPS: {video_fps:.1f} (best of {a.repeat})",
                   video_fps >= 36)
    _report.target(f"the stretch, ferkit video >= 60 FPS: {video_fps:.1f}", video_fps >= 60)
    _report.target(f"ferkit webcam --headless on the clip >= 30 FPS: {webcam_fps:.1f}", webcam_fps >= 30)


if __name__ == "__main__":
    _report.run("video", main)
