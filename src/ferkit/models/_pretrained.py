"""Reading weight files and fitting their state dicts onto a freshly built model.

Sources (the ``pretrained`` argument of ``create_model``):

* ``True`` / ``"imagenet"``: torchvision's DEFAULT ImageNet weights for the architecture, read from
  ``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>`` (downloaded there if missing and the
  network allows it).
* a path: a ``.safetensors`` file or a PyTorch state_dict file. PyTorch files are read with
  ``torch.load(weights_only=True)``, so a file holding anything but tensors and plain containers is
  refused without running its code. The format is recognised from the file's first bytes, not its name.

Fitting (:func:`load_pretrained`, after timm's ``load_pretrained``): classifier tensors whose shape
does not fit ``num_classes`` are dropped (the new head keeps its random init), the first conv is
adapted to ``in_chans`` (:func:`adapt_input_conv`), missing and unexpected keys are logged on the
``ferkit.models`` logger. Any other shape mismatch, or no tensor matching at all, is a
:class:`~ferkit.errors.WeightsError` (weights of another architecture).
"""
from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, TypeAlias
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from ferkit.errors import WeightsError, first_line

__all__ = [
    "PretrainedArg",
    "PretrainedCfg",
    "StateDict",
    "WeightsSource",
    "adapt_input_conv",
    "first_line",
    "imagenet_cache_file",
    "imagenet_state_dict",
    "load_pretrained",
    "load_safetensors",
    "read_state_dict",
    "resolve_source",
]

_log = logging.getLogger("ferkit.models")

StateDict: TypeAlias = dict[str, Tensor]
#: What callers may pass as ``pretrained``.
PretrainedArg: TypeAlias = bool | str | os.PathLike[str] | None
#: ``pretrained`` after :func:`resolve_source`: nothing, torchvision's ImageNet weights, or a local file.
WeightsSource: TypeAlias = Literal["imagenet"] | Path | None

# Wrappers whose prefix ends up on every key: DataParallel/DDP, Lightning modules holding the network
# as ``self.model`` / ``self.net`` (ferkit's FERLitModule), torch.compile.
_WRAPPER_PREFIXES = ("module.", "model.", "net.", "_orig_mod.")
# torch.load's failures on files that are not a plain state_dict (weights_only refusals included).
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError)


@dataclass(frozen=True)
class PretrainedCfg:
    """Where the layers that loading adapts live in one architecture (timm's ``pretrained_cfg`` subset).

    Attributes:
        first_conv: module name of the input convolution, adapted to ``in_chans`` (``"conv1"``).
        classifier: parameter-name prefix of the classifier, re-initialised when ``num_classes``
            differs (``"fc"``); also ``model.ferkit_head``.
        imagenet_arch: torchvision model name whose ``DEFAULT`` weights ``pretrained=True`` loads,
            or None when there are no ImageNet weights.
        filter_fn: maps a loaded state dict onto this model's key layout (e.g. a torchvision
            resnet18 state dict onto spp_net's ``features.*``); applied to every source, so it
            must pass keys that are already in the model's layout through unchanged.
    """

    first_conv: str
    classifier: str
    imagenet_arch: str | None = None
    filter_fn: Callable[[StateDict], StateDict] | None = None


def resolve_source(pretrained: PretrainedArg) -> WeightsSource:
    """Normalise the ``pretrained`` argument: ``False``/``None`` -> None, ``True``/``"imagenet"`` ->
    ``"imagenet"``, anything else -> ``Path`` (existence is checked when it is read)."""
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True or (isinstance(pretrained, str) and pretrained.lower() == "imagenet"):
        return "imagenet"
    if isinstance(pretrained, (str, os.PathLike)):
        return Path(pretrained).expanduser()
    raise TypeError(f"pretrained must be a bool, 'imagenet' or a path, not {type(pretrained).__name__}")


