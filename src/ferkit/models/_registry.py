"""Name -> entrypoint registry for ferkit's own architectures.

An entrypoint is a plain function ``fn(pretrained=False, **kwargs) -> nn.Module`` decorated with
:func:`register_model`; its ``__name__`` is the public model name. Architecture modules register
their entrypoints when they are imported (the registry imports them when it is first asked).
timm models are not registered here: :func:`ferkit.models.create_model` falls back to timm.
"""
from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from torch import nn

__all__ = ["close_names", "is_model", "list_models", "model_entrypoint", "register_model"]

EntryPoint = Callable[..., "nn.Module"]
_F = TypeVar("_F", bound=EntryPoint)

_entrypoints: dict[str, EntryPoint] = {}
#: the modules that register ferkit's own architectures, imported when the registry is first asked
_BUILTIN = ("vgg_fer", "torchvision_models", "spp_net")


def _builtins() -> dict[str, EntryPoint]:
    for mod in _BUILTIN:
        import_module(f"ferkit.models.{mod}")
    return _entrypoints


def register_model(fn: _F) -> _F:
    """Register ``fn`` under ``fn.__name__``; a name can be registered only once (ValueError)."""
    name = fn.__name__
    if name in _entrypoints:
        owner = _entrypoints[name].__module__
        raise ValueError(f"model {name!r} is already registered by {owner}")
    _entrypoints[name] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by an fnmatch pattern (``"resnet*"``).

    Only ferkit's own architectures are listed; any timm model is also accepted by ``create_model``
    as ``"timm/<name>"``.
    """
    names = sorted(_builtins())
    return names if pattern is None else fnmatch.filter(names, pattern)


def is_model(name: str) -> bool:
    """True if ``name`` is a registered ferkit model (timm names are not)."""
    return name in _builtins()


def model_entrypoint(name: str) -> EntryPoint:
    """The entrypoint function registered as ``name`` (KeyError if there is none)."""
    return _builtins()[name]


def close_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that look like ``name`` (case-insensitive), best first."""
    by_lower = {c.lower(): c for c in candidates}
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)]
