"""How an ensemble combines its members' class probabilities: soft voting (weighted averaging), hard
majority voting and stacking. Fitting the weights is ``ferkit.ensemble``'s (``fit_weights``,
``fit_stacking``); the rules live here, with the :class:`Ensemble` module that applies them.

All functions take the members' probabilities as one ``(M, N, C)`` array (members x faces x
classes, rows summing to 1) and return ``(N, C)`` probabilities (torch tensors, any device; numpy
arrays are converted once).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ferkit.errors import ConfigError

__all__ = ["METHODS", "PROB_FLOOR", "combine_votes", "majority_vote", "region_vote", "soft_vote", "stack_logits",
           "voting_views"]

#: how an ensemble combines its members (``regions`` = members x facial regions, majority or weighted)
METHODS = ("soft", "vote", "stack", "regions")
#: smallest probability before a log (stacking's features; the fitting in ``ferkit.ensemble`` uses the same)
PROB_FLOOR = 1e-7


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _check(probs: Tensor) -> None:
    if probs.ndim != 3 or probs.shape[0] < 1:
        raise ConfigError(f"ensemble: member probabilities must be (members, faces, classes), got {tuple(probs.shape)}")


def soft_vote(probs: Any, weights: Sequence[float] | Tensor | None = None) -> Tensor:
    """Weighted average of the members' probabilities, ``(M, N, C) -> (N, C)``.

    ``weights`` (M,) non-negative, normalised here to sum to 1; None = equal weights."""
    probs = _as_tensor(probs)
    _check(probs)
    m = probs.shape[0]
    if weights is None:
        w = torch.full((m,), 1.0 / m, dtype=probs.dtype, device=probs.device)
    else:
        w = torch.as_tensor(weights, dtype=probs.dtype, device=probs.device).flatten()
        if w.numel() != m or bool((w < 0).any()) or not float(w.sum()) > 0:
            raise ConfigError(f"ensemble: need {m} non-negative weights with a positive sum, got {w.tolist()}")
        w = w / w.sum()
    return torch.einsum("m,mnc->nc", w, probs)


def majority_vote(probs: Any) -> Tensor:
    """Hard majority voting, ``(M, N, C) -> (N, C)``: each member votes for its argmax; the answer
    is the class with most votes, ties broken by the members' summed (mean) probabilities.

    Returned as probabilities ``(votes + mean_p) / (M + 1)``: the vote share, nudged by the mean
    probability, which is below 1 for any class that lacks a vote (so it can break ties but never
    outweigh a vote)."""
    probs = _as_tensor(probs)
    _check(probs)
    m, _, c = probs.shape
    votes = torch.nn.functional.one_hot(probs.argmax(-1), c).sum(0).to(probs.dtype)
    return (votes + probs.mean(0)) / (m + 1)


def voting_views(regions: Sequence[str | None], views: Sequence[str]) -> list[tuple[str, ...]]:
    """The views each member of a ``regions`` ensemble votes on, given each member's trained region
    (None: whole faces) and the ``views`` in order (``ferkit.data.regions.REGIONS``, the face first): a
    region member votes on its region only; a whole-face member on the face and on each region no member
    was trained on (with only whole-face members, every view; with a member for each region, the face
    alone: a region is judged by the models that learnt it)."""
    learnt = {r for r in regions if r is not None}
    face_views = tuple(v for v in views if v == views[0] or v not in learnt)
    return [face_views if r is None else (r,) for r in regions]


def region_vote(votes: Sequence[Any], weights: Sequence[float] | None = None) -> Tensor:
    """``regions`` voting over each member's ``(V_m, N, C)`` probabilities on the views it votes on
    (:func:`voting_views`): hard majority over every (member, view) pair, or with ``weights`` the
    weighted average of each member's mean over its views. ``(N, C)``."""
    votes = [_as_tensor(v) for v in votes]
    if weights is not None:
        return soft_vote(torch.stack([v.mean(0) for v in votes]), weights)
    return majority_vote(torch.cat(votes))


def combine_votes(method: str, votes: Sequence[Any], weights: Sequence[float] | None = None) -> Tensor:
    """An ensemble's ``(N, C)`` probabilities by ``method`` (``soft``, ``vote`` or ``regions``; stacking has
    its own :func:`stack_logits`) from each member's ``(V_m, N, C)`` probabilities on the views it votes
    on (one view outside ``regions``)."""
    if method == "regions":
        return region_vote(votes, weights)
    probs = torch.cat([_as_tensor(v) for v in votes])
    return soft_vote(probs, weights) if method == "soft" else majority_vote(probs)


def stack_logits(probs: Any, coef: Any, intercept: Any) -> Tensor:
    """Stacking: a multinomial logistic regression on the members' log-probabilities,
    ``(M, N, C) -> (N, C)`` logits = ``[log p_1 | ... | log p_M] @ coef.T + intercept``."""
    probs = _as_tensor(probs)
    _check(probs)
    feats = probs.clamp_min(PROB_FLOOR).log().permute(1, 0, 2).flatten(1)  # (N, M*C)
    coef = torch.as_tensor(coef, dtype=probs.dtype, device=probs.device)
    intercept = torch.as_tensor(intercept, dtype=probs.dtype, device=probs.device)
    if coef.ndim != 2 or coef.shape[1] != feats.shape[1] or intercept.shape != (coef.shape[0],):
        raise ConfigError(f"ensemble: stacking coefficients {tuple(coef.shape)} do not fit {probs.shape[0]} members "
                          f"x {probs.shape[2]} classes")
    return feats @ coef.T + intercept
