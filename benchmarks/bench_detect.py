"""Face detectors on real photos: recall, false positives and milliseconds per photo, per detector.

Ground truth: the 9 PASCAL VOC photos in ``../shared/data/samples/voc_faces`` (43 faces, dlib imglab
XML ``<box top left width height>``). A detection matches a ground-truth face when their IoU is at
least ``--iou`` (greedy, best IoU first, each used once); recall is also shown at IoU 0.3 because
Haar's boxes are looser than the dlib-style ground truth. Also counts faces on the labelled sample
photos (two_people 2, multi_face 6, obama 1, dogs 0). The time is the best of ``--repeat`` runs per
photo (image already decoded), summed over the photos and divided by their number. Video: the
mean time per 640x360 frame over the first ``--frames`` frames of the Hamilton clip, and the faces
found there (1-4 people per frame, many small or turned), with video's ``--min-size 40``. Install:
what the detector needs beyond OpenCV and NumPy, in MB on disk.

    python benchmarks/bench_detect.py [--detectors haar dlib-hog dlib-cnn] [--repeat 3] [--threads N]
"""
from __future__ import annotations

import argparse
import platform
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import _report  # the script's own folder is on sys.path
import numpy as np
from bench_data import timed

from ferkit.detect import DEFAULT_DETECTOR, detect_faces, get_detector, iou, list_detectors
from ferkit.infer import load_image, open_source

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples"
EXPECTED = {"two_people.jpg": 2, "multi_face.jpg": 6, "obama.jpg": 1, "dogs.jpg": 0}
#: MB on disk of what each detector needs beyond OpenCV and NumPy (measured in this venv: dlib-bin's
#: module 11 MB, face-recognition-models 126 MB, ai-edge-litert 59 MB + 4 MB of its dependencies,
#: the two BlazeFace files shipped in ferkit 1.3 MB)
INSTALL_MB = {"haar": 0, "dlib-hog": 11, "dlib-cnn": 137, "blazeface": 64, "blazeface-short": 64,
              "dlib-hog+blazeface": 75}


def ground_truth(folder: Path) -> dict[Path, np.ndarray]:
    """photo -> (n, 4) [x, y, w, h] from training.xml + testing.xml (ignored boxes dropped)."""
    out: dict[Path, np.ndarray] = {}
    for xml in ("training.xml", "testing.xml"):
        for img in ET.parse(folder / xml).getroot().iter("image"):
            boxes = [
                [int(b.get(k)) for k in ("left", "top", "width", "height")]
                for b in img.iter("box")
                if b.get("ignore", "0") != "1"
            ]
            out[folder / img.get("file")] = np.asarray(boxes, np.int64).reshape(-1, 4)
    return out


def clip_frames(path: Path, n: int) -> list[np.ndarray]:
    """The first ``n`` frames of a video as RGB arrays."""
    out: list[np.ndarray] = []
    with open_source(path) as src:
        for _, _, rgb in src.frames():
            out.append(rgb)
            if len(out) == n:
                break
    return out


def match(pred: np.ndarray, gt: np.ndarray, thr: float) -> tuple[int, list[float]]:
    """Greedy one-to-one matching: (matches, their IoUs)."""
    if len(pred) == 0 or len(gt) == 0:
        return 0, []
    m = iou(pred, gt)
    used_p, used_g, ious = set(), set(), []
    for flat in np.argsort(-m, axis=None):
        i, j = divmod(int(flat), m.shape[1])
        if m[i, j] < thr:
            break
        if i not in used_p and j not in used_g:
            used_p.add(i), used_g.add(j), ious.append(float(m[i, j]))
    return len(ious), ious


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=Path, default=SAMPLES, help="samples folder (default: %(default)s)")
    ap.add_argument("--detectors", nargs="+", default=list_detectors(), help="default: all registered")
    ap.add_argument("--repeat", type=int, default=3, help="runs per photo, best kept (dlib-cnn always 1)")
    ap.add_argument("--iou", type=float, default=0.5, help="IoU for a match (default %(default)s)")
    ap.add_argument("--threads", type=int, help="cv2.setNumThreads (Haar is multi-threaded; dlib is not)")
    ap.add_argument("--frames", type=int, default=120, help="clip frames timed per detector (default: %(default)s)")
    a = ap.parse_args()
    import cv2

    if a.threads:
        cv2.setNumThreads(a.threads)
    gt = ground_truth(a.samples / "voc_faces")
    images = {p: load_image(p) for p in gt}
    frames = clip_frames(a.samples / "short_hamilton_clip.mp4", a.frames)
    n_gt = sum(len(b) for b in gt.values())
    print(f"{platform.processor() or platform.machine()}, {len(images)} VOC photos, {n_gt} faces, "
          f"cv2 threads {cv2.getNumThreads()}, IoU >= {a.iou}")
    print(f"{'detector':<18} {'recall':>8} {'@0.3':>6} {'false+':>6} {'mean IoU':>8} {'ms/photo':>9} {'ms/frame':>8} "
          f"{'clip faces':>10} {'MB':>4}  "
          + "  ".join(f"{k.split('.')[0]}({v})" for k, v in EXPECTED.items()))
    default = None
    for name in a.detectors:
        det = get_detector(name)
        detect_faces(next(iter(images.values())), det)  # load models outside the timing
        repeat = 1 if name == "dlib-cnn" else a.repeat
        total_t, hits, hits03, n_pred, ious = 0.0, 0, 0, 0, []
        for path, img in images.items():
            t, faces = timed(lambda img=img, det=det: detect_faces(img, det), repeat)
            total_t += t
            k, found = match(faces.boxes, gt[path], a.iou)
            hits += k
            ious += found
            hits03 += match(faces.boxes, gt[path], 0.3)[0]
            n_pred += len(faces)
        counts = [len(detect_faces(load_image(a.samples / f), det)) for f in EXPECTED]
        video = get_detector(name, min_size=40)
        t0 = time.perf_counter()
        clip_faces = sum(len(detect_faces(f, video)) for f in frames)
        ms_frame = 1000 * (time.perf_counter() - t0) / len(frames)
        if name == DEFAULT_DETECTOR:
            default = (hits / n_gt, hits03 / max(1, n_pred), n_pred - hits03)
        print(f"{name:<18} {hits:>4}/{n_gt:<3} {hits03:>6} {n_pred - hits03:>6} {np.mean(ious) if ious else 0:>8.2f} "
              f"{1000 * total_t / len(images):>9.1f} {ms_frame:>8.1f} {clip_faces:>10} {INSTALL_MB.get(name, '?'):>4}  "
              + "  ".join(f"{c:>{len(k.split('.')[0]) + 3}}" for c, k in zip(counts, EXPECTED)))
    if default is not None:
        recall, precision, false = default
        _report.target(f"{DEFAULT_DETECTOR} (ferkit predict's default) on the VOC faces: recall >= 0.95 at IoU {a.iou} "
                       f"and precision >= 0.95 (a box is a false hit when it matches no face at IoU 0.3): recall "
                       f"{recall:.2f}, precision {precision:.2f} ({false} false hits)",
                       recall >= 0.95 and precision >= 0.95)


if __name__ == "__main__":
    _report.run("detect", main)
