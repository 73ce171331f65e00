"""``create_model``: one factory for ferkit's registered models and, as a fallback, timm's."""
from __future__ import annotations

from typing import Any

from torch import nn

from ferkit.errors import ConfigError, UnknownModelError
from ferkit.models._pretrained import PretrainedArg, resolve_source
from ferkit.models._registry import close_names, is_model, list_models, model_entrypoint

__all__ = ["count_parameters", "create_model", "head_prefix"]


def create_model(
    name: str,
    num_classes: int = 7,
    in_chans: int = 3,
    pretrained: PretrainedArg = False,
    **kwargs: Any,
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` expressions from ``in_chans``-channel images.

    Args:
        name: a registered ferkit model (``list_models()``: resnet18/34/50, mobilenet_v2,
            inception_v3, spp_net, vgg_fer), ``"timm/<name>"`` or a bare timm model name.
        num_classes: outputs of the classifier (7 for FER2013, 8 for FER+/AffectNet).
        in_chans: input channels; 1 for grey faces, 3 for RGB.
        pretrained: ``False`` (random init), ``True``/``"imagenet"`` (torchvision ImageNet weights from
            ``$TORCH_HOME/hub/checkpoints``; timm's hub cache for timm models) or the path of a
            ``.safetensors``/PyTorch state_dict file. Weights are adapted: a classifier of another
            size is re-initialised, the first conv is fitted to ``in_chans``.
        **kwargs: architecture options, e.g. ``drop_rate`` (dropout before the last linear layer,
            every model), ``width`` (vgg_fer), ``backbone``/``levels`` (spp_net). ``None`` values are
            dropped so unset config entries keep the model's defaults.

    Returns:
        The model in train mode, taking ``(N, in_chans, H, W)`` float tensors and returning
        ``(N, num_classes)`` logits, with ``model.ferkit_arch`` (name to rebuild it) and
        ``model.ferkit_head`` (parameter-name prefix of the classifier) set.

    Raises:
        UnknownModelError: ``name`` is neither registered nor a timm model.
        WeightsError: the weights are missing, unsafe, corrupt or of another architecture.
        ConfigError: ``num_classes``/``in_chans`` below 1 or an invalid architecture option.
    """
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"create_model: {arg} must be a positive integer, got {value!r}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if is_model(name):
        return model_entrypoint(name)(pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)

    from ferkit.models._timm import TIMM_PREFIX, create_timm_model, timm_model_names, timm_name

    arch = timm_name(name)
    if arch is not None:
        return create_timm_model(
            arch, pretrained=resolve_source(pretrained), num_classes=num_classes, in_chans=in_chans, **kwargs
        )
    suggestions = close_names(name, list_models()) or close_names(name, timm_model_names())
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise UnknownModelError(
        f"unknown model {name!r}{hint} (ferkit models: {', '.join(list_models())}; "
        f"timm models as '{TIMM_PREFIX}<name>')"
    )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def head_prefix(model: nn.Module) -> str:
    """Parameter-name prefix of ``model``'s classifier (``"fc"``, ``"classifier"``, ``"head"`` ...).

    Uses ``model.ferkit_head`` (set by ``create_model``), else timm's ``pretrained_cfg["classifier"]``.
    """
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    head = getattr(model, "ferkit_head", None)
    if head is None:
        from ferkit.models._timm import first_layer_name

        head = first_layer_name((getattr(model, "pretrained_cfg", None) or {}).get("classifier", ""))
    if not head:
        raise ValueError(f"{type(model).__name__} has no known classifier; build it with ferkit.models.create_model")
    return head
