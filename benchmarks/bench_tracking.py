"""Detect every k frames and follow the faces in between (``Recognizer.stream(detect_every=k)``):
recall, agreement and speed per k on the sample clip, to choose ``ferkit video``'s ``--detect-every``.

Reference: the photos' detector (``dlib-hog+blazeface``, ``--min-size 32``) run on every frame of
the clip, a stronger and slower detector than video's, independent of the runs compared. For each
k, the video settings (``blazeface``, ``--min-size 40``) with ``detect_every=k``: recall = reference
faces matched by a box of the run (IoU >= 0.5), agreement = the run's boxes that match a reference
face (the others are mostly real faces the reference misses or frames differently: turned heads,
the audience), track ids, and frames per second of ``stream`` (decode, detection or optical flow,
classification; no drawing or encoding: see bench_video.py for the whole command).

    python benchmarks/bench_tracking.py [--clip PATH] [--k 1 2 3 4 5 6 7 8] [--repeat 2]
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import _report  # the script's own folder is on sys.path
import numpy as np

from ferkit.detect import get_detector, iou
from ferkit.infer import Recognizer, open_source

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples" / "short_hamilton_clip.mp4"


def match(reference: list[np.ndarray], found: list[np.ndarray]) -> tuple[int, int]:
    """(reference faces matched, found boxes matching a reference face) at IoU >= 0.5, summed over frames."""
    hit = agree = 0
    for a, b in zip(reference, found):
        if len(a) and len(b):
            m = iou(a, b)
            hit += int((m.max(1) >= 0.5).sum())
            agree += int((m.max(0) >= 0.5).sum())
    return hit, agree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    ap.add_argument("--repeat", type=int, default=2, help="runs per k, the fastest kept (default: %(default)s)")
    a = ap.parse_args()

    ref_det = get_detector("dlib-hog+blazeface", min_size=32)
    with open_source(a.clip) as src:
        reference = [ref_det.detect(rgb).boxes for _, _, rgb in src]
    n_ref = sum(len(b) for b in reference)
    rec = Recognizer(detector="blazeface", min_size=40)
    print(f"{platform.processor() or platform.machine()}, {a.clip.name}: {len(reference)} frames, "
          f"{n_ref} reference faces (dlib-hog+blazeface, min size 32, every frame)")
    print(f"{'k':>3} {'recall':>8} {'agreement':>10} {'faces':>6} {'tracks':>7} {'FPS':>7}")
    base = None
    for k in a.k:
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            frames = list(rec.stream(a.clip, detect_every=k, frames=False))
            best = min(best, time.perf_counter() - t0)
        found = [np.array([f.box for f in fr.faces], np.int64).reshape(-1, 4) for fr in frames]
        n = sum(len(b) for b in found)
        hit, agree = match(reference, found)
        recall = hit / n_ref if n_ref else 0.0
        base = recall if base is None else base
        tracks = len({f.track_id for fr in frames for f in fr.faces})
        print(f"{k:>3} {recall:>8.4f} {agree / n if n else 0:>10.4f} {n:>6} {tracks:>7} {len(frames) / best:>7.1f}"
              f"{'' if k == a.k[0] else f'  recall {100 * (recall - base):+.1f} points'}")


if __name__ == "__main__":
    _report.run("tracking", main)
