"""Fallback to timm for names ferkit does not register (``"timm/<name>"`` or a bare timm name).

timm is imported only here, on first use. The model keeps timm's parameter names; its head prefix
comes from ``model.pretrained_cfg["classifier"]`` and ``model.ferkit_arch`` is ``"timm/<name>"``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ferkit.errors import WeightsError
from ferkit.models._builder import build_model
from ferkit.models._pretrained import PretrainedCfg, WeightsSource, first_line

__all__ = ["TIMM_PREFIX", "create_timm_model", "first_layer_name", "timm_model_names", "timm_name"]

TIMM_PREFIX = "timm/"


def timm_name(name: str) -> str | None:
    """The timm model name that ``name`` refers to (tags such as ``.a1_in1k`` allowed), or None."""
    import timm

    arch = name.removeprefix(TIMM_PREFIX)
    return arch if timm.is_model(arch) else None


def timm_model_names() -> list[str]:
    """All timm architectures as ``"timm/<name>"`` (for suggestions)."""
    import timm

    return [TIMM_PREFIX + n for n in timm.list_models()]


def first_layer_name(value: str | tuple[str, ...] | list[str]) -> str:
    """timm names two layers for some models (e.g. distilled heads); ferkit uses the first."""
    if isinstance(value, str):
        return value
    return value[0] if value else ""


def create_timm_model(
    arch: str, *, pretrained: WeightsSource, num_classes: int, in_chans: int, **kwargs: Any
) -> nn.Module:
    """Build timm ``arch``; ``"imagenet"`` uses timm's own pretrained loading (Hugging Face hub cache),
    a local file goes through ferkit's loader with timm's ``first_conv``/``classifier`` names."""
    import timm

    try:
        model = timm.create_model(
            arch, pretrained=pretrained == "imagenet", num_classes=num_classes, in_chans=in_chans, **kwargs
        )
    except (OSError, RuntimeError) as e:
        if pretrained != "imagenet":
            raise
        raise WeightsError(
            f"timm could not load pretrained weights for {arch} ({first_line(e)}); "
            "pass pretrained=<local .safetensors/.pth file> instead"
        ) from e
    pcfg = getattr(model, "pretrained_cfg", None) or {}
    cfg = PretrainedCfg(
        first_conv=first_layer_name(pcfg.get("first_conv", "")),
        classifier=first_layer_name(pcfg.get("classifier", "")),
    )
    local_file = None if pretrained == "imagenet" else pretrained
    return build_model(model, arch=TIMM_PREFIX + arch, cfg=cfg, pretrained=local_file)
