"""What the main job can be told, defined once: :class:`RecognizerOptions` and :class:`StreamOptions`.

Every entry point is an adapter over these two dataclasses: ``ferkit predict``, ``video``, ``webcam``
and ``batch`` generate their flags from the fields (:func:`add_arguments`), ``ferkit serve`` its
settings (``FERKIT_SERVE_<FIELD>`` too), and the Python API takes the same names. A field means the same
thing, in the same unit, everywhere; each is checked once (:meth:`RecognizerOptions.check`), with a one-line
error naming the field, and an option the chosen detector cannot take is refused there, for every entry
point alike.

>>> from ferkit.infer import Recognizer, RecognizerOptions
>>> opts = RecognizerOptions(detector="dlib-hog", min_score=0.5, max_detect_megapixels=0.5)
>>> rec = Recognizer.from_options(opts)

Adding an option: a field here (with its ``help``), and its use in ``Recognizer`` (or in
:meth:`RecognizerOptions.recognizer_kwargs` when it maps onto an existing argument). Flags, server
settings, batch settings and the tests that every entry point receives it follow from the field.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, get_type_hints

from ferkit.detect import (
    DEFAULT_DETECTOR,
    VIDEO_DETECT_EVERY,
    DetectorError,
    get_detector,
    list_detectors,
)
from ferkit.errors import FerkitError
from ferkit.images import MAX_MEGAPIXELS

__all__ = ["NOT_SERVED", "RecognizerOptions", "StreamOptions", "add_arguments", "option_help", "options_from_namespace"]

#: RecognizerOptions fields ``ferkit serve`` does not take: it batches faces across requests (``--max-batch``)
NOT_SERVED = ("batch_size",)


def _opt(default: Any, help: str, *, choices: Any = None, flag: str | None = None, metavar: str | None = None) -> Any:
    """A field with what its flag and its setting need: ``help`` (the default is appended), ``choices``
    (a tuple, or a callable giving one when the parser is built), ``metavar``."""
    return field(default=default, metadata={"help": help, "choices": choices, "metavar": metavar})


class _Checked:
    """What both option sets share: checked when made (one line naming the field), copied with changes,
    plain values out."""

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise FerkitError(problem)

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (picklable, JSON-ready): ``type(opts)(**opts.to_dict()) == opts``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RecognizerOptions(_Checked):
    """How faces are found, cut out and classified (``ferkit.infer.Recognizer``)."""

    model: str = _opt("default", "shipped model name or saved model path (a run folder, .json/.safetensors, .onnx)")
    detector: str = _opt(DEFAULT_DETECTOR, "face detector (measurements: benchmarks/README.md)", choices=list_detectors)
    min_size: int | None = _opt(None, "smallest face side in pixels (unset: the detector's, ~36 for dlib-hog, 30 for "
                                "haar, 24 for blazeface)")
    min_score: float | None = _opt(None, "drop faces whose detector score (`detection_score`) is below this; the scale "
                                   "is the detector's: blazeface a probability (its default 0.5), dlib an SVM margin "
                                   "(default 0), haar a level weight (default: keep all); dlib-hog+blazeface takes "
                                   "none")
    max_detect_megapixels: float = _opt(2.0, "detect faces on a copy scaled down to this many megapixels, boxes mapped "
                                        "back, crops from the full image; 0: full resolution (for faces under ~50 px "
                                        "in large photos)")
    max_megapixels: float = _opt(MAX_MEGAPIXELS, "largest image decoded, in megapixels, checked from its header (a "
                                 "large JPEG counts at the reduced size it is decoded at for detection)")
    margin: float | None = _opt(None, "context around each face box before classifying, fraction per side (unset: "
                                "the detector's, 0.05 for haar, dlib-hog and blazeface, 0.1 for dlib-cnn)")
    align: bool = _opt(False, "rotate faces so that the eyes are level before classifying")
    landmarks: int | None = _opt(None, "compute and report dlib's 5 or 68 landmarks", choices=(5, 68))
    max_faces: int | None = _opt(None, "at most this many faces per image (highest detector scores)")
    batch_size: int = _opt(64, "faces per classifier forward pass")
    backend: str | None = _opt(None, "classifier runtime: onnx (ONNX Runtime, CPU) or torch (default: onnx for shipped "
                               "models and .onnx files on the CPU, torch for other models)", choices=("torch", "onnx"))
    device: str = _opt("cpu", "torch device of the classifier (cpu, cuda, cuda:1, mps)")
    prior: str | None = _opt(None, "class prior to predict under: train (as the model learnt it), uniform (every "
                             "class equally likely, as in posed collections), a balance from 0 (train) to 1 "
                             "(uniform), or class=frequency,... (default: the model's own, its JSON's prior; "
                             "`ferkit models` lists it)", metavar="PRIOR")

    def __post_init__(self) -> None:
        if isinstance(self.prior, numbers.Real) and not isinstance(self.prior, bool):   # a balance given as a number
            from ferkit.models import canonical_prior

            object.__setattr__(self, "prior", str(canonical_prior(self.prior)))   # train, uniform or the full float
        super().__post_init__()

    def check(self) -> RecognizerOptions:
        """Also what needs the detector's registry: the detector takes ``min_size`` and ``min_score``
        (built once, which is quick; the model is not loaded). Returns ``self``."""
        try:
            get_detector(self.detector, **self.detector_options())
        except DetectorError as e:
            raise FerkitError(str(e)) from None
        except TypeError as e:  # a detector class without that keyword
            raise FerkitError(f"{self.detector} takes no {', '.join(self.detector_options())}: {e}") from None
        return self

    def detector_options(self) -> dict[str, Any]:
        """The detector's own keyword options (unset ones left to the detector)."""
        return {k: v for k, v in {"min_size": self.min_size, "threshold": self.min_score}.items() if v is not None}

    def recognizer_kwargs(self) -> dict[str, Any]:
        """``Recognizer`` keyword arguments: the one place where units change (megapixels to pixels)."""
        from ferkit.infer._backends import parse_prior

        return {
            "model": self.model, "detector": self.detector, "device": self.device, "align": self.align,
            "landmarks": self.landmarks, "margin": self.margin, "max_faces": self.max_faces,
            "batch_size": self.batch_size, "backend": self.backend, "prior": parse_prior(self.prior),
            "min_size": self.min_size,
            "detector_options": {"threshold": self.min_score} if self.min_score is not None else None,
            "detect_max_pixels": round(self.max_detect_megapixels * 1e6) or None,
            "max_pixels": round(self.max_megapixels * 1e6),
        }



