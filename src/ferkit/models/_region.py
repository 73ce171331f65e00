"""A model trained on one facial region, used on whole face crops (see :mod:`ferkit.data.regions`)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ferkit.data.regions import REGIONS, check_region, cut_regions

__all__ = ["RegionNet"]


class RegionNet(nn.Module):
    """A network trained on one facial region, used on whole face crops: its input is a batch
    preprocessed as for any model (``eval_transform(meta["input"])``); it undoes the normalisation,
    cuts ``region`` out of each face (:func:`cut_regions`), normalises again and runs the network.
    Not exportable to ONNX (dlib runs inside)."""

    def __init__(self, net: nn.Module, input_cfg: dict[str, Any]):
        super().__init__()
        self.net = net
        self.region = check_region(input_cfg.get("region"))
        self.ferkit_arch = getattr(net, "ferkit_arch", None)
        self.register_buffer("mean", torch.tensor(input_cfg["mean"], dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(input_cfg["std"], dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        views, _ = cut_regions(x * self.std + self.mean)
        return self.net((views[REGIONS.index(self.region)] - self.mean) / self.std)
