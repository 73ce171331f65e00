"""Generated tables in hand-written docs: a block between ``<!-- ferkit-NAME:start -->`` and
``<!-- ferkit-NAME:end -->`` is copied from a command's output file (RESULTS.md, an ensemble
report) into README.md / MODEL_CARD.md, so that the figures there are copied, never typed.

The text around the markers is kept; each target must hold exactly one pair; files are replaced
atomically and only when their block changed.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ferkit.errors import FerkitError

__all__ = ["check_markers", "copy_block", "markers", "put_block", "wrap"]

PathLike = str | os.PathLike[str]


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the block called ``name`` (e.g. ``benchmark``)."""
    return f"<!-- ferkit-{name}:start -->", f"<!-- ferkit-{name}:end -->"


def wrap(block: str, name: str) -> str:
    """``block`` between the markers of ``name``, as written into an output file."""
    start, end = markers(name)
    return f"{start}\n{block.rstrip()}\n{end}\n"


def _marked(text: str, path: PathLike, name: str) -> re.Match[str]:
    start, end = markers(name)
    found = list(re.finditer(re.escape(start) + r"\n?(.*?)" + re.escape(end), text, re.DOTALL))
    if len(found) != 1:
        raise FerkitError(f"{path}: expected one {start} ... {end} pair, found {len(found)}")
    return found[0]


def check_markers(paths: Sequence[PathLike], name: str) -> None:
    """FerkitError (one line naming the file) unless each file exists and has one marker pair."""
    for p in paths:
        if not Path(p).is_file():
            raise FerkitError(f"{p}: no such file to copy the {name} table into")
        _marked(Path(p).read_text(encoding="utf-8"), p, name)


def copy_block(source: PathLike, targets: Sequence[PathLike], name: str) -> list[Path]:
    """Copy the ``name`` block of ``source`` into each target between its markers; returns the
    files that changed."""
    block = _marked(Path(source).read_text(encoding="utf-8"), source, name).group(1)
    return [Path(t) for t in targets if put_block(t, block, name)]


def put_block(target: PathLike, block: str, name: str) -> bool:
    """Replace the ``name`` block of ``target`` with ``block``; True when the file changed."""
    from ferkit._fileio import atomic_write_text

    start, end = markers(name)
    if start in block or end in block:
        raise FerkitError(f"{target}: the {name} block to write holds its own marker")
    text = Path(target).read_text(encoding="utf-8")
    m = _marked(text, target, name)
    new = text[: m.start()] + start + "\n" + block.rstrip("\n") + "\n" + end + text[m.end():]
    if new == text:
        return False
    atomic_write_text(target, new, keep_mode=True)
    return True
