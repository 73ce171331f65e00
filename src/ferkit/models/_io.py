"""Trained models on disk: ``<stem>.safetensors`` (weights) + ``<stem>.json`` (metadata).

The JSON holds everything needed to rebuild and use the model: the caller's ``meta`` (at least
``classes``, ``input`` = ``{size, channels, mean, std}`` and ``model_kwargs``) plus ``format``,
``ferkit_version``, ``arch``, ``num_classes``, ``sha256`` (of the safetensors file), ``dtype`` and
``num_params``. Both files are written atomically (temporary file in the same folder, then
``os.replace``), the JSON last, so a reader never sees a half-written file, and the checksum
catches a weights file that does not belong to its JSON.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ferkit._fileio import atomic_path
from ferkit.errors import FerkitError, WeightsError
from ferkit.models._factory import count_parameters, create_model, head_prefix
from ferkit.models._files import load_json_object, model_paths
from ferkit.models._files import sha256_file as _sha256
from ferkit.models._pretrained import first_line, load_safetensors
from ferkit.models._weights import Weights, prior_problem

__all__ = ["FORMAT", "SAFE_MODEL_KWARGS", "load_model", "model_kwargs_problem", "model_paths", "save_model"]

FORMAT = "ferkit-model/1"
_RESERVED_KWARGS = ("num_classes", "in_chans", "pretrained")
#: the only architecture arguments a model JSON may carry (and a training config may set): plain
#: numbers and names that shape the network. Anything else, e.g. timm's ``checkpoint_path`` (which
#: would make timm torch.load a file the JSON names) or ``pretrained_cfg``, is refused.
SAFE_MODEL_KWARGS: dict[str, tuple[type, ...]] = {
    "drop_rate": (int, float), "drop_path_rate": (int, float), "width": (int, float), "stem_stride": (int,),
    "backbone": (str,), "levels": (list,), "hidden": (int,), "global_pool": (str,),
    # timm ResNet's stage widths and stem width (the narrow ResNet18 of configs/votes_resnet18n.yaml)
    "channels": (list,), "stem_width": (int,),
}


def model_kwargs_problem(kwargs: Mapping[str, Any], where: str = "model_kwargs") -> str | None:
    """What is wrong with architecture arguments from a JSON or a config, or None (see SAFE_MODEL_KWARGS)."""
    for key, value in kwargs.items():
        types = SAFE_MODEL_KWARGS.get(key)
        if types is None:
            if key in _RESERVED_KWARGS:
                return f"'{where}' must not set {key} (it comes from classes and input)"
            return (f"'{where}.{key}' is not an architecture argument ferkit accepts "
                    f"(allowed: {', '.join(SAFE_MODEL_KWARGS)})")
        if isinstance(value, bool) or not isinstance(value, types):
            return f"'{where}.{key}' must be {' or '.join(t.__name__ for t in types)}, not {value!r}"
        if key == "levels" and not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16 for v in value):
            return f"'{where}.levels' must be a list of integers 1-16, not {value!r}"
        if key == "channels" and not (0 < len(value) <= 8 and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1024 for v in value)):
            return f"'{where}.channels' must be a list of 1-8 integers 1-1024, not {value!r}"
        if isinstance(value, (int, float)) and not (0 <= value <= 64):
            return f"'{where}.{key}' must be between 0 and 64, not {value!r}"
    return None


#: the largest input side a model JSON may ask for (a 4096 px input would take gigabytes per face)
MAX_INPUT_SIZE = 1024


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _meta_problem(meta: Mapping[str, Any]) -> str | None:
    """What is wrong with the caller-provided part of ``meta``, or None."""
    classes = meta.get("classes")
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
        return "'classes' must be a non-empty list of class names"
    inp = meta.get("input")
    if not isinstance(inp, Mapping):
        return "'input' must be a dict with size, channels, mean and std"
    missing = [k for k in ("size", "channels", "mean", "std") if k not in inp]
    if missing:
        return f"'input' lacks {', '.join(missing)}"
    if isinstance(inp["channels"], bool) or inp["channels"] not in (1, 3):
        return f"'input.channels' must be 1 or 3, not {inp['channels']!r}"
    size = inp["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= MAX_INPUT_SIZE:
        return f"'input.size' must be an integer from 16 to {MAX_INPUT_SIZE}, not {size!r}"
    for key in ("mean", "std"):
        values = inp[key]
        if (not isinstance(values, list) or len(values) != inp["channels"]
                or not all(_finite(v) for v in values)):
            return f"'input.{key}' must be a list of {inp['channels']} finite numbers, not {values!r}"
    if not all(v > 0 for v in inp["std"]):
        return f"'input.std' must be positive, not {inp['std']!r}"
    if len(set(classes)) != len(classes):
        dup = sorted({c for c in classes if classes.count(c) > 1})
        return f"'classes' names {', '.join(dup)} more than once"
    temperature = meta.get("temperature")
    if temperature is not None and not (_finite(temperature) and 0.01 <= temperature <= 100):
        return f"'temperature' must be a number from 0.01 to 100, not {temperature!r}"
    problem = prior_problem(meta)
    if problem:
        return problem
    if inp.get("region") is not None:
        from ferkit.data.regions import REGIONS

        if inp["region"] not in REGIONS[1:]:
            return f"'input.region' must be one of {', '.join(REGIONS[1:])}, not {inp['region']!r}"
    kwargs = meta.get("model_kwargs")
    if not isinstance(kwargs, Mapping):
        return "'model_kwargs' must be a dict (may be empty)"
    reserved = [k for k in _RESERVED_KWARGS if k in kwargs]
    if reserved:
        return f"'model_kwargs' must not set {', '.join(reserved)} (they come from classes and input)"
    return model_kwargs_problem(kwargs)


#: the JSON fields that say how the weights are rebuilt and read: their hash is stored inside the
#: safetensors file (its header metadata, covered by the file's sha256 in the JSON), so a JSON edited
#: after saving (another architecture, model_kwargs, input or classes) is refused; the calibration
#: fields (temperature, prior, card) may change
SPEC_FIELDS = ("arch", "classes", "input", "model_kwargs", "num_classes")
SPEC_KEY = "ferkit_spec_sha256"


def spec_sha256(meta: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``meta``'s :data:`SPEC_FIELDS`."""
    spec = {k: meta.get(k) for k in SPEC_FIELDS}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def save_model(
    model: nn.Module, path: str | os.PathLike[str], meta: Mapping[str, Any], *, dtype: torch.dtype | None = None
) -> Path:
    """Write ``model``'s weights and ``meta`` as ``<stem>.safetensors`` + ``<stem>.json``; return the weights path.

    Args:
        model: a model from ``create_model`` (``model.ferkit_arch`` names its architecture).
        path: stem, either file of the pair, or a directory (see :func:`model_paths`); parent
            folders are created and existing files replaced.
        meta: JSON-serialisable dict with ``classes``, ``input`` and ``model_kwargs`` (see module doc);
            the fields ferkit adds overwrite same-named keys. It is not modified.
        dtype: store floating-point tensors in this dtype, e.g. ``torch.float16`` to halve the file
            (shipping limit 25 MB); ``load_model`` casts back to float32. None keeps the model's dtype.

    Raises:
        ValueError: ``meta`` is incomplete or not JSON-serialisable, ``classes`` does not match the
            classifier, or ``dtype`` is not a floating-point dtype.
    """
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    arch = getattr(model, "ferkit_arch", None)
    if not isinstance(arch, str):
        raise ValueError("save_model: model has no ferkit_arch; build it with ferkit.models.create_model")  # noqa: TRY004
    problem = _meta_problem(meta)
    if problem:
        raise ValueError(f"save_model: meta {problem}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"save_model: dtype must be a floating-point dtype, not {dtype}")

    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        state[key] = value.contiguous()
    head = head_prefix(model)
    head_weights = [v for k, v in state.items() if k.startswith(f"{head}.") and k.endswith("weight") and v.ndim >= 2]
    num_classes = len(meta["classes"])
    if head_weights and head_weights[-1].shape[0] != num_classes:
        raise ValueError(
            f"save_model: meta has {num_classes} classes but the classifier {head} "
            f"has {head_weights[-1].shape[0]} outputs"
        )
    stored = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    out = {
        **meta,
        "format": FORMAT,
        "ferkit_version": _ferkit_version(),
        "arch": arch,
        "num_classes": num_classes,
        "dtype": _dtype_name(stored),
        "num_params": count_parameters(model),
    }
    try:
        json.dumps(out)
    except (TypeError, ValueError) as e:
        raise ValueError(f"save_model: meta is not JSON-serialisable ({e})") from e

    from safetensors.torch import save_file

    weights_path, meta_path = model_paths(path)
    with atomic_path(weights_path) as tmp:
        save_file(state, tmp, metadata={"format": "pt", SPEC_KEY: spec_sha256(out)})
        out["sha256"] = _sha256(tmp)
    Weights.from_dict(out, meta_path).write(meta_path)
    return weights_path


def _ferkit_version() -> str:
    from ferkit import __version__

    return __version__


def _read_meta(meta_path: Path) -> dict[str, Any]:
    if not meta_path.is_file():
        raise WeightsError(f"{meta_path}: model metadata file not found (save_model writes it next to the weights)")
    meta = load_json_object(meta_path)
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{meta_path}: format is {meta.get('format')!r}, this ferkit reads {FORMAT!r}")
    problem = _meta_problem(meta)
    if problem is None and not all(isinstance(meta.get(k), str) for k in ("arch", "sha256")):
        problem = "'arch' and 'sha256' must be strings"
    if problem:
        raise WeightsError(f"{meta_path}: {problem}")
    return meta


def _check_spec(weights_path: Path, meta_path: Path, meta: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The JSON's SPEC_FIELDS must hash to what ``save_model`` stored in the weights file (files
    written before ferkit stored it have none: nothing to compare). Returns the name -> shape of each
    tensor the file holds, read from its header alone."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights_path), framework="pt") as f:
            stored = (f.metadata() or {}).get(SPEC_KEY)
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{weights_path}: unreadable safetensors file ({first_line(e)})") from e
    if stored is not None and stored != spec_sha256(meta):
        raise WeightsError(f"{meta_path}: {', '.join(SPEC_FIELDS)} differ from what was saved with {weights_path.name} "
                           "(the JSON was edited after the weights were written); refusing to load")
    return shapes


#: the most parameters a model file may ask for (the shipped models have 1-3M, a ResNet-50 24M)
MAX_PARAMS = 200_000_000


def _count(n: int) -> str:
    """``3.1G``, ``2.6M``, ``12.3K``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + unit
    return str(n)


#: the in-place operations that change a tensor's shape: the only ones :class:`_ShapesOnly` runs
_RESHAPING = frozenset({"as_strided_", "resize_", "resize_as_", "set_", "squeeze_", "swapaxes_", "swapdims_", "t_",
                        "transpose_", "unsqueeze_"})


class _ShapesOnly(TorchFunctionMode):
    """Inside ``torch.device("meta")``: in-place operations on meta tensors (the weight initialisers) are
    skipped. Their values are never read, and on the meta device PyTorch runs some of them (normal_,
    erfinv_, clamp_) through Python references that import TorchDynamo: seconds, once per process."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else next(iter(kwargs.values()), None)  # torch.nn.init passes tensor=
        if (name.endswith("_") and not name.startswith("_") and name not in _RESHAPING
                and isinstance(target, torch.Tensor) and target.is_meta):
            return target
        return func(*args, **kwargs)


def _build(meta: Mapping[str, Any], meta_path: Path) -> nn.Module:
    arch = meta["arch"]
    try:
        return create_model(
            arch, num_classes=len(meta["classes"]), in_chans=meta["input"]["channels"], **meta["model_kwargs"]
        )
    except (FerkitError, TypeError, ValueError) as e:
        raise WeightsError(f"{meta_path}: cannot rebuild {arch!r} ({first_line(e)})") from e


def _check_fit(meta: Mapping[str, Any], meta_path: Path, weights_path: Path,
               stored: Mapping[str, tuple[int, ...]]) -> None:
    """Build the architecture on the meta device (no memory) and refuse, in one line naming the field,
    a network of more than MAX_PARAMS parameters or one whose tensors differ from the file's header."""
    try:
        with torch.device("meta"), _ShapesOnly():
            net = _build(meta, meta_path)
    except RuntimeError:  # an architecture that reads tensor values while it is built: the real build decides
        return
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    n = count_parameters(net)
    if shapes == stored and n <= MAX_PARAMS:
        return
    buffers = {k for k, _ in net.named_buffers()}
    held = sum(math.prod(s) for k, s in stored.items() if k not in buffers)
    key = next((k for k in shapes if shapes[k] != stored.get(k)), None)
    if n > MAX_PARAMS:
        why = f"more than the {_count(MAX_PARAMS)} ferkit loads"
    elif key is None:
        why = f"{weights_path.name} also holds {next(k for k in stored if k not in shapes)}"
    elif key not in stored:
        why = f"{key} is not in {weights_path.name}"
    else:
        why = f"{key} is {list(shapes[key])} here, {list(stored[key])} in {weights_path.name}"
    raise WeightsError(f"{meta_path}: {_field(meta, net, key, shapes, stored)} gives a network of "
                       f"{_count(n)} parameters, its weights hold {_count(held)} ({why})")


def _field(meta: Mapping[str, Any], net: nn.Module, key: str | None, shapes: Mapping[str, tuple[int, ...]],
           stored: Mapping[str, tuple[int, ...]]) -> str:
    """The JSON field that the first differing tensor ``key`` (of ``shapes`` here, ``stored`` in the file)
    points to: the classifier's outputs -> classes, the first layer's inputs -> input.channels, no tensor
    name in common -> arch, else model_kwargs (arch when it has none)."""
    want, have = shapes.get(key), stored.get(key)
    if want and have and len(want) == len(have) >= 2 and want[2:] == have[2:]:
        if key.startswith(f"{head_prefix(net)}.") and want[1] == have[1]:
            return f"'classes' ({len(meta['classes'])} names)"
        if key == next(iter(net.state_dict())) and want[0] == have[0]:
            return f"'input.channels' {meta['input']['channels']}"
    kwargs = meta["model_kwargs"]
    if kwargs and not shapes.keys().isdisjoint(stored):
        return ", ".join(f"'model_kwargs.{k}' {v!r}" for k, v in kwargs.items())
    return f"'arch' {meta['arch']!r}"


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model written by :func:`save_model`; return ``(model in eval mode on device, meta)``.

    ``path`` is a saved model (see :func:`model_paths`) or the name of a model shipped with ferkit
    (``"default"``, see ``ferkit.models._shipped``). A saved ensemble (``ferkit ensemble build``) loads
    the same way and returns a ``ferkit.ensemble.Ensemble``.

    The architecture is rebuilt with ``create_model(meta["arch"], num_classes=len(meta["classes"]),
    in_chans=meta["input"]["channels"], **meta["model_kwargs"])`` and the weights, after their sha256
    is checked, are loaded strictly in float32. Before anything is allocated, the architecture is built on
    the meta device and compared with the safetensors header: a network of more than :data:`MAX_PARAMS`
    parameters, or tensors of other names or shapes, are refused in one line naming the JSON field.
    Raises WeightsError naming the file for a missing file, bad JSON, missing keys, a checksum mismatch,
    a JSON whose architecture fields were edited after saving (:data:`SPEC_FIELDS`, hashed into the
    weights file) or weights that do not fit.
    """
    from ferkit.models._shipped import resolve_model_path

    weights_path, meta_path = model_paths(resolve_model_path(path))
    from ferkit.models._ensemble_io import is_ensemble_json, load_ensemble

    if is_ensemble_json(meta_path):
        return load_ensemble(meta_path, device=device)
    meta = _read_meta(meta_path)
    if not weights_path.is_file():
        raise WeightsError(f"{weights_path}: weights file not found (named in {meta_path.name})")
    if _sha256(weights_path) != meta["sha256"]:
        raise WeightsError(
            f"{weights_path}: checksum mismatch, file corrupt or modified (sha256 differs from {meta_path.name})"
        )
    _check_fit(meta, meta_path, weights_path, _check_spec(weights_path, meta_path, meta))
    state = load_safetensors(weights_path)
    arch = meta["arch"]
    model = _build(meta, meta_path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(
            f"{weights_path}: weights do not fit {arch!r} with {meta_path.name}'s model_kwargs ({first_line(e)})"
        ) from e
    if meta["input"].get("region"):
        from ferkit.models._region import RegionNet

        model = RegionNet(model, meta["input"])
    return model.to(device).eval(), meta


def restrict_classes(model: nn.Module, meta: Mapping[str, Any], classes: list[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The same network predicting only ``classes`` (a subset of ``meta["classes"]``, in the order given):
    a new model from ``create_model`` with those rows of the classification head. Its softmax is the
    source's probabilities renormalised over the kept classes, so its argmax is the source's argmax over
    them. The returned meta's ``train_prior`` is restricted and renormalised the same way; a stored
    temperature is dropped (it was fitted over the source's classes). Raises WeightsError (one line)
    for a class the model does not have or a class given twice."""
    have = list(meta["classes"])
    missing = [c for c in classes if c not in have]
    if missing or len(set(classes)) != len(classes) or not classes:
        raise WeightsError(f"restricting classes: {', '.join(missing) or 'a class given twice, or none'}: "
                           f"the model's classes are {', '.join(have)}")
    rows = [have.index(c) for c in classes]
    arch = getattr(model, "ferkit_arch", None) or meta["arch"]
    net = create_model(arch, num_classes=len(classes), in_chans=meta["input"]["channels"],
                       **meta.get("model_kwargs", {}))
    head = head_prefix(model) + "."
    state = {k: (v[rows] if k.startswith(head) else v) for k, v in model.state_dict().items()}
    net.load_state_dict(state)
    out = {k: v for k, v in meta.items() if k != "temperature"}
    out["classes"] = list(classes)
    if meta.get("train_prior"):
        prior = [float(meta["train_prior"][i]) for i in rows]
        out["train_prior"] = [round(p / sum(prior), 6) for p in prior]
    return net.train(model.training), out
