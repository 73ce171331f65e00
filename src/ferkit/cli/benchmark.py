"""`ferkit benchmark [--models M ...] [--data DIR ...] [--limit N] [--out RESULTS.md] [--update-docs [FILE ...]]`:
every shipped model and ensemble on the standard data sets (and any extra folders) as one table."""
from __future__ import annotations

import argparse
import shlex
import sys

from ferkit.cli._common import changed_flags
from ferkit.detect import DEFAULT_DETECTOR
from ferkit.evaluate.benchmark import (  # light: imports no torch
    DATA_ROOT,
    UNCROPPED_FACES,
)

#: files --update-docs copies the table into when none are named
DOC_FILES = ("README.md", "MODEL_CARD.md")


def command_line(a: argparse.Namespace) -> str:
    """The command as it was given, rebuilt from the parsed options (defaults left out)."""
    parts = ["ferkit", "benchmark"]
    if a.models:
        parts += ["--models", *a.models]
    for path in a.data or []:
        parts += ["--data", path]
    parts += changed_flags((("--data-root", a.data_root, DATA_ROOT), ("--detector", a.detector, DEFAULT_DETECTOR),
                            ("--uncropped", a.uncropped, UNCROPPED_FACES), ("--limit", a.limit, None),
                            ("--tta", a.tta, "none"), ("--batch-size", a.batch_size, 128),
                            ("--threads", a.threads, 1), ("--out", a.out, "RESULTS.md")))
    if a.update_docs is not None:
        parts += ["--update-docs", *a.update_docs]
    return shlex.join(parts)


def run(a: argparse.Namespace) -> int:
    from ferkit.evaluate.benchmark import (
        check_markers,
        copy_block,
        machine_info,
        run_benchmark,
        write_results,
    )

    docs = None if a.update_docs is None else (a.update_docs or list(DOC_FILES))
    if docs:
        check_markers(docs)                 # before minutes of work, not after
    import torch

    threads = torch.get_num_threads()
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        info = machine_info()               # the load average before the run adds to it
        rows = run_benchmark(a.models or None, data_root=a.data_root, extra=a.data or (),
                             detectors=[d for d in a.detector.split(",") if d], uncropped_faces=a.uncropped,
                             limit=a.limit, tta=a.tta, batch_size=a.batch_size,
                             log=lambda line: print(f"ferkit: {line}", file=sys.stderr, flush=True))
    finally:
        torch.set_num_threads(threads)
    out = write_results(rows, a.out, tta=a.tta, command=command_line(a), info=info)
    print(out.read_text(encoding="utf-8"), end="")
    print(f"ferkit: wrote {out}", file=sys.stderr)
    if docs:
        changed = copy_block(out, docs)
        print(f"ferkit: copied the table into {', '.join(docs)} ({len(changed)} changed)", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    b = sub.add_parser(
        "benchmark",
        help="every shipped model on every data set: RESULTS.md (accuracy with 95%% CI, macro-F1, faces/s)",
        description="Evaluate every shipped model and ensemble (or --models) on FER2013 PublicTest and PrivateTest, "
                    "the FER+ Valid and test splits (majority labels, 8 classes and mapped onto 7), PublicTest subsets "
                    "with FER2013's labels and with FER+'s placed into real photos (detect-then-classify, next to "
                    "the same faces' original crops) and any "
                    "--data folders (as crops and through the detector); write RESULTS.md with the machine, the date "
                    "and this command.",
        epilog="example: ferkit benchmark --update-docs   (about 4 to 5 minutes per shipped model on a 2-core CPU)")
    b.add_argument("--models", nargs="+", help="model names or paths (default: every shipped model, once per file)")
    b.add_argument("--data", action="append", metavar="DIR",
                   help="an extra class-per-folder data set, evaluated as crops and through the detector (repeatable)")
    b.add_argument("--data-root", default=DATA_ROOT,
                   help=f"folder holding fer2013/, ferplus/, samples/ (default: {DATA_ROOT})")
    b.add_argument("--detector", default=DEFAULT_DETECTOR,
                   help=f"face detector(s) for photos, comma-separated (default: {DEFAULT_DETECTOR})")
    b.add_argument("--uncropped", type=int, default=UNCROPPED_FACES,
                   help=f"faces placed into photos for the detection rows, per label set (FER2013's, FER+'s); 0 = none "
                        f"(default: {UNCROPPED_FACES})")
    b.add_argument("--limit", type=int, help="a stratified subset of N images per data set (quick runs)")
    b.add_argument("--tta", default="none",
                   help="test-time augmentation: none | flip | ten-crop (default: none, as predict)")
    b.add_argument("--batch-size", type=int, default=128)
    b.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default: 1: steady figures, also on a busy machine; 0 = torch's default)")
    b.add_argument("--out", default="RESULTS.md", help="results file, replaced atomically (default: RESULTS.md)")
    b.add_argument("--update-docs", nargs="*", metavar="FILE",
                   help="copy the table between the ferkit-benchmark markers of these files "
                        f"(default when given alone: {' '.join(DOC_FILES)})")
    b.set_defaults(func=run)

