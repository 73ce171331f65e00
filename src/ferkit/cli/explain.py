"""`ferkit explain IMAGE...`: Grad-CAM heat maps over every detected face: where the model looks.

Writes ``<stem>_gradcam.jpg`` per image into ``--out`` (default ``explain/``), atomically, never over
an input file (``_gradcam-2``... then); prints each written path on stdout. The map explains each
face's predicted emotion, or ``--class EMOTION`` for every face. An image without a face is reported
on stderr and writes nothing. Exit code: 0 when every image was read (with or without faces), 2 when
an image could not be read (one line each, ``ferkit: error: ...``; the others are still written).
Needs the torch backend (gradients).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferkit._fileio import atomic_write_image
from ferkit.errors import FerkitError


def gradcam_path(src: str, out_dir: Path, taken: set[Path], inputs: set[Path]) -> Path:
    """``out_dir/<stem>_gradcam.jpg``, or ``_gradcam-2.jpg``... when that is an input or already written."""
    stem = Path(src).stem
    for k in range(1, 10_000):
        c = out_dir / (f"{stem}_gradcam.jpg" if k == 1 else f"{stem}_gradcam-{k}.jpg")
        r = c.resolve()
        if r not in taken and r not in inputs:
            taken.add(r)
            return c
    raise FerkitError(f"{out_dir}: cannot find a free file name for {stem}")  # pragma: no cover


def run(a: argparse.Namespace) -> int:
    from ferkit.explain import explain_image
    from ferkit.infer import Recognizer, load_image, parse_prior
    from ferkit.viz import draw_heatmaps

    if not 0.0 <= a.alpha <= 1.0:
        raise FerkitError(f"explain: --alpha must be in [0, 1], not {a.alpha}")
    # Grad-CAM needs the model's gradients: the torch backend
    rec = Recognizer(a.model, a.detector, backend="torch", prior=parse_prior(a.prior))
    if a.target is not None and a.target not in rec.classes:
        raise FerkitError(f"explain: unknown class {a.target!r} (the model's classes: {', '.join(rec.classes)})")
    out_dir = Path(a.out)
    inputs = {Path(p).resolve() for p in a.images}
    taken: set[Path] = set()
    failed = 0
    for path in a.images:
        try:
            rgb = load_image(path)
        except FerkitError as e:
            if len(a.images) == 1:
                raise
            print(f"ferkit: error: {e}", file=sys.stderr)
            failed += 1
            continue
        pairs = explain_image(rec, rgb, target=a.target)
        if not pairs:
            print(f"{path}: no face found", file=sys.stderr)
            continue
        suffix = f"(cam: {a.target})" if a.target else None
        img = draw_heatmaps(rgb, pairs, alpha=a.alpha, label_suffix=suffix)
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = gradcam_path(path, out_dir, taken, inputs)
        try:
            atomic_write_image(img, dest, jpeg_quality=92)
        except OSError as e:
            raise FerkitError(str(e)) from None
        print(dest, flush=True)
    return 2 if failed else 0


def add_parser(sub) -> None:
    from ferkit.detect import DEFAULT_DETECTOR, list_detectors
    from ferkit.infer import option_help

    pr = sub.add_parser(
        "explain", help="Grad-CAM heat maps over the faces of images (where the model looks)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    pr.add_argument("--model", default="default", help="shipped model name or saved model path (default: %(default)s)")
    pr.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list_detectors(),
                    help="face detector (default: %(default)s)")
    pr.add_argument("--out", default="explain", metavar="DIR",
                    help="folder for <stem>_gradcam.jpg (default: %(default)s/)")
    pr.add_argument("--class", dest="target", metavar="EMOTION",
                    help="explain this class for every face (default: each face's predicted emotion)")
    pr.add_argument("--prior", metavar="PRIOR", help=option_help("prior"))
    pr.add_argument("--alpha", type=float, default=0.45, help="heat map opacity in [0, 1] (default: %(default)s)")
    pr.set_defaults(func=run)
