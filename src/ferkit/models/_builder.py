"""The last step of every entrypoint: tag the model and load its weights (timm's ``build_model_with_cfg``)."""
from __future__ import annotations

from typing import TypeVar

from torch import nn

from ferkit.models._pretrained import PretrainedArg, PretrainedCfg, load_pretrained, resolve_source

__all__ = ["build_model"]

_M = TypeVar("_M", bound=nn.Module)


def build_model(model: _M, *, arch: str, cfg: PretrainedCfg, pretrained: PretrainedArg = False) -> _M:
    """Set ``model.ferkit_arch = arch`` and ``model.ferkit_head = cfg.classifier``, then load
    ``pretrained`` weights (see ``ferkit.models._pretrained``) into the freshly built ``model``."""
    model.ferkit_arch = arch
    model.ferkit_head = cfg.classifier
    source = resolve_source(pretrained)
    if source is not None:
        load_pretrained(model, cfg, source, arch)
    return model
