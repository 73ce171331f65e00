"""Inference: faces and their emotions in images, folders, videos, streams and cameras.

>>> from ferkit.infer import Recognizer
>>> rec = Recognizer()                                  # shipped default model, dlib-hog+blazeface faces
>>> result = rec.predict("photo.jpg")                   # ImageResult; result.to_dict() is the JSON contract
>>> for frame in rec.stream("clip.mp4", smoothing=0.5): # FrameResult per frame, faces with track ids
...     ...

Every image enters through :func:`load_image` / ``to_rgb_array`` as a contiguous RGB uint8 array.
Drawing lives in ``ferkit.viz``; this package never draws, prints or exits.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ferkit.infer._io import IMAGE_SUFFIXES, ImageReadError, expand_paths, load_image, to_rgb_array
from ferkit.infer._options import (
    NOT_SERVED,
    RecognizerOptions,
    StreamOptions,
    add_arguments,
    option_help,
    options_from_namespace,
)
from ferkit.infer._sources import SourceError, VideoSource, VideoWriter, open_source
from ferkit.infer._tracker import DetectAndFollow, FlowFollower, IoUTracker

if TYPE_CHECKING:
    from ferkit.infer._backends import model_prior, parse_prior, prior_shift
    from ferkit.infer._recognizer import FaceBatch, Prepared, Recognizer

#: names that need PyTorch, imported on first use: reading and checking inputs (``expand_paths``,
#: ``load_image``) costs no torch import, so a missing file is reported in a fraction of a second
_LAZY = {"model_prior": "_backends", "parse_prior": "_backends", "prior_shift": "_backends",
         "FaceBatch": "_recognizer", "Prepared": "_recognizer", "Recognizer": "_recognizer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"ferkit.infer.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ferkit.infer' has no attribute {name!r}")

__all__ = [
    "IMAGE_SUFFIXES",
    "NOT_SERVED",
    "DetectAndFollow",
    "FaceBatch",
    "FlowFollower",
    "ImageReadError",
    "IoUTracker",
    "Prepared",
    "Recognizer",
    "RecognizerOptions",
    "SourceError",
    "StreamOptions",
    "VideoSource",
    "VideoWriter",
    "add_arguments",
    "expand_paths",
    "load_image",
    "model_prior",
    "open_source",
    "option_help",
    "options_from_namespace",
    "parse_prior",
    "prior_shift",
    "to_rgb_array",
]
