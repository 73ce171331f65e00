"""Reading images: every input becomes a contiguous RGB uint8 ``(H, W, 3)`` array, once, here."""
from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError

__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "decode_reduced", "draft_jpeg", "expand_paths", "load_image", "pil_to_rgb", "read_image",
           "to_rgb_array"]

#: file suffixes treated as images when a folder is expanded
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jfif")


class ImageReadError(FerkitError, ValueError):
    """A missing, unreadable, truncated or non-image file, or an array that is not an image."""


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as a contiguous RGB uint8 ``(H, W, 3)`` array, upright.

    The EXIF orientation tag is applied (phone photos come out the right way up); grayscale,
    palette, RGBA (alpha dropped), CMYK and 16-bit images are converted to 8-bit RGB; an animated
    image gives its first frame. Raises ImageReadError with one line naming the file for a missing
    file, a folder, a non-image file, or a truncated or corrupt image.
    """
    return read_image(path)[0]


def read_image(path: str | os.PathLike[str], *, reduce_to: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`load_image`, with a JPEG of more than ``reduce_to`` pixels decoded at 1/2, 1/4 or 1/8
    of its size (:func:`draft_jpeg`). Returns the array and the image's full upright size
    ``(width, height)`` (the array's own size unless it was reduced)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{path}: no such file")
    if p.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():  # Pillow's warning names its own file; its error (2x the size) stays
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                rgb, size = decode_reduced(im, reduce_to)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: image too large ({_why(e)})") from e
    except (OSError, SyntaxError, ValueError) as e:  # truncated data, corrupt headers, bad EXIF
        raise ImageReadError(f"{path}: truncated or corrupt image ({_why(e)})") from e
    return rgb, size


def decode_reduced(im: Any, reduce_to: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    """An opened PIL image decoded (:func:`draft_jpeg`, then :func:`pil_to_rgb`): the RGB array and
    the full upright ``(width, height)``, for mapping boxes found on a reduced JPEG back."""
    w, h = im.size
    draft_jpeg(im, reduce_to)
    im.load()
    drafted = im.size
    rgb = pil_to_rgb(im)
    upright = (rgb.shape[1], rgb.shape[0]) == drafted  # else EXIF turned it by 90 degrees
    return rgb, ((w, h) if upright else (h, w))


def draft_jpeg(im: Any, reduce_to: int | None) -> None:
    """Before ``im.load()``: have a JPEG of more than ``reduce_to`` pixels decoded at the smallest of
    1/2, 1/4, 1/8 of its size that keeps at least ``reduce_to`` pixels (libjpeg's DCT scaling: the
    full image is never in memory; a 49-megapixel photo takes 9 MB instead of 147). Other formats,
    and ``reduce_to=None``, are left as they are."""
    w, h = im.size
    if reduce_to and im.format in ("JPEG", "MPO") and w * h > reduce_to:
        k = (w * h / reduce_to) ** 0.5
        im.draft("RGB", (max(1, int(w / k)), max(1, int(h / k))))


def pil_to_rgb(im: Any) -> np.ndarray:
    """A loaded PIL image as a contiguous RGB uint8 array, upright: the one conversion every
    decoder of ferkit uses (files, uploads). EXIF orientation applied; 16- and 32-bit grey images
    (modes I;16*, I, F) scaled so that their brightest pixel is 255, not clipped; palette, RGBA
    (alpha dropped), CMYK converted."""
    from PIL import Image, ImageOps

    ImageOps.exif_transpose(im, in_place=True)  # no copy of a large photo when it is upright already
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, np.float64)
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
        im = Image.fromarray((a / max(1.0, float(a.max())) * 255).round().astype(np.uint8))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.array(im, dtype=np.uint8))


def to_rgb_array(image: Any, *, what: str = "image") -> np.ndarray:
    """A path, PIL image or numpy array as a contiguous RGB uint8 ``(H, W, 3)`` array.

    Arrays must already be RGB (convert OpenCV's BGR frames with ``cv2.cvtColor(f, cv2.COLOR_BGR2RGB)``);
    ``(H, W)`` grayscale is expanded to three channels and an alpha channel is dropped."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if not isinstance(image, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            return np.ascontiguousarray(np.array(image.convert("RGB"), dtype=np.uint8))
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
