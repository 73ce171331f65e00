"""Uploaded bytes -> a contiguous RGB uint8 ``(H, W, 3)`` array, refusing what should not be decoded.

The pixel count is checked from the header alone (``PIL.Image.open`` reads no pixel data), so a
small file that claims 50,000 x 50,000 pixels is refused before any memory is spent on it.
"""
from __future__ import annotations

import io
import re

import numpy as np

from ferkit.serve.errors import InputError

__all__ = ["FORMATS", "decode_image", "sniff"]

#: Pillow formats accepted from clients -> the name shown; anything else (EPS, which Pillow hands to
#: Ghostscript, PSD, ICO, the many rarely used formats) is refused with 415 before decoding
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF", "GIF": "GIF"}


def _why(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _limit(max_pixels: int) -> str:
    return f"the limit is {max_pixels / 1e6:g} megapixels (ferkit serve --max-megapixels)"


def _bomb_message(e: BaseException, max_pixels: int) -> str:
    m = re.search(r"\((\d+) pixels\)", str(e))
    size = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "too many pixels"
    return f"image too large: its header says {size}; {_limit(max_pixels)}"


def sniff(data: bytes) -> str:
    """A short printable preview of the first bytes, for error messages."""
    head = data[:16]
    text = head.decode("ascii", "replace")
    return repr(text) if text.isprintable() else head.hex(" ")


def decode_image(data: bytes, *, max_pixels: int, reduce_to: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an uploaded image (JPEG, PNG, WebP, BMP, TIFF, GIF's first frame; EXIF orientation
    applied; high bit depths scaled, as ``ferkit predict`` reads files: ``ferkit.infer._io.pil_to_rgb``).

    ``reduce_to``: a JPEG of more pixels than this is decoded at 1/2, 1/4 or 1/8 of its size
    (``ferkit.infer._io.draft_jpeg``). Returns the RGB array and the image's full upright
    ``(width, height)``.
    Raises InputError: 400 empty, 413 too many pixels, 415 another format, 422 not an image /
    truncated / corrupt."""
    from PIL import Image, UnidentifiedImageError

    from ferkit.infer._io import decode_reduced

    if not data:
        raise InputError(400, "empty image: the upload has no bytes")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(422, f"not an image: Pillow cannot identify the {len(data)} bytes (starting {sniff(data)})") from None
    except Image.DecompressionBombError as e:  # Pillow's own guard (over ~179 megapixels) fired first
        raise InputError(413, _bomb_message(e, max_pixels)) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(422, f"corrupt image header: {_why(e)}") from None
    with im:
        if im.format not in FORMATS:
            raise InputError(415, f"image format {im.format} is not accepted (accepted: {', '.join(sorted(set(FORMATS.values())))})")
        w, h = im.size
        if w * h > max_pixels:
            raise InputError(413, f"image too large: its header says {w}x{h} pixels ({w * h / 1e6:.1f} megapixels); "
                                  f"{_limit(max_pixels)}")
        if w < 1 or h < 1:
            raise InputError(422, f"image has no pixels ({w}x{h})")
        try:
            rgb, size = decode_reduced(im, reduce_to)
        except Image.DecompressionBombError as e:
            raise InputError(413, _bomb_message(e, max_pixels)) from None
        except (OSError, SyntaxError, ValueError) as e:  # truncated data, broken streams, bad EXIF
            raise InputError(422, f"truncated or corrupt {im.format or 'image'}: {_why(e)}") from None
    return rgb, size