@dataclass(frozen=True)
class StreamOptions(_Checked):
    """How a video, stream or camera is followed (``Recognizer.stream``); the same defaults for
    ``ferkit video``, ``webcam``, ``batch``'s videos and Python."""

    stride: int = _opt(1, "classify every N-th frame (frame skipping)", metavar="N")
    detect_every: int = _opt(VIDEO_DETECT_EVERY, "run the face detector on every K-th processed frame and follow the "
                             "faces in between by optical flow (the detector also runs when a face is lost; a new face "
                             "is found at most K-1 frames late); 1 = detect on every frame (chosen on the sample clip: "
                             "benchmarks/README.md)", metavar="K")
    smoothing: float = _opt(0.5, "EMA of each track's probabilities (labels that do not flicker frame to frame), 0 = "
                            "off, 0.8 = about 5 frames of memory")
    max_frames: int | None = _opt(None, "stop after this many frames")



#: per-field bounds: (low, high, low inclusive); a value outside is a one-line error naming the field
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "min_size": (1, math.inf, True), "max_detect_megapixels": (0, math.inf, True),
    "max_megapixels": (0, math.inf, False), "margin": (-0.4, 2.0, True), "max_faces": (1, math.inf, True),
    "batch_size": (1, 4096, True), "stride": (1, math.inf, True), "detect_every": (1, math.inf, True),
    "smoothing": (0, 1, True), "max_frames": (1, math.inf, True),
}