def _is_safetensors(path: Path) -> bool:
    # safetensors: 8-byte little-endian header length, then the JSON header. torch.save writes a zip
    # ("PK"), legacy torch/pickle files start with the pickle protocol byte 0x80.
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _as_state_dict(obj: object, origin: str) -> StateDict:
    """Check that ``obj`` is ``{str: Tensor}``, unwrapping a checkpoint's ``"state_dict"`` entry and
    stripping a wrapper prefix (``module.``, ``model.``, ``net.``, ``_orig_mod.``) shared by all keys."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(
            f"{origin}: not a state_dict (found {type(obj).__name__}, expected a non-empty dict of tensors)"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise WeightsError(
                f"{origin}: not a plain state_dict (entry {key!r} is a {type(value).__name__}, not a tensor)"
            )
    state_dict: StateDict = dict(obj)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
                stripped = True
    return state_dict


def load_safetensors(path: Path) -> StateDict:
    """All tensors of safetensors file ``path`` on the CPU, in their stored dtypes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: unreadable safetensors file ({first_line(e)})") from e


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """Read a local weights file into ``{name: tensor}`` on the CPU without unpickling objects.

    Accepts safetensors files and ``torch.save``'d state dicts (also a checkpoint dict with a
    ``"state_dict"`` entry, such as Lightning's). Raises WeightsError naming the file otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if _is_safetensors(path):
        obj: object = load_safetensors(path)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except _TORCH_LOAD_ERRORS as e:
            raise WeightsError(
                f"{path}: not a plain PyTorch state_dict or safetensors file, refusing to unpickle it ({first_line(e)})"
            ) from e
    return _as_state_dict(obj, str(path))


def imagenet_cache_file(arch: str) -> Path:
    """Where torchvision's DEFAULT ImageNet weights of ``arch`` are cached
    (``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>``); the file may not exist.
    ValueError when torchvision has no ImageNet weights of that name."""
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / PurePosixPath(urlparse(weights.url).path).name


def imagenet_state_dict(arch: str) -> StateDict:
    """torchvision's DEFAULT ImageNet state dict for ``arch`` (``"resnet18"``), via the torch hub cache.

    ``weights.get_state_dict`` reads ``$TORCH_HOME/hub/checkpoints/<file name from the URL>`` and only
    downloads when that file is missing. Offline without the file: WeightsError saying where to put it.
    """
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
    cached = imagenet_cache_file(arch)
    try:
        obj = weights.get_state_dict(progress=False, weights_only=True)
    except _TORCH_LOAD_ERRORS as e:
        if not cached.is_file():  # the download failed
            raise WeightsError(
                f"ImageNet weights for {arch} are not cached and could not be downloaded ({first_line(e)}): "
                f"put {weights.url} at {cached} (set TORCH_HOME to move the cache) or pass pretrained=<local file>"
            ) from e
        raise WeightsError(
            f"{cached}: cached ImageNet weights for {arch} are not a plain state_dict ({first_line(e)}); "
            "delete or replace the file"
        ) from e
    return _as_state_dict(obj, str(cached))


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """Fit a first-conv kernel ``(out, C, kh, kw)`` to ``in_chans`` input channels.

    ``in_chans=1``: sum over the input channels, so a grey image gives the same response as the
    same image replicated into C channels. Otherwise the channels are tiled and rescaled by
    ``C / in_chans`` to keep the activation scale (timm's ``adapt_input_conv``). Computed in float32.
    """
    if weight.ndim != 4:
        raise ValueError(f"expected a conv kernel (out, in, kh, kw), got shape {tuple(weight.shape)}")
    src = weight.shape[1]
    if src == in_chans:
        return weight
    w = weight.float()
    if in_chans == 1:
        w = w.sum(dim=1, keepdim=True)
    else:
        w = w.repeat(1, math.ceil(in_chans / src), 1, 1)[:, :in_chans] * (src / in_chans)
    return w.to(weight.dtype)


def _fetch(source: Literal["imagenet"] | Path, cfg: PretrainedCfg, arch: str) -> tuple[StateDict, str]:
    if source != "imagenet":
        return read_state_dict(source), str(source)
    if cfg.imagenet_arch is None:
        raise WeightsError(f"{arch} has no ImageNet weights; pass pretrained=<local .safetensors/.pth file>")
    return imagenet_state_dict(cfg.imagenet_arch), f"ImageNet {cfg.imagenet_arch} weights"


def _preview(keys: list[str], n: int = 5) -> str:
    more = f", ... (+{len(keys) - n})" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def load_pretrained(model: nn.Module, cfg: PretrainedCfg, source: Literal["imagenet"] | Path, arch: str) -> None:
    """Load weights from ``source`` into ``model`` in place, adapting head and first conv (see module doc)."""
    state_dict, origin = _fetch(source, cfg, arch)
    if cfg.filter_fn is not None:
        state_dict = cfg.filter_fn(state_dict)
    target = model.state_dict()
    first_conv_key = f"{cfg.first_conv}.weight"
    loadable: StateDict = {}
    dropped_head: list[str] = []
    for key, value in state_dict.items():
        if key not in target:
            continue
        want = target[key].shape
        if key == first_conv_key and value.ndim == 4 and value.shape[1] != want[1]:
            _log.info("%s: adapting %s from %d to %d input channels", origin, key, value.shape[1], want[1])
            value = adapt_input_conv(value, want[1])
        if value.shape == want:
            loadable[key] = value
        elif _under(key, cfg.classifier):
            dropped_head.append(key)
        else:
            raise WeightsError(
                f"{origin}: {key} has shape {tuple(value.shape)} but {arch} needs {tuple(want)}; "
                "weights of another architecture or model_kwargs?"
            )
    if not loadable:
        raise WeightsError(
            f"{origin}: no tensor matches {arch} (file keys: {_preview(sorted(state_dict), 3)}); "
            "weights of another architecture?"
        )
    result = model.load_state_dict(loadable, strict=False)
    unexpected = [k for k in state_dict if k not in target]
    missing = [k for k in result.missing_keys if not _under(k, cfg.classifier)]
    if any(_under(k, cfg.classifier) for k in result.missing_keys):
        why = f" ({_preview(dropped_head)} did not fit)" if dropped_head else ""
        _log.info("%s: classifier %s keeps its random init%s", origin, cfg.classifier, why)
    if missing:
        _log.warning("%s: %d tensors missing, left at random init: %s", origin, len(missing), _preview(missing))
    if unexpected:
        _log.warning("%s: %d unexpected tensors ignored: %s", origin, len(unexpected), _preview(unexpected))
    _log.info("%s: loaded %d/%d tensors into %s", origin, len(loadable), len(target), arch)
