"""`Weights`: the one description of a trained model, read from (and written to) its JSON.

A trained model on disk is a JSON beside its weights, in one of three formats: a single model
(``ferkit-model/1``, with ``.safetensors``), an ensemble (``ferkit-ensemble/1``, naming its members)
or an ONNX export (``ferkit-onnx/1``, with ``.onnx``). :func:`resolve` turns a shipped name or a path
into a :class:`Weights` without loading any network (no PyTorch); ``load_model`` builds the network.
Code outside ``ferkit.models`` reads and writes model JSON only through this class:

>>> w = resolve("default")                        # Weights(name='fer2013_vgg_fer_w15_e64', format='model', ...)
>>> x = w.transform()(face)                       # the model's preprocessing (numpy)
>>> p = w.probabilities(logits)                   # softmax(logits / temperature), the one softmax
>>> w.replace(temperature=1.2).write(w.path)      # what `ferkit calibrate` does (atomically)
"""
from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ferkit.errors import FerkitError, WeightsError

__all__ = ["FORMATS", "PRIOR_NAMES", "Prior", "Weights", "canonical_prior", "check_prior", "prior_problem", "resolve",
           "train_prior_problem"]

#: ``format`` in the JSON -> the short name ``Weights.format`` uses
FORMATS = {"ferkit-model/1": "model", "ferkit-ensemble/1": "ensemble", "ferkit-onnx/1": "onnx"}


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


#: class priors named by a word; a model also predicts under a balance from 0 (train) to 1 (uniform)
#: or under class frequencies (``ferkit.infer.prior_shift`` says what each means)
PRIOR_NAMES = ("train", "uniform")

#: a class prior in its one spelling (``canonical_prior``)
Prior = str | float | list[float] | dict[str, float]


def canonical_prior(value: Any) -> Prior:
    """One spelling for each class prior: None, 0 and ``"train"`` are ``"train"``; 1 and ``"uniform"``
    are ``"uniform"``; another real number is a balance (a float between 0 and 1); class frequencies
    become a list of floats or a ``{class: float}`` dict. FerkitError names what is wrong (a bool, an
    unknown word, a balance outside 0..1, a frequency that is no number)."""
    if value is None:
        return "train"
    if isinstance(value, str) and value in PRIOR_NAMES:
        return value
    if isinstance(value, (str, bool)):
        raise FerkitError(f"prior {value!r}: use train, uniform, a balance from 0 (train) to 1 (uniform), "
                          "or class frequencies")
    if isinstance(value, numbers.Real):
        try:
            balance = float(value)
        except OverflowError:
            balance = float("inf")
        if not 0 <= balance <= 1:
            raise FerkitError(f"prior {value!r}: a balance must be from 0 (train) to 1 (uniform)")
        return "train" if balance == 0 else "uniform" if balance == 1 else balance
    try:
        if isinstance(value, Mapping):
            return {str(k): float(v) for k, v in value.items()}
        return [float(v) for v in value]
    except (TypeError, ValueError, OverflowError):
        raise FerkitError(f"prior: class frequencies must be numbers, not {value!r}") from None


def train_prior_problem(meta: Mapping[str, Any]) -> str | None:
    """What is wrong with a model JSON's ``train_prior`` (the class frequencies of its training targets,
    one positive number per class), as one line; None if it is fine or absent."""
    prior, classes = meta.get("train_prior"), meta.get("classes") or ()
    if prior is None or (isinstance(prior, list | tuple) and len(prior) == len(classes) and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in prior)):
        return None
    return f"'train_prior' must be a list of {len(classes)} positive numbers (class frequencies), not {prior!r}"


def prior_problem(meta: Mapping[str, Any], *, needs_train_prior: bool = True) -> str | None:
    """What is wrong with a model JSON's ``prior`` (a name or a balance; the one it predicts under
    unless told otherwise) or ``train_prior``, as one line; None if nothing. ``needs_train_prior=False``
    checks the spelling alone (an ensemble before its members' training prior is filled in)."""
    problem = train_prior_problem(meta)
    if problem:
        return problem
    choice = meta.get("prior")
    if choice is None:
        return None
    try:
        choice = canonical_prior(choice)
    except FerkitError:
        choice = None
    if not isinstance(choice, (str, float)):
        return f"'prior' must be train, uniform or a balance from 0 to 1, not {meta.get('prior')!r}"
    if needs_train_prior and choice != "train" and not meta.get("train_prior"):
        return f"'prior' {meta.get('prior')!r} needs 'train_prior' (the class frequencies it moves away from)"
    return None


def check_prior(meta: Mapping[str, Any], source: str | os.PathLike[str], *, needs_train_prior: bool = True) -> None:
    """:func:`prior_problem` as a WeightsError that names ``source`` (the JSON)."""
    problem = prior_problem(meta, needs_train_prior=needs_train_prior)
    if problem:
        raise WeightsError(f"{os.fspath(source)}: {problem}")


