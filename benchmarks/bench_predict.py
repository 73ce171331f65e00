"""Inference speed on this machine: classifier faces/s (batch 1 and 64), end-to-end FPS on 640x360
video, and (``--align-check N``) whether eye alignment helps the model on FER2013 test faces.

- Classifier: face crops from the sample photos through the model's own preprocessing and the
  model, ``Recognizer.classify``; best of ``--repeat`` runs.
- End to end: ``Recognizer.stream`` over the whole video (decode, detect, landmarks if any, crop,
  preprocess, classify, track), plus the annotated MP4 that ``ferkit video`` writes (draw + encode).
  Videos: ``short_hamilton_clip.mp4`` (640x360, 275 frames, 1-3 small faces) and a 640x360 clip made
  from obama.jpg (one face, panning; written to a temporary folder).
- Alignment check: FER2013 PrivateTest images (upscaled 4x for dlib's landmarks), classified with
  and without eye-level alignment; accuracy of each.

    python benchmarks/bench_predict.py [--model default] [--threads 1] [--repeat 3] [--align-check 1000]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import _report  # the script's own folder is on sys.path
import numpy as np
import torch
from bench_data import timed  # the script's own folder is on sys.path

from ferkit.detect import crop_face, landmarks
from ferkit.infer import Recognizer, VideoWriter, load_image, open_source
from ferkit.viz import annotate

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLES = DATA / "samples"


def pan_clip(path: Path, frames: int = 150, size: tuple[int, int] = (640, 360)) -> Path:
    """A 640x360 clip of obama.jpg's face panning left to right (one face, ~150 px)."""
    import cv2

    img = load_image(SAMPLES / "obama.jpg")
    scale = 640 / img.shape[1]
    img = cv2.resize(img, None, fx=scale * 1.4, fy=scale * 1.4, interpolation=cv2.INTER_AREA)
    w, h = size
    with VideoWriter(path, 30, size) as vw:
        for i in range(frames):
            x = int((img.shape[1] - w) * i / max(1, frames - 1))
            vw.write(np.ascontiguousarray(img[40 : 40 + h, x : x + w]))
    return path



def classifier_speed(rec: Recognizer, repeat: int) -> None:
    crops = []
    for name in ("two_people.jpg", "multi_face.jpg", "obama.jpg"):
        img = load_image(SAMPLES / name)
        faces, points = rec.detect(img)
        crops += rec.crop(img, faces, points)
    crops = (crops * (64 // len(crops) + 1))[:64]
    rec.classify(crops[:2])  # warm-up
    t1 = timed(lambda: [rec.classify(crops[i : i + 1]) for i in range(16)], repeat)[0] / 16
    t64 = timed(lambda: rec.classify(crops), repeat)[0] / 64
    t_pre = timed(lambda: [rec.transform(c) for c in crops], repeat)[0] / 64
    print(f"classifier: batch 1 {1 / t1:7.0f} faces/s ({1000 * t1:.2f} ms/face), batch 64 {1 / t64:7.0f} faces/s "
          f"({1000 * t64:.2f} ms/face; preprocessing {1000 * t_pre:.2f} ms/face of it)")


def video_fps(rec: Recognizer, video: Path, label: str, stride: int = 1, write: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        n, faces = 0, 0
        t0 = time.perf_counter()
        src = open_source(video)
        with src:
            vw = VideoWriter(Path(tmp) / "out.mp4", src.fps, (src.width, src.height)) if write else None
            for fr in rec.stream(src, stride=stride, detect_every=1, smoothing=0.0, frames=write):
                n += 1
                faces += len(fr.faces) if fr.processed else 0
                if vw is not None:
                    vw.write(annotate(fr.image, fr))
            if vw is not None:
                vw.close()
        dt = time.perf_counter() - t0
    what = "stream + annotate + MP4" if write else "stream"
    print(f"  {label:<52} stride {stride}  {what:<24} {n / dt:6.1f} FPS  ({n} frames, {faces} faces, {dt:.1f} s)")


def align_check(rec: Recognizer, n: int) -> None:
    import cv2

    files = sorted((DATA / "fer2013" / "test").glob("*/PrivateTest_*.jpg"))
    rng = np.random.default_rng(0)
    files = [files[i] for i in rng.choice(len(files), size=min(n, len(files)), replace=False)]
    from ferkit.data.labels import normalize_class_name
    from ferkit.detect import eye_angle

    labels = [rec.classes.index(normalize_class_name(f.parent.name)) for f in files]
    plain, aligned, angles = [], [], []
    for f in files:
        img = cv2.resize(load_image(f), (192, 192), interpolation=cv2.INTER_CUBIC)
        box = [0, 0, 192, 192]
        pts = landmarks(img, [box], 5)[0]
        plain.append(crop_face(img, box))
        aligned.append(crop_face(img, box, points=pts))
        angles.append(abs(eye_angle(pts)))
    y = np.asarray(labels)
    acc_p = float((rec.classify(plain).argmax(1) == y).mean())
    acc_a = float((rec.classify(aligned).argmax(1) == y).mean())
    print(f"alignment check on {len(files)} FER2013 PrivateTest faces "
          f"(median |eye angle| {np.median(angles):.1f} deg): "
          f"accuracy without {acc_p:.4f}, with alignment {acc_a:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--align-check", type=int, default=0, metavar="N", help="also run the alignment check on N faces")
    ap.add_argument("--quick", action="store_true", help="only the default settings on the videos")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rec = Recognizer(a.model)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"torch threads {torch.get_num_threads()}, model {rec.meta.get('name', a.model)} "
          f"({rec.meta['input']['size']}px, {rec.meta['input']['channels']} ch), detector {rec.detector.name}")
    classifier_speed(rec, a.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        pan = pan_clip(Path(tmp) / "obama_pan.mp4")
        print("end to end, 640x360:")
        runs = [("", {}, 1, False), ("", {}, 1, True)]
        if not a.quick:
            runs += [("", {}, 3, False), ("min_size=80 (no upsampling)", {"min_size": 80}, 1, False),
                     ("", {"detector": "haar"}, 1, False)]
        for video, name in ((pan, "obama pan (1 face)"), (SAMPLES / "short_hamilton_clip.mp4", "hamilton (1-3 faces)")):
            for extra, kw, stride, write in runs:
                r = Recognizer((rec.model, rec.meta), **kw) if kw else rec
                video_fps(r, video, f"{name}, {extra or r.detector.name}", stride, write)
    if a.align_check:
        align_check(rec, a.align_check)


if __name__ == "__main__":
    _report.run("predict", main)
