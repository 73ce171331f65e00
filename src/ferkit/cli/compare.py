"""`ferkit compare MODEL [MODEL ...] [--data PATH --format FORMAT --split SPLIT] [--out DIR] [--json]`"""
from __future__ import annotations

import argparse
import json
import sys

from ferkit.cli._common import add_dataset_args


def run(a: argparse.Namespace) -> int:
    from ferkit.evaluate import compare, compare_markdown, write_compare_folder

    rows = compare(a.models, a.data, a.format, a.split, a.classes, tta=a.tta, limit=a.limit,
                   batch_size=a.batch_size, device=a.device, label_mode=a.label_mode, latency_runs=a.latency_runs,
                   threads=a.threads, progress=lambda name: print(f"ferkit: measuring {name}", file=sys.stderr))
    threads = a.threads
    context = {"data": a.data, "format": a.format, "split": a.split, "classes": a.classes, "tta": a.tta,
               "limit": a.limit, "cpu_threads": threads}
    out = write_compare_folder(rows, a.out, context=context, threads=threads)
    if a.json:
        print(json.dumps({"context": context, "models": rows, "output_dir": str(out)}, indent=2))
    else:
        print(compare_markdown(rows, threads=threads), end="")
    print(f"ferkit: wrote {out}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser(
        "compare", help="compare models: accuracy, macro-F1, AUC, parameters, FLOPs, CPU latency, epoch time",
        description="The papers' model comparison as a Markdown table (stdout, compare.md) and an accuracy-vs-latency "
                    "plot, written to --out.",
        epilog="example: ferkit compare default runs/resnet18-20261125-101500 --data ../shared/data/fer2013 "
               "--format fer2013-folder --split PublicTest")
    c.add_argument("models", nargs="+", help="shipped model names, run folders or model files")
    add_dataset_args(c, split_help="split name or all (default: the format's test split)", data_required=False,
                     data_help="dataset path for accuracy (without it, only size and speed are measured)",
                     device_help="device for the accuracy pass; speed is always measured on CPU")
    c.add_argument("--out", help="output folder, must not exist (default: eval/compare-<time>)")
    c.add_argument("--json", action="store_true", help="print the rows as JSON to stdout instead of the table")
    c.add_argument("--latency-runs", type=int, default=30, help="batch-1 forward passes timed per model (median)")
    c.add_argument("--threads", type=int, default=1,
                   help="CPU threads for the latency and throughput measurements (default: 1, reproducible)")
    c.set_defaults(func=run)
