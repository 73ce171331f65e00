"""Crop geometry: how each face detector frames a face, and which crop margin makes the crops it
gives the classifier look like the crops the classifier was trained on.

FER2013 PublicTest faces (a stratified subset) are enlarged and placed into real photos
(`ferkit.data.composite`); each detector then looks for them through `ferkit.infer.Recognizer`
(its ``detect``, ``crop`` and ``classify``: the code path of ``ferkit predict``). Per detector:

- found: photos where a detected box overlaps the pasted crop with IoU >= ``--iou``; that box is
  the one used (when several overlap, the best IoU);
- per margin: the mean IoU of the margin-grown box with the pasted crop (1 = FER2013's framing),
  the shipped model's accuracy on the detector crops, its accuracy on the original 48x48 crops of
  the same found faces, and the agreement (share of faces given the same class either way).

The chosen margin per detector is the one with the highest agreement (then the smallest accuracy
gap): there, a detector crop is classified as its FER2013 crop would be. dlib-cnn takes seconds per
photo on a CPU, so it sees only the first ``--cnn-limit`` photos (a stratified subset).

    python benchmarks/crop_geometry.py [--limit 800] [--cnn-limit 150] [--canvas 480]
        [--out benchmarks/crop_geometry.md]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from ferkit._fileio import atomic_write_text
from ferkit.data import stratified_subset
from ferkit.data.composite import SCALES, build_composites
from ferkit.detect import expand_boxes, iou
from ferkit.evaluate import load_eval_data
from ferkit.evaluate.benchmark import machine_info
from ferkit.infer import Recognizer, load_image
from ferkit.models import load_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MARGINS = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
DETECTORS = ("haar", "dlib-hog", "dlib-cnn", "blazeface")


def study(rec: Recognizer, photos: list, truth: np.ndarray, originals: np.ndarray, labels: np.ndarray,
          margins: tuple[float, ...], min_iou: float) -> dict:
    """Detect, match, crop at each margin and classify; returns the detector's row and its per-margin rows."""
    found, raw_iou, boxes, preds, seconds = [], [], [], [], 0.0
    for k, path in enumerate(photos):
        image = load_image(path)
        t0 = time.perf_counter()
        faces, _ = rec.detect(image)
        seconds += time.perf_counter() - t0
        overlap = iou(faces.boxes, truth[k : k + 1])[:, 0] if len(faces) else np.zeros(0)
        if not len(faces) or overlap.max() < min_iou:
            continue
        best = int(overlap.argmax())
        crops = []
        for m in margins:
            rec.margin = m                      # what Recognizer(margin=m) crops with
            crops += rec.crop(image, faces[best : best + 1])
        found.append(k)
        raw_iou.append(float(overlap[best]))
        boxes.append(faces.boxes[best])
        preds.append(rec.classify(crops).argmax(axis=1))   # (len(margins),)
    idx = np.asarray(found, np.int64)
    preds_arr = np.asarray(preds, np.int64).reshape(len(idx), len(margins))
    y, orig_pred = labels[idx], originals[idx]
    per_margin = []
    for j, m in enumerate(margins):
        pred = preds_arr[:, j]
        grown = expand_boxes(np.asarray(boxes).reshape(-1, 4), m)
        m_iou = np.diag(iou(grown, truth[idx])) if len(idx) else np.full(1, np.nan)
        per_margin.append({
            "margin": m, "iou": float(m_iou.mean()),
            "acc": float((pred == y).mean()) if len(idx) else float("nan"),
            "orig_acc": float((orig_pred == y).mean()) if len(idx) else float("nan"),
            "agree": float((pred == orig_pred).mean()) if len(idx) else float("nan"),
        })
    chosen = max(per_margin, key=lambda r: (r["agree"], -abs(r["acc"] - r["orig_acc"]), -abs(r["margin"])))
    return {"photos": len(photos), "found": len(idx), "raw_iou": float(np.mean(raw_iou)) if raw_iou else float("nan"),
            "s_per_photo": seconds / max(len(photos), 1), "margins": per_margin, "chosen": chosen}


