"""Inputs of inference: paths expanded, and every image a contiguous RGB uint8 ``(H, W, 3)`` array
(files are decoded by ``ferkit.images``, the one decoder of ferkit)."""
from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.images import IMAGE_SUFFIXES, ImageReadError, load_image, pil_to_array

__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "expand_paths", "load_image", "to_rgb_array"]

def to_rgb_array(image: Any, *, what: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """A path, PIL image or numpy array as a contiguous RGB uint8 ``(H, W, 3)`` array (a path or a PIL
    image as ``ferkit.images`` decodes files: upright by its EXIF tag, 16-bit scaled).

    Arrays must already be RGB (convert OpenCV's BGR frames with ``cv2.cvtColor(f, cv2.COLOR_BGR2RGB)``);
    ``(H, W)`` grayscale is expanded to three channels and an alpha channel is dropped."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, max_pixels=max_pixels)
    if not isinstance(image, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            return pil_to_array(image.copy())  # the copy: EXIF rotation must not change the caller's image
        raise ImageReadError(f"{what}: expected a path, a PIL image or an RGB uint8 array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageReadError(f"{what}: expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ImageReadError(f"{what}: expected an (H, W, 3) RGB array, got shape {image.shape}")
    return np.ascontiguousarray(image)


def expand_paths(args: Iterable[str | os.PathLike[str]], *, recursive: bool = False,
                 suffixes: tuple[str, ...] = IMAGE_SUFFIXES, what: str = "image") -> tuple[list[str], list[str]]:
    """Folders -> their files with one of ``suffixes`` (sorted; sub-folders too with ``recursive``),
    globs -> their matches, other paths -> themselves; ``(paths, problems)``. Paths that do not
    exist are kept, so that reading them reports the error; duplicates are dropped. ``problems``
    are one-line messages about a folder or glob that gave nothing."""
    out: list[str] = []
    problems: list[str] = []
    for arg in map(os.fspath, args):
        p = Path(arg)
        if p.is_dir():
            files = sorted(str(f) for f in (p.rglob("*") if recursive else p.iterdir())
                           if f.is_file() and f.suffix.lower() in suffixes)
            if not files:
                problems.append(f"{arg}: folder has no {what} files" + ("" if recursive else " (try --recursive)"))
            out += files
        elif not p.exists() and glob.has_magic(arg):
            files = sorted(f for f in glob.glob(arg, recursive=True) if Path(f).is_file())
            if not files:
                problems.append(f"{arg}: no file matches")
            out += files
        else:
            out.append(arg)
    return list(dict.fromkeys(out)), problems
