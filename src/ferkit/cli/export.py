"""`ferkit export MODEL --format onnx`: an ONNX file for fast CPU inference with ONNX Runtime.

Writes ``<out>.onnx`` and ``<out>.json`` (the model's metadata, ``"backend": "onnx"`` and the
.onnx file's sha256) atomically, after checking that ONNX Runtime reproduces PyTorch on a real face
(largest probability difference below 1e-4). Prints the .onnx path on stdout; a summary on stderr.
An existing export is not replaced without ``--force``; a PyTorch model's files never are.

Use it with ``ferkit predict|video|webcam --model OUT.onnx`` (ONNX Runtime is the default for it). Inference
never exports: shipped models come with their ONNX files, any other model runs on ONNX Runtime once exported here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferkit.errors import FerkitError


def default_out(model: str) -> Path:
    """``./<stem>.onnx`` with the saved model's file stem (``fer2013_vgg_fer`` for ``default``), or its
    folder's name for ``<folder>/model``; never a shipped model's name, which the file would shadow."""
    from ferkit.models import model_paths, resolve_model_path

    weights, _ = model_paths(resolve_model_path(model))
    stem = weights.stem if weights.stem != "model" else weights.parent.resolve().name
    return Path(f"{stem}.onnx")


def run(a: argparse.Namespace) -> int:
    from ferkit.export import export_onnx, onnx_paths, read_onnx_meta

    if a.format != "onnx":  # pragma: no cover  (argparse choices)
        raise FerkitError(f"export: unknown format {a.format!r}")
    onnx_path, meta_path = onnx_paths(a.out if a.out else default_out(a.model))
    if not a.force:
        for p in (onnx_path, meta_path):
            if p.exists():
                raise FerkitError(f"{p}: already exists; use --force to replace it")
    path = export_onnx(a.model, onnx_path, opset=a.opset, dynamic_batch=not a.fixed_batch)
    _, meta = read_onnx_meta(path)
    print(path)
    print(f"exported {a.model} ({meta.get('arch', '?')}, {len(meta['classes'])} classes, input "
          f"{'x'.join(map(str, meta['input_shape']))}) to {path} + {meta_path.name}; ONNX Runtime vs PyTorch: "
          f"max probability difference {meta['check']['max_prob_diff']:.1e}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    pr = sub.add_parser("export", help="export a model to ONNX for fast CPU inference (--backend onnx)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("model", metavar="MODEL", help="shipped model name (e.g. default) or saved model path")
    pr.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default: %(default)s)")
    pr.add_argument("--out", "-o", metavar="PATH",
                    help="output .onnx file, stem or folder (default: ./<model file stem>.onnx); "
                         "the .json goes beside it")
    pr.add_argument("--force", action="store_true", help="replace an existing export")
    pr.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    pr.add_argument("--fixed-batch", action="store_true", help="batch dimension fixed to 1 (default: any batch size)")
    pr.set_defaults(func=run)
