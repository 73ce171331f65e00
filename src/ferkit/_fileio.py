"""Atomic outputs: every file ferkit writes goes to a temporary name beside its destination and is
renamed onto it only when complete, so a crash, ``kill -9`` or a full disk never leaves a
half-written file in place of a good one. Standard library only (cv2 imported on use)."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_image", "atomic_write_text", "remove_stale_temporaries"]


_TMP_NAME = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?P<suffix>\.[^.]*)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files `atomic_path` left in ``folder`` when its writer was killed
    (``kill -9`` mid-write): names ``.<stem>.<pid>.<8 hex>.tmp<suffix>`` whose process is gone.
    A live writer's file is left alone. Returns the files removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if m and entry.is_file(follow_symlinks=False) and not _alive(int(m["pid"])):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


@contextmanager
def atomic_path(final: str | os.PathLike[str], *, keep_mode: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (same suffix, so writers that pick the format from
    the extension work); rename it onto ``final`` if the block succeeds, delete it otherwise.

    The result gets the usual permissions (0666 minus the umask; some writers such as safetensors
    create 0600 files), or with ``keep_mode`` those of the file it replaces. Parent folders are created.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{final.suffix}")
    try:
        yield tmp
        if keep_mode and final.exists():
            shutil.copymode(final, tmp)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, keep_mode: bool = False) -> Path:
    """Write ``text`` (UTF-8) atomically, flushed to disk before the rename."""
    with atomic_path(path, keep_mode=keep_mode) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_image(rgb: Any, path: str | os.PathLike[str], *, jpeg_quality: int | None = None) -> Path:
    """Write an RGB uint8 (H, W, 3) array atomically; the format follows the extension.
    Raises OSError naming the file if OpenCV cannot encode it."""
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality is not None else []
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"{path}: cannot write the image")
    return Path(path)


@contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: for C++ libraries (Ray, LiteRT) that write their
    start-up chatter straight to it, past Python's ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
