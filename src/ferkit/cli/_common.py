"""Arguments shared by the subcommands that read a labelled dataset split (evaluate, compare, calibrate),
the rebuilt command line that reports record (benchmark, ensemble report), and one-line messages
printed above a progress bar (predict, batch)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any


def changed_flags(options: Iterable[tuple[str, Any, Any]]) -> list[str]:
    """``[flag, value, ...]`` for each ``(flag, value, default)`` whose value is not the default."""
    parts: list[str] = []
    for flag, value, default in options:
        if value != default:
            parts += [flag, str(value)]
    return parts


def add_dataset_args(p: argparse.ArgumentParser, *, split_help: str, data_required: bool = True,
                     data_help: str = "dataset path",
                     classes_help: str = "keep only these classes, e.g. angry,happy,sad",
                     tta_help: str = "test-time augmentation: none | flip | ten-crop (default: none)",
                     device_help: str = "auto | cpu | cuda | cuda:N (default: auto)") -> None:
    """--data --format --split --classes --tta --limit --batch-size --device --label-mode."""
    p.add_argument("--data", required=data_required, help=data_help)
    p.add_argument("--format", default="auto", help="fer2013-csv | fer2013-folder | ferplus | folder (default: auto)")
    p.add_argument("--split", default=None, help=split_help)
    p.add_argument("--classes", help=classes_help)
    p.add_argument("--tta", default="none", help=tta_help)
    p.add_argument("--limit", type=int, help="a stratified subset of N images (seed 0), for quick checks")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto", help=device_help)
    p.add_argument("--label-mode", default="majority", help="FER+ labels: majority | plurality | probability")


def say(progress: Any, message: str) -> None:
    """Print a one-line message on stderr, above the live progress bar when one is shown (so the bar
    is not broken), as plain text (no rich markup)."""
    if progress.live.is_started:
        progress.console.print(message, markup=False, highlight=False, style=None)
    else:
        print(message, file=sys.stderr)
