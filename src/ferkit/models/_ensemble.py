"""`Ensemble`: several trained models behind the interface of one model.

An ensemble is an ``nn.Module`` mapping ``(N, C, H, W)`` to ``(N, classes)`` logits, with metadata
like a single model's, so every command that takes a model takes an ensemble (predict, video,
webcam, evaluate, compare, calibrate, serve). Its logits are the log of the combined probabilities
(softmax gives them back), except for stacking, whose logistic regression yields logits.

Each member keeps its own preprocessing. The ensemble's input is the face at the largest member
input size, in [0, 1] (``mean 0, std 1``), RGB if any member is RGB else grey; each member then
converts channels (grey -> RGB by copying, RGB -> grey with ITU-R 601 luma, as ``eval_transform``
does), resizes to its own size (bilinear, antialiased) when it differs, normalises with its own
mean/std and applies its own calibrated temperature before the probabilities are combined. With
members of one input size this is exactly each member's ``eval_transform``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ferkit.data.regions import REGIONS, cut_regions
from ferkit.errors import ConfigError
from ferkit.models._combine import METHODS, combine_votes, stack_logits, voting_views
from ferkit.models._onnx import LUMA

__all__ = ["Ensemble", "ensemble_input"]

_LUMA = LUMA


def ensemble_input(member_inputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ensemble's ``input`` block: largest member size, 3 channels if any member has 3, no normalisation."""
    size = max(int(i["size"]) for i in member_inputs)
    channels = 3 if any(int(i["channels"]) == 3 for i in member_inputs) else 1
    return {"size": size, "channels": channels, "mean": [0.0] * channels, "std": [1.0] * channels}