@dataclass(frozen=True)
class Weights:
    """A trained model's description: what its JSON says, typed and read-only.

    ``fields`` holds every key of the JSON (nested values frozen); the attributes are the ones every
    command needs. ``path`` is the JSON it was read from (None for one made in memory)."""

    fields: Mapping[str, Any]
    path: Path | None = field(default=None, compare=False)

    # ------------------------------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, meta: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> Weights:
        """Weights from a metadata dict (as ``load_model`` returns it); checks the keys every format has."""
        where = os.fspath(path) if path is not None else "model metadata"
        fmt = meta.get("format")
        if fmt not in FORMATS:
            raise WeightsError(f"{where}: format is {fmt!r}, this ferkit reads {', '.join(FORMATS)}")
        classes = meta.get("classes")
        if not isinstance(classes, list | tuple) or not classes or not all(isinstance(c, str) for c in classes):
            raise WeightsError(f"{where}: 'classes' must be a non-empty list of class names")
        inp = meta.get("input")
        if not isinstance(inp, Mapping) or any(k not in inp for k in ("size", "channels", "mean", "std")):
            raise WeightsError(f"{where}: 'input' must be a dict with size, channels, mean and std")
        check_prior(meta, where, needs_train_prior=False)     # an ensemble's train_prior comes from its members
        return cls(_frozen(dict(meta)), Path(path) if path is not None else None)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Weights:
        """Read a model's JSON (any of :data:`FORMATS`); WeightsError names the file and what is wrong."""
        from ferkit.models._files import load_json_object

        p = Path(path)
        if not p.is_file():
            raise WeightsError(f"{p}: model metadata file not found")
        return cls.from_dict(load_json_object(p), p)

    # ------------------------------------------------------------------------------------- the fields
    @property
    def format(self) -> str:
        """``model``, ``ensemble`` or ``onnx``."""
        return FORMATS[self.fields["format"]]

    @property
    def name(self) -> str | None:
        return self.fields.get("name")

    @property
    def arch(self) -> str | None:
        return self.fields.get("arch")

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.fields["classes"])

    @property
    def input(self) -> Mapping[str, Any]:
        """``size``, ``channels``, ``mean``, ``std`` (and ``region`` for a region model)."""
        return self.fields["input"]

    @property
    def region(self) -> str | None:
        return self.input.get("region")

    @property
    def temperature(self) -> float | None:
        """The calibrated temperature (``ferkit calibrate``), None if never fitted."""
        t = self.fields.get("temperature")
        return None if t is None else float(t)

    @property
    def train_prior(self) -> tuple[float, ...] | None:
        prior = self.fields.get("train_prior")
        return None if prior is None else tuple(float(v) for v in prior)

    @property
    def prior(self) -> Prior:
        """The class prior the model predicts under unless told otherwise (``ferkit.infer.prior_shift``):
        ``"train"`` (as trained; a JSON without ``prior``), ``"uniform"`` or a balance from 0 to 1."""
        return canonical_prior(self.fields.get("prior"))

    @property
    def sha256(self) -> str | None:
        """The checksum of the weights file (the .onnx file for an export)."""
        return self.fields.get("sha256")

    @property
    def members(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(self.fields.get("members") or ())

    # ------------------------------------------------------------------------------------- using them
    def transform(self) -> Any:
        """The model's preprocessing (``ferkit.data.preprocess.EvalTransform``, numpy)."""
        from ferkit.data.preprocess import eval_transform

        return eval_transform(self.input)

    def probabilities(self, logits: Any, shift: np.ndarray | None = None) -> np.ndarray:
        """``softmax(logits / temperature + shift)`` per row (the one softmax of every backend)."""
        from ferkit.models._onnx import probabilities

        return probabilities(logits, self.temperature, shift)

    # ------------------------------------------------------------------------------------- writing
    def as_dict(self) -> dict[str, Any]:
        """The JSON's content as plain, mutable Python (what ``load_model`` calls ``meta``)."""
        return _plain(self.fields)

    def replace(self, **changes: Any) -> Weights:
        """A copy with some fields changed (``None`` removes one); the same checks as reading."""
        meta = self.as_dict()
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = _plain(value)
        return Weights.from_dict(meta, self.path)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def write(self, path: str | os.PathLike[str], *, keep_mode: bool = False) -> Path:
        """Write the JSON to ``path`` atomically (a reader never sees half a file); return the path."""
        from ferkit._fileio import atomic_write_text

        p = Path(path)
        atomic_write_text(p, self.to_json(), keep_mode=keep_mode)
        return p


def resolve(model: str | os.PathLike[str]) -> Weights:
    """The :class:`Weights` of a shipped model name or a saved model (stem, either file of the pair,
    folder, or an exported ``.onnx``), read without loading the network."""
    from ferkit.models._files import model_paths
    from ferkit.models._shipped import resolve_model_path

    p = Path(model).expanduser()
    suffix = ".onnx" if p.suffix == ".onnx" else ".safetensors"
    _, meta_path = model_paths(resolve_model_path(model), weights_suffix=suffix)
    return Weights.from_json(meta_path)
