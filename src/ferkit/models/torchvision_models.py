"""torchvision ResNet-18/34/50, MobileNetV2 and Inception-v3, fitted to FER inputs.

The networks are torchvision's own (built lazily with ``torchvision.models.get_model(arch,
weights=None)``), so parameter names are torchvision's and ImageNet checkpoints load unchanged. Changes:

* ``num_classes`` outputs; ``drop_rate`` is the dropout before the final linear layer (None keeps
  torchvision's: 0.2 for mobilenet_v2, 0.5 for inception_v3, none for the resnets).
* ``in_chans`` != 3 (e.g. 1 for grey FER2013 faces) swaps the first conv for one with ``in_chans``
  input channels; pretrained kernels are summed over RGB (see ``adapt_input_conv``).
* Input tensors are ``(N, in_chans, H, W)`` float, normalised as for training. The resnets and
  mobilenet_v2 downsample by 32, so 48x48 faces end in a 2x2 map: they run, but fine detail is lost
  early; the compact ``vgg_fer`` is built for that size.
* inception_v3 has no auxiliary head (``aux_logits=False``) and resizes inputs whose height or width
  is below 75 px (bilinear, aspect ratio kept, shorter side -> 75) before its stem, because its
  stem shrinks anything smaller to nothing. 48 px faces are therefore processed at 75 px (about 2.4x
  the compute of 48 px, with no extra detail). ``transform_input`` stays False: give pretrained
  inception_v3 inputs normalised with the mean/std you fine-tune with.

``stem_stride=1`` (resnets, mobilenet_v2) makes the first convolution stride 1 instead of 2: for
48 px faces the last feature map is then 3x3 (mobilenet_v2) instead of 2x2, for 4x the compute,
and the weights are unchanged (ImageNet weights still load).

Other keyword arguments go to the torchvision constructor (e.g. ``width_mult=0.5`` for mobilenet_v2).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferkit.models._builder import build_model
from ferkit.models._pretrained import PretrainedArg, PretrainedCfg, StateDict
from ferkit.models._registry import register_model

__all__ = ["TORCHVISION_CFGS", "DropoutLinear", "build_torchvision"]

#: Smallest height/width inception_v3's stem accepts.
INCEPTION_MIN_SIZE = 75


class DropoutLinear(nn.Linear):
    """Dropout followed by ``nn.Linear``: ``(N, in_features) -> (N, out_features)``.

    Its parameters are still named ``weight`` and ``bias``, so replacing a ResNet's ``fc`` with it
    keeps the ``fc.weight``/``fc.bias`` keys of torchvision checkpoints.
    """

    def __init__(self, in_features: int, out_features: int, drop_rate: float = 0.0) -> None:
        super().__init__(in_features, out_features)
        self.drop_rate = drop_rate

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.dropout(x, self.drop_rate, self.training))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, drop_rate={self.drop_rate}"


def _drop_aux_logits(state_dict: StateDict) -> StateDict:
    """ImageNet inception_v3 checkpoints carry the auxiliary head, which ferkit builds without."""
    return {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.")}


TORCHVISION_CFGS: dict[str, PretrainedCfg] = {
    "resnet18": PretrainedCfg(first_conv="conv1", classifier="fc", imagenet_arch="resnet18"),
    "resnet34": PretrainedCfg(first_conv="conv1", classifier="fc", imagenet_arch="resnet34"),
    "resnet50": PretrainedCfg(first_conv="conv1", classifier="fc", imagenet_arch="resnet50"),
    "mobilenet_v2": PretrainedCfg(first_conv="features.0.0", classifier="classifier", imagenet_arch="mobilenet_v2"),
    "inception_v3": PretrainedCfg(
        first_conv="Conv2d_1a_3x3.conv", classifier="fc", imagenet_arch="inception_v3", filter_fn=_drop_aux_logits
    ),
}


def _upsample_small_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Forward pre-hook: resize ``(N, C, H, W)`` so that ``min(H, W) >= module.min_input_size``."""
    x = args[0]
    min_size = module.min_input_size
    h, w = x.shape[-2:]
    if min(h, w) >= min_size:
        return None
    scale = min_size / min(h, w)
    size = (max(min_size, math.ceil(h * scale)), max(min_size, math.ceil(w * scale)))
    return (F.interpolate(x, size=size, mode="bilinear", align_corners=False), *args[1:])


