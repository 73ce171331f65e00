"""spp_net: spatial pyramid pooling on a CNN's last feature map (He et al., 2014, "Spatial Pyramid
Pooling in Deep Convolutional Networks for Visual Recognition").

A backbone's conv features ``(N, C, h, w)`` are max-pooled into an ``l x l`` grid for every pyramid
level ``l`` and concatenated into a vector of fixed length ``C * sum(l * l)``, whatever ``h, w``; so
the classifier (FC ``hidden`` -> ReLU -> dropout -> FC ``num_classes``) accepts any input size the
backbone accepts (48x48 faces and 224x224 crops alike, also non-square).

Pooling uses adaptive max pooling; for ``h`` or ``w`` below a level's grid size the bins overlap
(e.g. a 2x2 map pooled at level 4), which keeps the vector length fixed for tiny inputs.
Trade-off: the first FC is large (resnet18 backbone, levels (1, 2, 4): 512 * 21 * 512 = 5.5M of the
16.7M parameters), and adaptive pooling with sizes that do not divide the map does not export to
ONNX with dynamic input sizes.

Backbones (kwarg ``backbone``): ``resnet18`` (default), ``resnet34``, ``resnet50``, ``mobilenet_v2``
(torchvision, ImageNet weights with ``pretrained=True``) and ``vgg_fer`` (ferkit's plain conv stack,
no ImageNet weights). Parameter names: ``features.*`` (the backbone, e.g. ``features.layer4``),
``classifier.fc1`` / ``classifier.fc`` (the head, ``model.ferkit_head == "classifier"``).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferkit.errors import ConfigError
from ferkit.models._builder import build_model
from ferkit.models._pretrained import PretrainedArg, PretrainedCfg, StateDict
from ferkit.models._registry import register_model
from ferkit.models.torchvision_models import TORCHVISION_CFGS, build_torchvision
from ferkit.models.vgg_fer import VGGFer

__all__ = ["SPP_BACKBONES", "SPPNet", "SpatialPyramidPool"]

SPP_BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "vgg_fer")


class SpatialPyramidPool(nn.Module):
    """``(N, C, h, w) -> (N, C * sum(l * l for l in levels))`` by adaptive max pooling per level.

    The output is ordered level by level, each level flattened as ``(C, l, l)``.
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.levels = tuple(int(level) for level in levels)
        if not self.levels or min(self.levels) < 1:
            raise ConfigError(f"spp_net levels must be positive integers, got {list(levels)}")

    def out_features(self, channels: int) -> int:
        return channels * sum(level * level for level in self.levels)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([F.adaptive_max_pool2d(x, level).flatten(1) for level in self.levels], dim=1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


def _make_backbone(name: str, in_chans: int) -> tuple[nn.Module, int, str]:
    """Conv features of ``name`` as ``(module, output channels, first conv name inside it)``."""
    if name.startswith("resnet") and name in SPP_BACKBONES:
        net = build_torchvision(name, num_classes=1, in_chans=in_chans)
        layers = OrderedDict((n, m) for n, m in net.named_children() if n not in ("avgpool", "fc"))
        return nn.Sequential(layers), net.fc.in_features, "conv1"
    if name == "mobilenet_v2":
        net = build_torchvision(name, num_classes=1, in_chans=in_chans)
        return net.features, net.last_channel, "0.0"
    if name == "vgg_fer":
        vgg = VGGFer(num_classes=1, in_chans=in_chans)
        return vgg.features, vgg.num_features, "0.0.0"
    raise ConfigError(f"spp_net backbone must be one of {', '.join(SPP_BACKBONES)}, not {name!r}")


def _to_spp_keys(state_dict: StateDict) -> StateDict:
    """Map a backbone checkpoint (torchvision resnet / mobilenet_v2, ferkit vgg_fer) onto spp_net keys:
    resnet layers move under ``features.``, the backbone's own classifier is dropped. spp_net keys pass."""
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.startswith(("features.", "classifier.fc1.", "classifier.fc.")):
            out[key] = value
        elif not key.startswith(("fc.", "classifier.")):
            out[f"features.{key}"] = value
    return out


class SPPNet(nn.Module):
    """Backbone -> spatial pyramid pooling -> MLP head: ``(N, in_chans, H, W)`` float -> ``(N, num_classes)``.

    ``H, W`` (at least 16 px) may vary from batch to batch.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 3,
        backbone: str = "resnet18",
        levels: Sequence[int] = (1, 2, 4),
        hidden: int = 512,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.features, channels, first_conv = _make_backbone(backbone, in_chans)
        self.backbone_name = backbone
        self.first_conv = f"features.{first_conv}"
        self.num_classes = num_classes
        self.num_features = hidden
        self.pool = SpatialPyramidPool(levels)
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(self.pool.out_features(channels), hidden),
                act=nn.ReLU(inplace=True),
                drop=nn.Dropout(drop_rate),
                fc=nn.Linear(hidden, num_classes),
            )
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, in_chans, H, W)`` -> the backbone's last feature map ``(N, C, h, w)``."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map -> logits ``(N, num_classes)``, or the hidden activations ``(N, hidden)``."""
        x = self.pool(x)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer with a new ``num_classes``-way one (the hidden FC is kept)."""
        self.num_classes = num_classes
        self.classifier.fc = nn.Linear(self.num_features, num_classes)


@register_model
def spp_net(pretrained: PretrainedArg = False, **kwargs: Any) -> SPPNet:
    """SPP-net on a resnet18 backbone by default (16.7M parameters at 7 classes); head ``classifier``.

    ``pretrained=True`` loads the backbone's ImageNet weights; a local file may hold an spp_net state
    dict or a backbone one (torchvision resnet/mobilenet_v2 layout, or a ferkit vgg_fer).
    """
    model = SPPNet(**kwargs)
    cfg = PretrainedCfg(
        first_conv=model.first_conv,
        classifier="classifier",
        imagenet_arch=model.backbone_name if model.backbone_name in TORCHVISION_CFGS else None,
        filter_fn=_to_spp_keys,
    )
    return build_model(model, arch="spp_net", cfg=cfg, pretrained=pretrained)
