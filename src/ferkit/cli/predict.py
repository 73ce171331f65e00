"""`ferkit predict PATH...`: every face in images, folders and globs, with its emotion.

Output (stdout): a table (default), ``--format json`` (exactly a JSON list, one object per image
read: ``{"path", "faces": [{"box": [x, y, w, h], "emotion", "confidence", "probabilities"}]}``) or
``--format csv`` (one row per face); ``--output FILE`` writes it atomically to a file instead.
Messages, the progress bar and the summary go to stderr.

Unreadable inputs (missing, not an image, truncated) are reported on stderr, one line each, and
skipped. Exit code: 0 when at least one image was read (images without a face included), 1 with
``--strict`` if any input failed, 2 when no input could be read (one line, ``ferkit: error: ...``).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from ferkit._fileio import atomic_write_image, atomic_write_text
from ferkit.cli._common import say
from ferkit.errors import FerkitError

DEFAULT_SAMPLE = "../shared/data/samples/two_people.jpg"
_WRITABLE = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def to_table(results: list[Any], classes: list[str], *, file: Any, width: int | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(show_lines=False, header_style="bold", box=None, pad_edge=False)
    for col, kw in (("image", {"overflow": "fold", "min_width": 12}), ("#", {"justify": "right"}),
                    ("box x,y,w,h", {"no_wrap": True}), ("emotion", {"no_wrap": True}), ("conf", {"justify": "right"})):
        t.add_column(col, **kw)
    for c in classes:
        t.add_column(c[:3], justify="right", no_wrap=True)
    for r in results:
        if not r.faces:
            t.add_row(r.path, "-", "no face", "", "", *([""] * len(classes)))
        for i, f in enumerate(r.faces):
            t.add_row(r.path if i == 0 else "", str(i), ",".join(map(str, f.box)), f.emotion, f"{f.confidence:.2f}",
                      *(f"{f.probabilities.get(c, 0.0):.2f}" for c in classes))
    if width is None and not (hasattr(file, "isatty") and file.isatty()):
        width = 200  # piped or redirected: no terminal width to fit, so do not fold
    Console(file=file, width=width, highlight=False, soft_wrap=False).print(t)


def annotated_path(src: str, out_dir: Path, taken: set[Path], inputs: set[Path]) -> Path:
    """Where the annotated copy of ``src`` goes: ``out_dir/<name>``, or ``<stem>_annotated``,
    ``_annotated-2``... when that is an input file or was already written in this run."""
    s = Path(src)
    suffix = s.suffix.lower() if s.suffix.lower() in _WRITABLE else ".png"
    candidates = [out_dir / f"{s.stem}{suffix}", out_dir / f"{s.stem}_annotated{suffix}"]
    candidates += (out_dir / f"{s.stem}_annotated-{k}{suffix}" for k in range(2, 10_000))
    for c in candidates:
        r = c.resolve()
        if r not in taken and r not in inputs:
            taken.add(r)
            return c
    raise FerkitError(f"{out_dir}: cannot find a free file name for {s.name}")  # pragma: no cover


def write_annotated(path: str, result: Any, dest: Path, landmarks: bool, max_pixels: int | None = None) -> None:
    from ferkit.images import load_image
    from ferkit.viz import annotate

    try:
        atomic_write_image(annotate(load_image(path, max_pixels=max_pixels), result, landmarks=landmarks), dest)
    except OSError as e:
        raise FerkitError(str(e)) from None


def make_recognizer(a: argparse.Namespace) -> Any:
    """The Recognizer for the flags of :func:`add_common` (``ferkit.infer.RecognizerOptions``)."""
    from ferkit.infer import Recognizer, options_from_namespace

    return Recognizer.from_options(options_from_namespace(a))


def run(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    args = a.paths
    if not args:
        if not Path(DEFAULT_SAMPLE).is_file():
            raise FerkitError(f"predict: give image files, folders or globs (the sample {DEFAULT_SAMPLE} is not here)")
        args = [DEFAULT_SAMPLE]
    from ferkit.api import expand_inputs, predict

    # checked before the model loads (seconds): a missing file is reported at once
    paths, problems = expand_inputs(args, recursive=a.recursive)
    if not paths:
        raise FerkitError(problems[0] if len(problems) == 1 else f"predict: nothing to read ({'; '.join(problems)})")
    for msg in problems:
        print(msg, file=sys.stderr)
    rec = make_recognizer(a)

    single = len(paths) == 1 and not problems
    progress = Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True, disable=len(paths) < 2 or not sys.stderr.isatty())
    out_dir = Path(a.annotate) if a.annotate else None
    taken: set[Path] = set()
    inputs = {Path(p).resolve() for p in paths}
    annotate_failures: list[str] = []
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)

    def on_error(message: str) -> None:
        progress.advance(task)
        if not single:
            say(progress, message)

    def on_result(r: Any) -> None:
        progress.advance(task)
        if not r.faces:
            say(progress, f"{r.path}: no face found")
        if out_dir:
            try:
                write_annotated(r.path, r, annotated_path(r.path, out_dir, taken, inputs), a.landmarks is not None,
                                rec.max_pixels)
            except FerkitError as e:  # e.g. a JPEG read reduced for detection but too large to draw on
                annotate_failures.append(f"annotate: {e}")
                say(progress, f"annotate: {e}")

    with progress:
        task = progress.add_task("predict", total=len(paths))
        results = predict(paths, recognizer=rec, on_result=on_result, on_error=on_error)
    failures = problems + results.failures + annotate_failures

    if a.format == "json":
        text = results.to_json()
    elif a.format == "csv":
        text = results.to_csv()
    else:
        buf = io.StringIO()
        to_table(results, rec.classes, file=buf, width=160 if a.output else None)
        text = buf.getvalue()
    if a.output:
        atomic_write_text(a.output, text)
    elif a.format == "table":
        to_table(results, rec.classes, file=sys.stdout)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()

    n_faces = sum(len(r.faces) for r in results)
    summary = f"{len(results)} image{'s' * (len(results) != 1)}, {n_faces} face{'s' * (n_faces != 1)}"
    if failures:
        summary += f", {len(failures)} failed"
    if a.output:
        summary += f"; wrote {a.output}"
    if out_dir:
        summary += f"; annotated copies in {out_dir}"
    print(summary, file=sys.stderr)
    return 1 if a.strict and failures else 0


def add_common(pr: argparse.ArgumentParser, *, camera: bool = False, **defaults: Any) -> None:
    """The model and face flags of predict, video, webcam and batch: one per field of
    ``ferkit.infer.RecognizerOptions`` (``defaults``: the command's own, e.g. video's detector;
    ``camera``: ``--device`` is the camera, so the classifier's device is ``--torch-device``)."""
    from ferkit.infer import RecognizerOptions, add_arguments

    add_arguments(pr, RecognizerOptions, defaults=defaults, flags={"device": "--torch-device"} if camera else None)


def add_parser(sub) -> None:
    pr = sub.add_parser(
        "predict", help="emotions of the faces in images, folders and globs",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("paths", nargs="*", metavar="PATH",
                    help=f"image files, folders or globs (default: {DEFAULT_SAMPLE}, if it exists)")
    add_common(pr)
    pr.add_argument("--format", choices=("table", "json", "csv"), default="table",
                    help="output format (default: table)")
    pr.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE (atomically) instead of stdout")
    pr.add_argument("--annotate", metavar="DIR",
                    help="write annotated copies of the images into DIR (never over an input)")
    pr.add_argument("--recursive", "-r", action="store_true", help="look for images in sub-folders too")
    pr.add_argument("--strict", action="store_true", help="exit code 1 if any input could not be read")
    pr.set_defaults(func=run)
