"""`ferkit calibrate MODEL --data PATH [--format FORMAT] --split SPLIT [--out DIR]`: temperature scaling."""
from __future__ import annotations

import argparse
import json
import sys

from ferkit.cli._common import add_dataset_args


def run(a: argparse.Namespace) -> int:
    from ferkit.cli.evaluate import progress_bar
    from ferkit.evaluate import calibrate

    with progress_bar("calibrating", not a.no_progress) as progress:
        r = calibrate(a.model, a.data, a.format, a.split, a.classes, tta=a.tta, limit=a.limit,
                      batch_size=a.batch_size, device=a.device, label_mode=a.label_mode, out=a.out, progress=progress)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"temperature {r['temperature']:.4f} fitted on {r['n_images']} images of {r['split']}: "
              f"NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}, ECE {r['ece_before']:.4f} -> {r['ece_after']:.4f}")
        print(f"stored in {r['model_json']}")
    print(f"ferkit: wrote temperature to {r['model_json']}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser(
        "calibrate", help="fit a temperature on a validation split and store it in the model's JSON",
        description="Temperature scaling: fits one temperature minimising the NLL on the split and stores it as the "
                    "key 'temperature' in the model's JSON (rewritten atomically; the weights are not touched, and "
                    "the JSON's sha256 covers the weights only). Shipped models are calibrated into a copy (--out).",
        epilog="example: ferkit calibrate runs/x-20261125-101500 --data ../shared/data/fer2013 --split PublicTest")
    c.add_argument("model", help="run folder or model file (a shipped model name needs --out)")
    add_dataset_args(c, split_help="validation split (default: PublicTest, FER2013Valid; all for folder)",
                     classes_help="fit on these classes only, e.g. angry,happy,sad",
                     tta_help="none | flip | ten-crop (use the TTA you evaluate with)")
    c.add_argument("--out", help="write a calibrated copy (weights + JSON) into this new folder instead")
    c.add_argument("--json", action="store_true", help="print the result as JSON to stdout")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=run)
