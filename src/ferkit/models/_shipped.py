"""Models shipped inside the package (trained here by ferkit), loaded by name.

Shipped names are ``arch.tag`` (timm's and torchvision's habit): the architecture ``create_model``
builds, then what the weights were trained as (``vgg_fer.w15_fer2013``: ``vgg_fer`` at width 1.5 on
FER2013). ``src/ferkit/weights/index.json`` maps them to weight stems in the same folder::

    {"models": {"vgg_fer.w15_fer2013": "fer2013_vgg_fer_w15_e64", ...},
     "aliases": {"default": "vgg_fer.w15_fer2013", ...},
     "deprecated": {"vgg_fer_w15": "vgg_fer.w15_fer2013", ...}}

``aliases`` are short names that stay (``default``, ``ferplus``); ``deprecated`` are the names of
earlier versions, which still load, with a :class:`~ferkit.errors.FerkitDeprecationWarning` naming
the new one. One meaning per name: ``load_model`` and ``create_model`` both take the ``arch.tag``
names (``create_model`` builds the architecture with the shipped kwargs and classes, and its
weights with ``pretrained=True``); the architecture alone (``vgg_fer``) never names a trained model.

Each stem is a ``.safetensors`` + ``.json`` pair written by `save_model`, whose sha256 `load_model`
checks, and its ONNX export ``onnx/<stem>.onnx`` + ``onnx/<stem>.json``
(``scripts/export_shipped_onnx.py``), which the light install (no PyTorch) runs.
"""
from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache
from pathlib import Path

from ferkit.errors import FerkitDeprecationWarning, WeightsError
from ferkit.models._files import read_json

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(canonical name -> stem, alias -> canonical name, deprecated name -> canonical name)."""
    path = WEIGHTS_DIR / "index.json"
    if not path.is_file():
        return {}, {}, {}
    index = json.loads(path.read_text(encoding="utf-8"))
    models = dict(index.get("models", {}))
    aliases, deprecated = dict(index.get("aliases", {})), dict(index.get("deprecated", {}))
    for kind, names in (("alias", aliases), ("deprecated name", deprecated)):
        for name, target in names.items():
            if target not in models:
                raise WeightsError(f"{path}: {kind} {name!r} points to {target!r}, which is not in 'models'")
    return models, aliases, deprecated


def shipped_models() -> dict[str, str]:
    """Shipped model names (aliases first, then the ``arch.tag`` names) -> weight stems; empty when
    the package ships none. Deprecated names load but are not listed (:func:`deprecated_names`)."""
    models, aliases, _ = _index()
    return {**{a: models[c] for a, c in aliases.items()}, **models}


def shipped_aliases() -> dict[str, str]:
    """Short names that stay (``default``, ``ferplus``) -> the ``arch.tag`` name they load."""
    return dict(_index()[1])


def deprecated_names() -> dict[str, str]:
    """Names of earlier versions that still load -> the name to use instead."""
    return dict(_index()[2])


@lru_cache(maxsize=1)
def _retired() -> dict[str, str]:
    path = WEIGHTS_DIR / "index.json"
    return dict(json.loads(path.read_text(encoding="utf-8")).get("retired", {})) if path.is_file() else {}


def retired_names() -> dict[str, str]:
    """Names of models no longer shipped -> what to use instead (index.json's ``retired``): loading one is
    a one-line error saying so, never another model under the old name."""
    return dict(_retired())


def canonical_name(name: str) -> str | None:
    """The ``arch.tag`` name a shipped name (alias, deprecated or canonical) stands for, else None.
    A deprecated name warns (:class:`~ferkit.errors.FerkitDeprecationWarning`) naming the new one; a
    retired one is a WeightsError saying what replaces it."""
    retired = _retired().get(name)
    if retired:
        raise WeightsError(f"{name}: no longer shipped with ferkit ({retired})")
    models, aliases, deprecated = _index()
    if name in models:
        return name
    if name in aliases:
        return aliases[name]
    if name in deprecated:
        new = deprecated[name]
        warnings.warn(f"model name {name!r} is deprecated and will be removed: use {new!r}",
                      FerkitDeprecationWarning, stacklevel=3)
        return new
    return None


def _shipped_stem(model: object) -> str | None:
    """The weight stem of a shipped name that is not also an existing path, else None."""
    if not isinstance(model, str) or Path(model).expanduser().exists():
        return None
    name = canonical_name(model)
    return None if name is None else _index()[0][name]


def is_arch_tag(name: object) -> bool:
    """Whether ``name`` is a shipped model's ``arch.tag`` name (not an alias, not a deprecated name):
    the names ``create_model`` takes besides architectures."""
    return isinstance(name, str) and name in _index()[0]


def is_shipped_name(model: object) -> bool:
    """Whether ``model`` loads a shipped model by name (deprecated names included; no warning)."""
    if not isinstance(model, str) or Path(model).expanduser().exists():
        return False
    return any(model in names for names in _index())


def resolve_model_path(model: str | os.PathLike[str]) -> Path:
    """A path to a saved model: an existing file/folder/stem as given, else a shipped model's stem.

    A bare name that is neither raises WeightsError listing the shipped names.
    """
    p = Path(model).expanduser()
    if p.exists() or p.with_name(p.name + ".json").exists():
        return p
    name = os.fspath(model)
    stem = _shipped_stem(name)
    if stem is not None:
        return WEIGHTS_DIR / stem
    if os.sep in name or name.endswith((".json", ".safetensors")):
        raise WeightsError(f"{name}: no such model file or folder")
    tagged = [n for n in _index()[0] if n.startswith(f"{name}.")]
    if tagged:  # an architecture (vgg_fer): one meaning per name, timm's
        raise WeightsError(f"{name}: an architecture, not a trained model; load one of its shipped models "
                           f"({', '.join(tagged)}), or build it untrained with create_model({name!r})")
    known = ", ".join(shipped_models()) or "none shipped yet"
    raise WeightsError(f"{name}: not a model file or folder, nor a shipped model ({known})")


def shipped_onnx(model: object) -> Path | None:
    """The shipped ONNX export (``weights/onnx/<stem>.json``) of a shipped model name, or for a shipped
    ensemble its own JSON (``ferkit.models.open_onnx`` runs it from its members' exports); None for
    anything else (a path, an unknown name, a model shipped without its export)."""
    stem = _shipped_stem(model)
    if stem is None:
        return None
    meta = WEIGHTS_DIR / "onnx" / f"{stem}.json"
    if meta.is_file():
        return meta
    own = WEIGHTS_DIR / f"{stem}.json"  # an ensemble: run from its members' exports (OnnxEnsemble)
    return own if own.is_file() and (read_json(own) or {}).get("format") == "ferkit-ensemble/1" else None
