"""`ferkit batch INPUT... --out DIR`: the main job over an archive of photos and videos, resumable.

Inputs: image and video files, folders (searched recursively), globs, or lists of paths (.txt one
per line, .csv or .parquet with a `path` column). Videos are sampled every N frames (--every) or
at about F frames per second (--fps).

DIR receives a table of faces in shards (Parquet, or JSON lines with --format jsonl), a table of
the inputs that failed (with a one-line reason each), and manifest.json; every file is written
atomically (schema: docs/batch_schema.md). Every input is accounted for: an image or sampled
frame without a face gets one row with no box. Running the same command again skips the inputs
already in DIR (same path, size and modification time); a run killed at any point loses at most
the shard in flight and never duplicates a row.

Engines: local (default: a process pool over every core, forked from this process once the model
is loaded), or ray (Ray Data actors, each loading the model; a local Ray, or the cluster at
--address; --gpus N for GPU actors).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ferkit.cli._common import say
from ferkit.cli.predict import add_common


def run(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ferkit.batch import run_batch
    from ferkit.infer import RecognizerOptions, StreamOptions, options_from_namespace

    console = Console(stderr=True)
    progress = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        TextColumn("{task.fields[faces]} faces, {task.fields[failed]} failed"),
                        console=console, transient=True, disable=not sys.stderr.isatty())
    task = progress.add_task("batch", total=None, faces=0, failed=0)
    counts = {"faces": 0, "failed": 0}

    def on_start(total: int, skipped: int) -> None:
        progress.update(task, total=total, completed=skipped)
        if skipped:
            print(f"resuming: {skipped} of {total} inputs already in {a.out}", file=sys.stderr)

    def on_result(r: Any) -> None:
        counts["faces"] += r.faces
        counts["failed"] += r.failure is not None
        if r.failure:
            say(progress, r.failure["reason"])
        progress.update(task, advance=1, **counts)

    with progress:
        summary = run_batch(
            a.inputs, a.out, options_from_namespace(a, RecognizerOptions).check(),
            stream=options_from_namespace(a, StreamOptions), engine=a.engine, workers=a.workers, address=a.address,
            gpus=a.gpus, every=1 if a.every is None else a.every, fps=a.fps, format=a.format,
            shard_size=a.shard_size, on_start=on_start, on_result=on_result,
        )
    for msg in summary.problems:
        print(msg, file=sys.stderr)
    print(summary, file=sys.stderr)
    return 1 if a.strict and summary.failures else 0


def add_parser(sub) -> None:
    pr = sub.add_parser("batch", help="emotions over an archive of photos and videos into a resumable Parquet table",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="image/video files, folders, globs, or .txt/.csv/.parquet lists")
    pr.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (resumed when it holds this run)")
    add_common(pr)
    from ferkit.infer import StreamOptions, add_arguments

    add_arguments(pr, StreamOptions, exclude=("stride", "max_frames"))  # the stride: --every / --fps
    pr.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="local process pool or Ray Data (default: %(default)s)")
    pr.add_argument("--workers", type=int, help="worker processes / Ray actors (default: every CPU core)")
    pr.add_argument("--address", help="Ray cluster address, e.g. 10.0.0.1:6379 (--engine ray; default: a local Ray)")
    pr.add_argument("--gpus", type=int, default=0, help="Ray: this many GPU actors instead of CPU ones")
    when = pr.add_mutually_exclusive_group()
    when.add_argument("--every", type=int, metavar="N",
                      help="classify every N-th video frame (default: 1, every frame)")
    when.add_argument("--fps", type=float, metavar="F", help="classify about F video frames per second")
    pr.add_argument("--format", choices=("parquet", "jsonl"), default="parquet",
                    help="table format (default: %(default)s)")
    pr.add_argument("--shard-size", type=int, default=256, metavar="N",
                    help="inputs per shard: what a crash can lose at most (default: %(default)s)")
    pr.add_argument("--strict", action="store_true", help="exit code 1 if any input failed")
    pr.set_defaults(func=run)