def _set_in_chans(model: nn.Module, name: str, in_chans: int) -> None:
    """Replace conv ``name`` by one reading ``in_chans`` channels, keeping the builder's init
    distribution (random init: the input channels are reused cyclically, not re-drawn)."""
    old = model.get_submodule(name)
    if not isinstance(old, nn.Conv2d):
        raise TypeError(f"{name} is a {type(old).__name__}, not the first Conv2d")
    new = nn.Conv2d(
        in_chans, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding, dilation=old.dilation, bias=old.bias is not None,  # type: ignore[arg-type]
    )
    with torch.no_grad():
        new.weight.copy_(old.weight[:, [i % old.in_channels for i in range(in_chans)]])
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias)
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name), attr, new)


def build_torchvision(
    arch: str, *, num_classes: int = 7, in_chans: int = 3, drop_rate: float | None = None, **kwargs: Any
) -> nn.Module:
    """Randomly initialised torchvision ``arch`` with ``in_chans`` inputs and ``num_classes`` outputs.

    Also the backbone source of ``spp_net``. Weights are loaded by the caller (``build_model``).
    """
    from torchvision.models import get_model

    cfg = TORCHVISION_CFGS[arch]
    stem_stride = int(kwargs.pop("stem_stride", 2))
    if arch.startswith("resnet"):
        model = get_model(arch, weights=None, num_classes=num_classes, **kwargs)
        model.fc = DropoutLinear(model.fc.in_features, num_classes, drop_rate or 0.0)
    else:
        if drop_rate is not None:
            kwargs["dropout"] = drop_rate
        if arch == "inception_v3":
            kwargs = {"aux_logits": False, "init_weights": True, "transform_input": False, **kwargs}
        model = get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    if arch == "inception_v3":
        model.min_input_size = INCEPTION_MIN_SIZE
        model.register_forward_pre_hook(_upsample_small_inputs)
    if in_chans != 3:
        _set_in_chans(model, cfg.first_conv, in_chans)
    if stem_stride != 2:  # small faces: keep 2x more resolution through the net (same weights)
        model.get_submodule(cfg.first_conv).stride = (stem_stride, stem_stride)
    return model


def _create(arch: str, pretrained: PretrainedArg, **kwargs: Any) -> nn.Module:
    model = build_torchvision(arch, **kwargs)
    return build_model(model, arch=arch, cfg=TORCHVISION_CFGS[arch], pretrained=pretrained)


@register_model
def resnet18(pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """ResNet-18 (11.2M parameters at 7 classes), torchvision layout; head ``fc``."""
    return _create("resnet18", pretrained, **kwargs)


@register_model
def resnet34(pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """ResNet-34 (21.3M parameters at 7 classes), torchvision layout; head ``fc``."""
    return _create("resnet34", pretrained, **kwargs)


@register_model
def resnet50(pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """ResNet-50 (23.5M parameters at 7 classes), torchvision layout; head ``fc``."""
    return _create("resnet50", pretrained, **kwargs)


@register_model
def mobilenet_v2(pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """MobileNetV2 (2.2M parameters at 7 classes), torchvision layout; head ``classifier``."""
    return _create("mobilenet_v2", pretrained, **kwargs)


@register_model
def inception_v3(pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """Inception-v3 without aux head (21.8M parameters at 7 classes); inputs under 75 px are upsampled."""
    return _create("inception_v3", pretrained, **kwargs)