class _Member(nn.Module):
    """One member: ensemble input in [0, 1] -> the member's own preprocessing -> probabilities."""

    def __init__(self, net: nn.Module, meta: dict[str, Any]):
        super().__init__()
        inp = meta["input"]
        self.net = net
        self.size = int(inp["size"])
        self.channels = int(inp["channels"])
        self.register_buffer("mean", torch.tensor(inp["mean"], dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(inp["std"], dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("luma", torch.tensor(_LUMA).view(1, 3, 1, 1), persistent=False)
        self.temperature = float(meta.get("temperature") or 1.0)
        #: the facial region the member was trained on (its net is then a RegionNet), or None
        self.region = inp.get("region")

    def forward(self, x: Tensor, cut: bool = True) -> Tensor:
        """``cut=False`` gives a region member its region directly (the view is already cut)."""
        if x.shape[1] != self.channels:
            x = x.expand(-1, 3, -1, -1) if self.channels == 3 else (x * self.luma).sum(1, keepdim=True)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        net = self.net if cut or self.region is None else self.net.net
        logits = net((x - self.mean) / self.std).float()
        return torch.softmax(logits / self.temperature, dim=1)


class Ensemble(nn.Module):
    """Members combined by ``method``: ``soft`` (weighted average of probabilities), ``vote`` (hard
    majority, ties by summed probabilities), ``stack`` (logistic regression on log-probabilities) or
    ``regions`` (members x the face and its five dlib regions, a region-trained member voting on its
    region only; see :mod:`ferkit.data.regions`): hard majority over every (member, view) vote, or,
    with ``weights``, the weighted average of each member's probabilities (a whole-face member's
    averaged over the views it sees).

    Args:
        members: ``(nn.Module, meta)`` pairs as ``ferkit.models.load_model`` returns them; each must
            have the first member's class names (the order may differ: members are re-ordered to the
            first's); a member with more classes (FER+'s contempt) votes over the first's classes,
            its probabilities renormalised over them.
        method: one of ``METHODS``.
        weights: soft-voting weights (M,), normalised; None = equal (``soft``) or majority (``regions``).
        stack: ``{"coef": (C, M*C), "intercept": (C,)}`` for ``method="stack"``.

    ``region_stats`` counts, for ``regions``, the faces seen and those where dlib found no face on the
    upscaled crop and the whole crop was used (the fallback).
    """

    ferkit_arch = "ensemble"

    def __init__(self, members: Sequence[tuple[nn.Module, dict[str, Any]]], method: str = "soft",
                 weights: Sequence[float] | None = None, stack: dict[str, Any] | None = None):
        super().__init__()
        if method not in METHODS:
            raise ConfigError(f"unknown ensemble method {method!r} (known: {', '.join(METHODS)})")
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.classes = list(members[0][1]["classes"])
        orders = []
        for i, (_, meta) in enumerate(members):
            if not set(self.classes) <= set(meta["classes"]):
                name = meta.get("name") or meta.get("arch") or f"member {i}"
                raise ConfigError(f"ensemble member {i} ({name}) has classes {', '.join(meta['classes'])}; "
                                  f"it needs every class of the first member ({', '.join(self.classes)})")
            orders.append([list(meta["classes"]).index(c) for c in self.classes])
        #: members with extra classes (a FER+ model's contempt) vote over the ensemble's classes,
        #: their probabilities renormalised over those
        self._extra = [len(meta["classes"]) > len(self.classes) for _, meta in members]
        self.members = nn.ModuleList(_Member(net, meta) for net, meta in members)
        self.member_metas = [dict(meta) for _, meta in members]
        self._orders = orders
        self.method = method
        if weights is not None and len(weights) != len(members):
            raise ConfigError(f"ensemble: {len(weights)} weights for {len(members)} members")
        self.weights = None if weights is None else [float(w) for w in weights]
        self.stack = stack
        self.input_cfg = ensemble_input([m["input"] for _, m in members])
        self.region_stats = {"faces": 0, "fallback": 0}

    def member_probs(self, x: Tensor) -> Tensor:
        """``(M, N, C)`` probabilities of every member for ensemble-input images ``x``."""
        probs = []
        for m, order, extra in zip(self.members, self._orders, self._extra):
            p = m(x)[:, order]
            probs.append(p / p.sum(1, keepdim=True).clamp_min(1e-12) if extra else p)
        return torch.stack(probs)

    def forward(self, x: Tensor) -> Tensor:
        if self.method == "stack":
            if not self.stack:
                raise ConfigError("ensemble method 'stack' needs fitted coefficients "
                                  "(ferkit ensemble build --method stack)")
            return stack_logits(self.member_probs(x).double(), self.stack["coef"], self.stack["intercept"]).float()
        votes = self.region_votes(x) if self.method == "regions" else self.member_probs(x)[:, None]
        p = combine_votes(self.method, [v.double() for v in votes], self.weights)
        return p.clamp_min(1e-12).log().float()

    def region_views(self, x: Tensor) -> Tensor:
        """``(R, N, C, H, W)``: each face and its regions (``REGIONS`` order), each resized to the input size."""
        views, found = cut_regions(x)
        self.region_stats["faces"] += len(found)
        self.region_stats["fallback"] += int((~found).sum())
        return views

    def region_votes(self, x: Tensor) -> list[Tensor]:
        """Each member's ``(V, N, C)`` probabilities on the views it votes on (``voting_views``)."""
        views = self.region_views(x)                            # (R, N, C, H, W)
        n = views.shape[1]
        votes = []
        for member, order, names in zip(self.members, self._orders, self.voting_views):
            if member.region is None:
                at = [REGIONS.index(v) for v in names]
                votes.append(member(views[at].flatten(0, 1))[:, order].reshape(len(at), n, -1))
            else:
                votes.append(member(views[REGIONS.index(member.region)], cut=False)[:, order][None])
        return votes

    @property
    def voting_views(self) -> list[tuple[str, ...]]:
        """The views (``REGIONS`` names) each member votes on in ``regions``."""
        return voting_views([m.region for m in self.members], REGIONS)

    def region_member_probs(self, x: Tensor) -> Tensor:
        """``(M, N, C)``: each member's probabilities averaged over the views it votes on in ``regions``
        (what ``regions`` weights are fitted on)."""
        return torch.stack([v.mean(0) for v in self.region_votes(x)])
