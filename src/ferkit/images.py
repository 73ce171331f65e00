"""The one image decoder of ferkit: files and uploaded bytes -> uint8 arrays, the same way everywhere.

``ferkit predict``, the Python API (``Recognizer``, ``load_image``), ``ferkit serve``, the data sets
(``FaceSet.load_image``) and the composite photos all decode through :func:`decode`, so one photo
gives the same pixels whichever way it comes in:

- the EXIF orientation is applied (phone photos come out upright);
- 16- and 32-bit grey images (modes ``I;16*``, ``I``, ``F``) are scaled so that their brightest pixel
  is 255, not clipped; palette, grey+alpha, RGBA (alpha dropped) and CMYK are converted;
- an animated image gives its first frame;
- a JPEG of more than ``reduce_to`` pixels is decoded at 1/2, 1/4 or 1/8 of its size by libjpeg's
  DCT scaling (:func:`draft_jpeg`; the full image is never in memory);
- the pixels to decode (after that reduction) are limited to ``max_pixels`` (default
  :data:`MAX_MEGAPIXELS`, the same in the CLI, ``--max-megapixels``, and the server); the limit is
  checked from the header, before any pixel is decoded. Pillow's own guard refuses headers over
  about 179 megapixels for every format;
- only the formats of :data:`READ_FORMATS` (the server: fewer) are read, and a file's format is told
  from its first 16 bytes before any Pillow plugin parses it: an 8 MB EPS (which Pillow would scan,
  then hand to Ghostscript) is refused in milliseconds;
- Pillow's warnings (a corrupt EXIF block ...) are logged as one line naming the file; where the
  image cannot be read, the error says why and the warnings are dropped.

Every failure is an :class:`ImageReadError` with one line naming the file (or upload) and what is
wrong, and a ``reason`` (``missing``, ``folder``, ``empty``, ``not_image``, ``format``,
``too_large``, ``corrupt``) that the server maps to its HTTP status.

>>> rgb = load_image("photo.jpg")                          # (H, W, 3) uint8, upright
>>> rgb, (w, h) = decode(data, reduce_to=2_000_000)        # bytes; w, h = the full upright size
"""
from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError, shorten

__all__ = ["IMAGE_SUFFIXES", "MAX_MEGAPIXELS", "READ_FORMATS", "ImageReadError", "decode", "draft_jpeg", "load_image",
           "pil_to_array", "refuse_format"]

log = logging.getLogger(__name__)

#: file suffixes treated as images when a folder is expanded
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jfif")
#: default limit of the pixels decoded from one image, in megapixels (CLI and server alike)
MAX_MEGAPIXELS = 50.0
#: the Pillow formats :func:`decode` reads by default (those of IMAGE_SUFFIXES) -> the name shown in messages;
#: anything else (EPS, PSD, ICO and Pillow's many rarely used formats) is refused from its first bytes
READ_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF", "GIF": "GIF",
                "PPM": "PPM"}

_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_GREY = ("L", "LA", "1", "La")


class ImageReadError(FerkitError, ValueError):
    """A missing, unreadable, truncated, too large or non-image file or upload, or an array that is
    not an image. ``reason`` says which (see the module doc); ``detail`` is the message without the
    name of the file."""

    def __init__(self, message: str, *, reason: str = "corrupt", detail: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.detail = detail or message


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _sniff(data: bytes) -> str:
    head = data[:16]
    text = head.decode("ascii", "replace")
    return repr(text) if text.isprintable() else head.hex(" ")


def _format_of(head: bytes) -> str | None:
    """The Pillow format whose magic number the first bytes ``head`` carry (Pillow's own ``_accept``
    tests, which read nothing else), or None."""
    from PIL import Image

    Image.init()
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is not None and accept(head):
                return fmt
        except Exception:  # noqa: BLE001, S112 - a test that cannot read so few bytes is no match
            continue
    return None


def _warned(what: str, caught: list[warnings.WarningMessage]) -> None:
    """Pillow's warnings while reading one image as one log line naming it (each is two lines on stderr)."""
    texts = dict.fromkeys(" ".join(str(w.message).split()) for w in caught)
    if texts:
        log.warning("%s: read despite a warning: %s", what, shorten("; ".join(texts), 200))


def draft_jpeg(im: Any, reduce_to: int | None) -> None:
    """Before ``im.load()``: have a JPEG of more than ``reduce_to`` pixels decoded at the smallest of
    1/2, 1/4, 1/8 of its size that keeps at least ``reduce_to`` pixels (a 49-megapixel photo takes
    9 MB instead of 147). Other formats, and ``reduce_to=None``, are left as they are."""
    w, h = im.size
    if reduce_to and im.format in ("JPEG", "MPO") and w * h > reduce_to:
        k = (w * h / reduce_to) ** 0.5
        im.draft("RGB", (max(1, int(w / k)), max(1, int(h / k))))


def pil_to_array(im: Any, *, keep_grey: bool = False) -> np.ndarray:
    """A loaded PIL image as a contiguous uint8 array, upright: ``(H, W, 3)`` RGB, or with
    ``keep_grey`` ``(H, W)`` for a grey image (data sets keep FER2013's grey faces grey). See the
    module doc for the conversions."""
    from PIL import Image, ImageOps

    ImageOps.exif_transpose(im, in_place=True)  # no copy of a large photo when it is upright already
    if im.mode in _HIGH_DEPTH:
        a = np.asarray(im, np.float64)
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
        im = Image.fromarray((a / max(1.0, float(a.max())) * 255).round().astype(np.uint8))
    if keep_grey and im.mode in _GREY:
        return np.ascontiguousarray(np.array(im.convert("L"), dtype=np.uint8))
    if keep_grey and im.mode == "P" and _grey_palette(im):
        return np.ascontiguousarray(np.array(im.convert("L"), dtype=np.uint8))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.array(im, dtype=np.uint8))