def _problem(opts: Any) -> str | None:
    """The first thing wrong with ``opts`` (types, choices, bounds), as one line naming the field."""
    hints = get_type_hints(type(opts))
    for f in fields(opts):
        value = getattr(opts, f.name)
        kind = _base_type(hints[f.name])
        if value is None:
            if f.default is not None:
                return f"{f.name}: must be set"
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            object.__setattr__(opts, f.name, value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return f"{f.name}: expected {kind.__name__}, not {value!r}"
        if kind is float and not math.isfinite(value):
            return f"{f.name}: must be a finite number, not {value!r}"
        choices = f.metadata.get("choices")
        choices = choices() if callable(choices) else choices
        if choices and value not in choices:
            return f"{f.name}: {value!r} is not one of {', '.join(map(str, choices))}"
        if f.name in _BOUNDS:
            low, high, closed = _BOUNDS[f.name]
            if (not ((value >= low if closed else value > low) and value <= high)
                    or (f.name == "smoothing" and value >= 1)):
                upper = ("" if high == math.inf
                         else (f" and < {high:g}" if f.name == "smoothing" else f" and <= {high:g}"))
                return f"{f.name}: must be {'>=' if closed else '>'} {low:g}{upper}, not {value!r}"
    if isinstance(opts, RecognizerOptions):
        if 0 < opts.max_detect_megapixels < 64 * 64 / 1e6:
            return ("max_detect_megapixels: must be 0 (full resolution) or at least 0.004096, "
                    f"not {opts.max_detect_megapixels}")
        try:
            from ferkit.infer._backends import parse_prior

            parse_prior(opts.prior)
        except FerkitError as e:
            return str(e)
    return None


def _base_type(hint: Any) -> type:
    """``int`` for ``int | None``, and so on."""
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    return args[0] if args else hint


def option_help(name: str, cls: type = RecognizerOptions) -> str:
    """The help text of ``cls``'s option ``name``, for a command that takes it without the rest."""
    return next(f.metadata["help"] for f in fields(cls) if f.name == name).replace("%", "%%")   # argparse


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type = RecognizerOptions, *, exclude: tuple[str, ...] = (),
                  defaults: dict[str, Any] | None = None, flags: dict[str, str] | None = None) -> None:
    """Flags for ``cls``'s fields (``--min-size`` for ``min_size``), each defaulting to None so that what
    the user set is known; ``defaults`` are a command's own defaults (``ferkit video``: blazeface),
    shown in the help and applied by :func:`options_from_namespace`; ``flags`` renames a flag, and its
    attribute with it (webcam's ``--device`` is its camera: ``{"device": "--torch-device"}``)."""
    hints = get_type_hints(cls)
    defaults = defaults or {}
    dests = {name: f.lstrip("-").replace("-", "_") for name, f in (flags or {}).items()}
    for f in fields(cls):
        if f.name in exclude:
            continue
        kind = _base_type(hints[f.name])
        default = defaults.get(f.name, f.default)
        shown = "" if default is None else f" (default: {default})"
        help_text = (f.metadata["help"] + shown).replace("%", "%%")
        name, dest = (flags or {}).get(f.name, flag(f.name)), dests.get(f.name, f.name)
        if kind is bool:
            parser.add_argument(name, dest=dest, action="store_true", default=None, help=help_text)
            continue
        choices = f.metadata.get("choices")
        parser.add_argument(name, dest=dest, type=kind, default=None, metavar=f.metadata.get("metavar"),
                            choices=choices() if callable(choices) else choices, help=help_text)
    parser.set_defaults(**{f"_{cls.__name__}_defaults": defaults, f"_{cls.__name__}_dests": dests})


def options_from_namespace(a: argparse.Namespace, cls: type = RecognizerOptions) -> Any:
    """``cls`` from parsed flags (:func:`add_arguments`): what the user set, else the command's
    default, else the field's."""
    defaults = getattr(a, f"_{cls.__name__}_defaults", {})
    dests = getattr(a, f"_{cls.__name__}_dests", {})
    values = {}
    for f in fields(cls):
        value = getattr(a, dests.get(f.name, f.name), None)
        if value is None:
            value = defaults.get(f.name, f.default)
        values[f.name] = value
    return cls(**values)
