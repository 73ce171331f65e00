"""``create_model``: one factory for ferkit's registered models and, as a fallback, timm's."""
from __future__ import annotations

from typing import Any

from torch import nn

from ferkit.errors import ConfigError, UnknownModelError, WeightsError
from ferkit.models._pretrained import PretrainedArg, resolve_source
from ferkit.models._registry import close_names, is_model, list_models, model_entrypoint
from ferkit.models._shipped import deprecated_names, is_arch_tag, resolve_model_path, shipped_aliases

__all__ = ["count_parameters", "create_model", "head_prefix"]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    pretrained: PretrainedArg = False,
    **kwargs: Any,
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` expressions from ``in_chans``-channel images.

    Args:
        name: a registered ferkit model (``list_models()``: resnet18/34/50, mobilenet_v2,
            inception_v3, spp_net, vgg_fer), a shipped model's ``arch.tag`` name
            (``"vgg_fer.w15_fer2013"``, as timm's ``resnet50.a1_in1k``: that architecture with the
            shipped model's ``model_kwargs``, classes and input channels), ``"timm/<name>"`` or a
            bare timm model name.
        num_classes: outputs of the classifier (7 for FER2013, 8 for FER+/AffectNet); None: the
            shipped model's number of classes for an ``arch.tag`` name, else 7.
        in_chans: input channels; 1 for grey faces, 3 for RGB; None: the shipped model's for an
            ``arch.tag`` name, else 3.
        pretrained: ``False`` (random init), ``True``/``"imagenet"`` (torchvision ImageNet weights from
            ``$TORCH_HOME/hub/checkpoints``; timm's hub cache for timm models; for an ``arch.tag``
            name, ``True`` is the shipped model's own weights, checksum verified) or the path of a
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
        UnknownModelError: ``name`` is neither registered, nor a shipped single model's ``arch.tag``, nor a
            timm model (a shipped ensemble or a short name such as ``default`` says to use ``load_model``).
        WeightsError: the weights are missing, unsafe, corrupt or of another architecture.
        ConfigError: ``num_classes``/``in_chans`` below 1 or an invalid architecture option.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if not is_model(name) and is_arch_tag(name):
        return _create_shipped(name, num_classes, in_chans, pretrained, kwargs)
    num_classes, in_chans = 7 if num_classes is None else num_classes, 3 if in_chans is None else in_chans
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"create_model: {arg} must be a positive integer, got {value!r}")
    if is_model(name):
        return model_entrypoint(name)(pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)

    target = shipped_aliases().get(name) or deprecated_names().get(name)
    if target is not None:  # a short (default) or old name: a trained model, not an architecture
        build = f", or build it with create_model({target!r})" if is_model(target.partition(".")[0]) else ""
        raise UnknownModelError(f"{name!r} names a shipped model, not an architecture: load it with "
                                f"load_model({name!r}){build}")

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


def _create_shipped(name: str, num_classes: int | None, in_chans: int | None, pretrained: PretrainedArg,
                    kwargs: dict[str, Any]) -> nn.Module:
    """``create_model`` for a shipped ``arch.tag`` name: the architecture with the shipped model's
    ``model_kwargs`` (overridden by ``kwargs``), classes and channels; ``pretrained=True`` = its weights."""
    from ferkit.models._files import model_paths, sha256_file
    from ferkit.models._weights import resolve

    weights = resolve(name)
    if weights.format != "model" or weights.region or not weights.arch:
        raise UnknownModelError(f"{name!r} is a shipped {'region model' if weights.region else weights.format}, "
                                f"not one architecture: load it with load_model({name!r})")
    if pretrained is True:
        path, _ = model_paths(resolve_model_path(name))
        if sha256_file(path) != weights.sha256:
            raise WeightsError(f"{path}: checksum mismatch, file corrupt or modified (sha256 differs from its JSON)")
        pretrained = path
    return create_model(
        weights.arch,
        num_classes=len(weights.classes) if num_classes is None else num_classes,
        in_chans=int(weights.input["channels"]) if in_chans is None else in_chans,
        pretrained=pretrained,
        **{**weights.as_dict().get("model_kwargs", {}), **kwargs},
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