def _grey_palette(im: Any) -> bool:
    pal = np.frombuffer(im.palette.tobytes(), np.uint8) if im.palette else None
    if pal is None or im.palette.mode != "RGB" or len(pal) % 3:
        return False
    rgb = pal.reshape(-1, 3)
    return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())


def decode(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int | None = None,
    reduce_to: int | None = None,
    formats: Mapping[str, str] | None = None,
    keep_grey: bool = False,
    name: str | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an image file (a path) or its bytes: ``(array, (width, height))``, where the size is the
    image's full upright size (the array's own, unless a JPEG was reduced by ``reduce_to``).

    Args:
        max_pixels: most pixels to decode (after the JPEG reduction); None = :data:`MAX_MEGAPIXELS`.
        reduce_to: decode a larger JPEG at 1/2, 1/4 or 1/8 of its size, keeping at least this many pixels.
        formats: accepted Pillow format names -> the names shown in messages (the server accepts a
            few); None = :data:`READ_FORMATS`. Another format is refused from its first bytes.
        keep_grey: return ``(H, W)`` for grey images instead of ``(H, W, 3)``.
        name: what to call the source in messages (default: the path, or ``image`` for bytes).

    Raises ImageReadError, one line naming the source, with its ``reason``.
    """
    from PIL import Image, UnidentifiedImageError

    limit = int(MAX_MEGAPIXELS * 1e6) if max_pixels is None else int(max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        what = name or "image"
        if not data:
            raise ImageReadError(f"{what}: empty (no bytes)", reason="empty",
                                 detail="empty image: the upload has no bytes")
        fp: Any = io.BytesIO(data)
        unknown = f"not an image: Pillow cannot identify the {len(data)} bytes (starting {_sniff(data)})"
    else:
        p = Path(source)
        what = name or os.fspath(source)
        if not p.exists():
            raise ImageReadError(f"{what}: no such file", reason="missing")
        if p.is_dir():
            raise ImageReadError(f"{what}: is a folder, not an image", reason="folder")
        fp = p
        unknown = "not an image file (or a format Pillow cannot read)"

    def fail(reason: str, detail: str) -> ImageReadError:
        return ImageReadError(f"{what}: {detail}", reason=reason, detail=detail)

    allowed = READ_FORMATS if formats is None else formats
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded, then logged as one line (dropped when reading fails)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # names Pillow's file; its error stays
        try:
            # only the allowed plugins, each testing the first bytes (MPO comes from the JPEG plugin)
            im = Image.open(fp, formats=[f for f in allowed if f != "MPO"])
        except UnidentifiedImageError:
            found = _format_of(_head(fp) if isinstance(fp, Path) else data[:16])
            if found is not None and found not in allowed:
                raise fail("format", _not_accepted(found, allowed)) from None
            raise fail("not_image", unknown) from None
        except Image.DecompressionBombError as e:
            m = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "too many pixels"
            raise fail("too_large", f"image too large: its header says {size}; the limit is {limit / 1e6:g} "
                                    "megapixels (--max-megapixels)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise fail("corrupt", f"truncated or corrupt image header ({_why(e)})") from None
        with im:
            if im.format not in allowed:  # e.g. an MPO from the JPEG plugin
                raise fail("format", _not_accepted(im.format, allowed))
            w, h = im.size
            if w < 1 or h < 1:
                raise fail("corrupt", f"image has no pixels ({w}x{h})")
            try:
                draft_jpeg(im, reduce_to)
                dw, dh = im.size
                if dw * dh > limit:
                    raise fail("too_large", f"image too large: its header says {w}x{h} pixels "
                                            f"({w * h / 1e6:.1f} megapixels); the limit is {limit / 1e6:g} "
                                            "megapixels (--max-megapixels)")
                im.load()
                out = pil_to_array(im, keep_grey=keep_grey)
            except ImageReadError:
                raise
            except Image.DecompressionBombError as e:
                raise fail("too_large", f"image too large ({_why(e)})") from None
            except (OSError, SyntaxError, ValueError) as e:  # truncated data, broken streams, bad EXIF
                raise fail("corrupt", f"truncated or corrupt image ({im.format}: {_why(e)})") from None
    _warned(what, caught)
    upright = (out.shape[1], out.shape[0]) == (dw, dh)  # else EXIF turned it by 90 degrees
    return out, ((w, h) if upright else (h, w))


def refuse_format(data: bytes, formats: Mapping[str, str], name: str = "upload") -> None:
    """ImageReadError (reason ``format``) when the first bytes of ``data`` are a known image format not in
    ``formats``: the check :func:`decode` makes, without opening anything, for a caller that wants a refused
    format answered before the image waits its turn (the server, on its event loop)."""
    found = _format_of(data[:16])
    if found is not None and found not in formats and not (found == "MPO" and "JPEG" in formats):
        detail = _not_accepted(found, formats)
        raise ImageReadError(f"{name}: {detail}", reason="format", detail=detail)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(16)
    except OSError:
        return b""


def _not_accepted(found: str, allowed: Mapping[str, str]) -> str:
    return f"image format {found} is not accepted (accepted: {', '.join(sorted(set(allowed.values())))})"


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """An image file as a contiguous RGB uint8 ``(H, W, 3)`` array, upright (:func:`decode`)."""
    return decode(path, max_pixels=max_pixels)[0]
