"""`ferkit evaluate --model MODEL --data PATH --format FORMAT --split SPLIT [--classes C,...] [--tta T] [--out DIR]
[--json] [--detect [--detector NAME]] [--groups REGEX] [--n-boot N]`: metrics.json, report.md, figures and
predictions.csv for a model on a dataset split, with 95 % bootstrap intervals; ``--detect`` evaluates
uncropped photos through a face detector, as ``ferkit predict`` sees them."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ferkit.cli._common import add_dataset_args
from ferkit.detect import DEFAULT_DETECTOR
from ferkit.infer import option_help


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields a ``progress(done, total)`` callback (None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def summary_line(m: dict[str, Any]) -> str:
    from ferkit.evaluate.report import prior_words, with_ci

    auc = "n/a" if m["mean_auc"] is None else f"{m['mean_auc']:.4f}"
    ci = m.get("ci95") or {}
    how = ", ".join([f"{m['detector']} faces, {m['n_no_face']} without a face" if m.get("detector")
                     else f"TTA {m['tta']}", *prior_words(m)])
    return (f"{m['model']['name']} on {m['dataset']['path']} {m['dataset']['split']} ({m['n_images']} images, "
            f"{how}): accuracy {with_ci(m['accuracy'], ci.get('accuracy'))}, "
            f"macro-F1 {with_ci(m['macro_f1'], ci.get('macro_f1'))}, "
            f"weighted-F1 {m['weighted_f1']:.4f}, mean AUC {auc}, ECE {m['ece']:.4f}")


def run(a: argparse.Namespace) -> int:
    from ferkit.errors import ConfigError
    from ferkit.evaluate import evaluate
    from ferkit.infer import parse_prior

    if a.detector is not None and not a.detect:
        raise ConfigError(f"--detector {a.detector} needs --detect (it picks the detector of detect-then-classify)")
    detect = (a.detector or DEFAULT_DETECTOR) if a.detect else None
    with progress_bar("detecting and classifying" if detect else "evaluating", not a.no_progress) as progress:
        m = evaluate(a.model, a.data, a.format, a.split, a.classes, a.tta, a.batch_size, a.device,
                     out=a.out if a.out else True, limit=a.limit, label_mode=a.label_mode,
                     temperature=a.temperature, prior=parse_prior(a.prior), grid=a.grid, progress=progress,
                     detect=detect, groups=a.groups, n_boot=a.n_boot)
    if a.json:
        print(json.dumps(m, indent=2))
    else:
        print(summary_line(m))
        print(f"report: {m['output_dir']}/report.md")
    print(f"ferkit: wrote {m['output_dir']}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser(
        "evaluate", help="measure a model on a dataset split: metrics.json, report.md, figures",
        description="Evaluate a model on a dataset split and write a report folder (metrics.json, report.md, "
                    "confusion matrix, ROC curves, reliability diagram, prediction grid, predictions.csv).",
        epilog="example: ferkit evaluate --model default --data ../shared/data/fer2013 --format fer2013-folder "
               "--split PublicTest")
    e.add_argument("--model", default="default", help="shipped model name, run folder or model file (default: default)")
    add_dataset_args(e, split_help="Training, PublicTest, PrivateTest, FER2013Train, FER2013Valid, FER2013Test, "
                     "a split folder, or all (default: the format's test split; all for folder)",
                     classes_help="keep only these classes and restrict the argmax to them, e.g. angry,happy,sad")
    e.add_argument("--out", help="output folder, must not exist (default: eval/<model>-<dataset>-<split>-<time>)")
    e.add_argument("--json", action="store_true", help="print the metrics JSON to stdout (and nothing else)")
    e.add_argument("--temperature", type=float, help="override the model's stored temperature (1 = none)")
    e.add_argument("--prior", metavar="PRIOR", help=option_help("prior"))
    e.add_argument("--grid", type=int, default=32, help="faces in the prediction grid (default: 32)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    e.add_argument("--detect", action="store_true",
                   help="the images are uncropped photos, one labelled person each: detect faces, classify the "
                        "largest as `ferkit predict` does; an image without a face counts as wrong")
    e.add_argument("--detector", default=None,
                   help=f"face detector for --detect (default: {DEFAULT_DETECTOR}; see ferkit.detect)")
    e.add_argument("--groups", metavar="REGEX",
                   help="bootstrap whole groups of images, not single images: REGEX on each file name, its first "
                        r"group (or the whole match) is the group id, e.g. 'S(\d+)_' for CK+ subjects")
    e.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap resamples for the 95%% intervals (default: 1000; 0: no intervals)")
    e.set_defaults(func=run)
