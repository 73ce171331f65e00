"""PyTorch vs. ONNX Runtime for the classifier: faces/s at batch 1 and 64, and end-to-end FPS.

- Export: ``export_onnx(model)`` into a temporary folder (time and the recorded parity check).
- Classifier: face crops from the sample photos (two_people, multi_face, obama), preprocessed once
  with the model's ``eval_transform``, then only the backend's forward pass (``Classifier(batch)``)
  is timed: batch 1 (one face per call) and batch 64; best of ``--repeat``. Both backends with 1
  and 2 intra-op threads. The preprocessing cost per face is printed separately (the same for both).
- End to end: ``Recognizer.stream`` over the first ``--frames`` frames of short_hamilton_clip.mp4
  (640x360; decode, detect, crop, preprocess, classify, track; no drawing), default detector, both
  backends and thread counts; the passes alternate between configurations (``--repeat`` rounds) and
  the best is kept. Detection alone on the same frames is timed too, to show the classifier's share.

    python benchmarks/bench_infer_backends.py [--model default] [--frames 120] [--repeat 3]

The load average before and after is printed: on a machine busy with other work (e.g. training)
absolute numbers drop, and only comparisons within one run are meaningful.
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

from ferkit.infer import Recognizer, load_image, open_source

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples"
THREADS = (1, 2)



def face_batch(rec: Recognizer, n: int = 64) -> tuple[list[np.ndarray], np.ndarray]:
    crops = []
    for name in ("two_people.jpg", "multi_face.jpg", "obama.jpg"):
        img = load_image(SAMPLES / name)
        faces, points = rec.detect(img)
        crops += rec.crop(img, faces, points)
    crops = (crops * (n // len(crops) + 1))[:n]
    return crops, np.stack([np.asarray(rec.transform(c)) for c in crops])


def classifier_speed(recs: dict[str, Recognizer], batch: np.ndarray, repeat: int) -> None:
    n1 = 32
    for label, rec in recs.items():
        clf = rec.classifier
        torch.set_num_threads(int(label.split("x")[-1]))
        clf(batch[:2])  # warm-up
        t1 = timed(lambda clf=clf: [clf(batch[i : i + 1]) for i in range(n1)], repeat)[0] / n1
        t64 = timed(lambda clf=clf: clf(batch), repeat)[0] / len(batch)
        print(f"  {label:<8} batch 1: {1 / t1:7.0f} faces/s ({1000 * t1:6.3f} ms/face)   "
              f"batch 64: {1 / t64:7.0f} faces/s ({1000 * t64:6.3f} ms/face)")


def stream_fps(rec: Recognizer, video: Path, frames: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = faces = 0
    for fr in rec.stream(video, detect_every=1, smoothing=0.0, max_frames=frames, frames=False):
        n += 1
        faces += len(fr.faces)
    return n / (time.perf_counter() - t0), faces


def detect_fps(rec: Recognizer, video: Path, frames: int) -> float:
    with open_source(video) as src:
        imgs = [rgb for i, _, rgb in src if i < frames]
    t0 = time.perf_counter()
    for img in imgs:
        rec.detect(img)
    return len(imgs) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--video", default=str(SAMPLES / "short_hamilton_clip.mp4"))
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    import onnxruntime

    from ferkit.export import export_onnx, read_onnx_meta

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}; load average {os.getloadavg()[0]:.2f} (1 min) at start")
    torch.set_num_threads(1)
    base = Recognizer(a.model, backend="torch")   # the PyTorch module, exported here to ONNX
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = export_onnx(a.model, Path(tmp) / "model")
        meta = read_onnx_meta(path)[1]
        print(f"export: {time.perf_counter() - t0:.2f} s, {path.stat().st_size / 1e6:.1f} MB, "
              f"max probability difference vs PyTorch on the check faces {meta['check']['max_prob_diff']:.1e}")
        recs: dict[str, Recognizer] = {}
        for n in THREADS:
            recs[f"torch x{n}"] = Recognizer((base.model, base.meta), base.detector)
            recs[f"onnx x{n}"] = Recognizer(path, base.detector, backend="onnx", threads=n)
        recs = {k: recs[k] for k in sorted(recs, key=lambda k: (k.split()[0] != "torch", k))}

        crops, batch = face_batch(base)
        diff = np.abs(recs["torch x1"].classify(crops) - recs["onnx x1"].classify(crops)).max()
        torch.set_num_threads(1)
        t_pre = timed(lambda: [base.transform(c) for c in crops], a.repeat)[0] / len(crops)
        print(f"\nclassifier (forward pass only; {len(batch)} sample-photo faces, max probability difference "
              f"{diff:.1e}; preprocessing adds {1000 * t_pre:.3f} ms/face for either backend):")
        classifier_speed(recs, batch, a.repeat)

        video = Path(a.video)
        torch.set_num_threads(1)
        det = detect_fps(base, video, a.frames)
        print(f"\nend to end, {video.name}, first {a.frames} frames, detector {base.detector.name} "
              f"(detection alone: {det:.1f} FPS, {1000 / det:.1f} ms/frame):")
        best: dict[str, tuple[float, int]] = {}
        for _ in range(a.repeat):
            for label, rec in recs.items():
                torch.set_num_threads(int(label.split("x")[-1]))
                fps, faces = stream_fps(rec, video, a.frames)
                if fps > best.get(label, (0.0, 0))[0]:
                    best[label] = (fps, faces)
        for label, (fps, faces) in best.items():
            print(f"  {label:<8} {fps:6.1f} FPS ({1000 / fps:5.1f} ms/frame, {faces} faces classified)")
    print(f"\nload average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    _report.run("infer-backends", main)
