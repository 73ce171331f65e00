"""Uploaded bytes -> a contiguous RGB uint8 ``(H, W, 3)`` array, refusing what should not be decoded.

The decoding is ``ferkit.images.decode``'s, as for files; the pixel count is checked from the header
alone (``PIL.Image.open`` reads no pixel data), so a small file that claims 50,000 x 50,000 pixels
is refused before any memory is spent on it. Here: the formats accepted, and the HTTP statuses.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ferkit.serve.errors import InputError

__all__ = ["FORMATS", "STATUS", "decode_image", "input_error"]

#: Pillow formats accepted from clients -> the name shown; anything else (EPS, which Pillow hands to
#: Ghostscript, PSD, ICO, the many rarely used formats) is refused with 415 before decoding
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF", "GIF": "GIF"}


#: ``ImageReadError.reason`` -> HTTP status
STATUS = {"empty": 400, "too_large": 413, "format": 415, "not_image": 422, "corrupt": 422}


def decode_image(data: bytes, *, max_pixels: int, reduce_to: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an uploaded image with ferkit's one decoder (``ferkit.images.decode``: EXIF orientation
    applied, high bit depths scaled, exactly as ``ferkit predict`` reads files), accepting only
    :data:`FORMATS`.

    ``reduce_to``: a JPEG of more pixels than this is decoded at 1/2, 1/4 or 1/8 of its size; the
    ``max_pixels`` limit counts the pixels decoded. Returns the RGB array and the image's full
    upright ``(width, height)``.
    Raises InputError: 400 empty, 413 too many pixels, 415 another format, 422 not an image /
    truncated / corrupt."""
    from ferkit.images import ImageReadError, decode

    try:
        return decode(data, max_pixels=max_pixels, reduce_to=reduce_to, formats=FORMATS)
    except ImageReadError as e:
        raise input_error(e) from None


def input_error(e: Any) -> InputError:
    """The HTTP error (:data:`STATUS`) for an ``ferkit.images.ImageReadError`` of an upload."""
    detail = e.detail.replace("(--max-megapixels)", "(ferkit serve --max-megapixels)")
    return InputError(STATUS.get(e.reason, 422), detail)
