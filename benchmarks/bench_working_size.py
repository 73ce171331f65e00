"""Detection at a working resolution: recall and time against the size of the copy the detector sees.

The 9 PASCAL VOC photos with 43 ground-truth faces (``bench_detect.py``) are enlarged ``--zoom``
times (default 4: about 2000x1500, 3 megapixels, faces 60-400 px: a phone photo's scale), then
each detector runs through ``Recognizer(detect_max_pixels=N)`` for several N: on a copy scaled down
to at most N pixels, boxes mapped back. Per N: recall at IoU >= 0.5 against the enlarged ground
truth, false hits, ms per photo, and the largest distance (px) between a box found on the copy and
the same face's box found at full resolution.

    python benchmarks/bench_working_size.py [--zoom 4] [--detectors dlib-hog blazeface]
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import _report  # the script's own folder is on sys.path
import cv2
import numpy as np
from bench_data import timed  # the script's own folder is on sys.path
from bench_detect import SAMPLES, ground_truth, match

from ferkit.detect import iou
from ferkit.infer import Recognizer, load_image

SIZES = (None, 8_000_000, 4_000_000, 2_000_000, 1_000_000, 500_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=Path, default=SAMPLES)
    ap.add_argument("--zoom", type=float, default=4.0)
    ap.add_argument("--detectors", nargs="+", default=["dlib-hog", "blazeface"])
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    gt = ground_truth(a.samples / "voc_faces")
    photos = {p: cv2.resize(load_image(p), None, fx=a.zoom, fy=a.zoom, interpolation=cv2.INTER_CUBIC) for p in gt}
    truth = {p: np.round(b * a.zoom).astype(np.int64) for p, b in gt.items()}
    n_gt = sum(len(b) for b in truth.values())
    mp = np.mean([im.shape[0] * im.shape[1] for im in photos.values()]) / 1e6
    print(f"{platform.processor() or platform.machine()}; {len(photos)} VOC photos x{a.zoom:g} "
          f"(mean {mp:.1f} MP), {n_gt} faces")
    print(f"{'detector':<10} {'working size':>12} {'recall':>7} {'false+':>6} {'ms/photo':>9} {'max box shift px':>16}")
    for name in a.detectors:
        full: dict[Path, np.ndarray] = {}
        for size in SIZES:
            rec = Recognizer("default", name, detect_max_pixels=size)
            hits = fp = 0
            total = 0.0
            shifts = [0.0]
            for p, img in photos.items():
                t, (faces, _) = timed(lambda img=img, rec=rec: rec.detect(img), a.repeat)
                total += t
                k, _ = match(faces.boxes, truth[p], 0.5)
                hits, fp = hits + k, fp + len(faces) - k
                if size is None:
                    full[p] = faces.boxes
                elif len(faces) and len(full[p]):
                    m = iou(faces.boxes, full[p])
                    for i, j in enumerate(m.argmax(1)):
                        if m[i, j] > 0.5:
                            shifts.append(float(np.abs(faces.xyxy[i] - _xyxy(full[p][j])).max()))
            label = "full" if size is None else f"{size / 1e6:g} MP"
            print(f"{name:<10} {label:>12} {hits:>3}/{n_gt:<3} {fp:>6} {1000 * total / len(photos):>9.1f} "
                  f"{max(shifts):>16.0f}")


def _xyxy(box: np.ndarray) -> np.ndarray:
    return np.concatenate([box[:2], box[:2] + box[2:]])


if __name__ == "__main__":
    _report.run("working-size", main)