def markdown(results: dict[str, dict], header: str, min_iou: float) -> str:
    """The study as markdown: one row per detector, then one row per margin."""
    lines = [header, "",
             (f"| detector | photos | found (IoU >= {min_iou}) | mean IoU of its box | s/photo | chosen margin | "
             "accuracy, original crops | accuracy, detector crops | agreement |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        c = r["chosen"]
        lines.append(f"| {name} | {r['photos']} | {r['found']} ({100 * r['found'] / max(r['photos'], 1):.1f}%) | "
                     f"{r['raw_iou']:.2f} | {r['s_per_photo']:.2f} | **{c['margin']:+.2f}** | "
                     f"{100 * c['orig_acc']:.1f}% | {100 * c['acc']:.1f}% | {100 * c['agree']:.1f}% |")
    lines += ["", ("Per margin (added on each side, as a fraction of the box): mean IoU of the grown box with the "
                   "pasted FER2013 crop / accuracy on the detector crops (its difference from the accuracy on the "
                   "original crops of the same faces) / agreement:"), "",
              "| margin | " + " | ".join(results) + " |",
              "|---:|" + "---:|" * len(results)]
    for i, m in enumerate(next(iter(results.values()))["margins"]):
        cells = []
        for r in results.values():
            x = r["margins"][i]
            mark = "**" if x["margin"] == r["chosen"]["margin"] else ""
            cells.append(f"{mark}{x['iou']:.2f} / {100 * x['acc']:.1f}% ({100 * (x['acc'] - x['orig_acc']):+.1f}) / "
                         f"{100 * x['agree']:.1f}%{mark}")
        lines.append(f"| {m['margin']:+.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA / "fer2013", help="FER2013 folder layout (default: %(default)s)")
    ap.add_argument("--samples", type=Path, default=DATA / "samples", help="background photos (default: %(default)s)")
    ap.add_argument("--model", default="default", help="classifier (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=800, help="PublicTest faces, stratified (default: %(default)s)")
    ap.add_argument("--cnn-limit", type=int, default=150, help="of those, photos dlib-cnn sees (default: %(default)s)")
    ap.add_argument("--canvas", type=int, default=480, help="longer side of each photo in px (default: %(default)s)")
    ap.add_argument("--iou", type=float, default=0.3,
                    help="IoU with the pasted crop for a found face (default: %(default)s)")
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default: %(default)s; steady on a busy machine)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("crop_geometry.md"),
                    help="markdown table (default: %(default)s)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    faces, _ = load_eval_data(a.data, "fer2013-folder", "PublicTest", limit=a.limit)
    net, meta = load_model(a.model)
    pair = (net, meta)
    originals = Recognizer(pair).classify([faces.load_image(i) for i in range(len(faces))]).argmax(axis=1)
    cnn_rows = stratified_subset(faces.labels, min(a.cnn_limit, len(faces)), seed=0)
    results: dict[str, dict] = {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ferkit-crop-geometry-") as tmp:
        made = build_composites(faces, Path(tmp) / "photos", canvas=a.canvas, samples_dir=a.samples)
        truth = np.asarray([c.box for c in made], np.int64)
        for name in a.detectors:
            rows = cnn_rows if name == "dlib-cnn" else np.arange(len(made))
            rec = Recognizer(pair, detector=name)
            results[name] = study(rec, [made[i].path for i in rows], truth[rows], originals[rows], faces.labels[rows],
                                  MARGINS, a.iou)
            r = results[name]
            print(f"{name}: found {r['found']}/{r['photos']}, chosen margin {r['chosen']['margin']:+.2f} "
                  f"({time.perf_counter() - t_start:.0f} s)", flush=True)
    info = machine_info()
    header = (f"Crop geometry, {date.today()}: {len(faces)} FER2013 PublicTest faces (stratified, seed 0; dlib-cnn: "
              f"{len(cnn_rows)} of them) at {', '.join(map(str, SCALES))} px in {a.canvas} px photos, model "
              f"`{a.model}`, no TTA; {info['machine']}.")
    text = markdown(results, header, a.iou)
    print(text)
    atomic_write_text(a.out, text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
