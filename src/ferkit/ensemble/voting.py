"""How an ensemble combines its members' class probabilities: soft voting (weighted averaging),
hard majority voting and stacking, plus fitting the soft-voting weights on a validation split.

All functions take the members' probabilities as one ``(M, N, C)`` array (members x faces x
classes, rows summing to 1) and return ``(N, C)`` probabilities, so one implementation serves the
:class:`~ferkit.ensemble.Ensemble` module (torch tensors, any device) and the offline analysis of
``ferkit ensemble report`` (numpy arrays, converted once).

>>> p = soft_vote(probs, weights)          # sum_m w_m p_m
>>> p = majority_vote(probs)               # (votes + mean p) / (M + 1): argmax = most votes, ties by mean p
>>> w = fit_weights(probs, y, "accuracy")  # never worse than equal weights on (probs, y)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ferkit.errors import ConfigError

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "accuracy",
    "fit_stacking",
    "fit_weights",
    "log_loss",
    "majority_vote",
    "soft_vote",
    "stack_logits",
]

#: how an ensemble combines its members (``regions`` = majority over members x facial regions)
METHODS = ("soft", "vote", "stack", "regions")
#: what ``fit_weights`` optimises on the validation split
OBJECTIVES = ("accuracy", "logloss", "equal")

_EPS = 1e-7


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


def stack_logits(probs: Any, coef: Any, intercept: Any) -> Tensor:
    """Stacking: a multinomial logistic regression on the members' log-probabilities,
    ``(M, N, C) -> (N, C)`` logits = ``[log p_1 | ... | log p_M] @ coef.T + intercept``."""
    probs = _as_tensor(probs)
    _check(probs)
    feats = probs.clamp_min(_EPS).log().permute(1, 0, 2).flatten(1)  # (N, M*C)
    coef = torch.as_tensor(coef, dtype=probs.dtype, device=probs.device)
    intercept = torch.as_tensor(intercept, dtype=probs.dtype, device=probs.device)
    if coef.ndim != 2 or coef.shape[1] != feats.shape[1] or intercept.shape != (coef.shape[0],):
        raise ConfigError(f"ensemble: stacking coefficients {tuple(coef.shape)} do not fit {probs.shape[0]} members "
                          f"x {probs.shape[2]} classes")
    return feats @ coef.T + intercept


def log_loss(p: Any, y: Any) -> float:
    """Mean negative log-likelihood of the labels ``y`` (N,) under probabilities ``p`` (N, C)."""
    p = np.asarray(p, dtype=np.float64)
    return float(-np.log(np.clip(p[np.arange(len(p)), np.asarray(y)], _EPS, None)).mean())


def accuracy(p: Any, y: Any) -> float:
    return float((np.asarray(p).argmax(1) == np.asarray(y)).mean())


def _simplex_grid(m: int, step: float) -> np.ndarray:
    """All weight vectors on the (m-1)-simplex with coordinates in multiples of ``step``."""
    k = round(1 / step)

    def rec(left: int, parts: int) -> list[list[int]]:
        if parts == 1:
            return [[left]]
        return [[i, *rest] for i in range(left + 1) for rest in rec(left - i, parts - 1)]

    return np.asarray(rec(k, m), dtype=np.float64) / k


def _fit_logloss(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    m = probs.shape[0]
    py = probs[:, np.arange(probs.shape[1]), y].T  # (N, M): each member's probability of the true class

    def objective(a: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.exp(a - a.max())
        w /= w.sum()
        mix = np.clip(py @ w, _EPS, None)
        loss = -np.log(mix).mean()
        g_w = -(py / mix[:, None]).mean(0)           # d loss / d w
        g_a = w * (g_w - (w * g_w).sum())            # through the softmax
        return float(loss), g_a

    res = minimize(objective, np.zeros(m), jac=True, method="L-BFGS-B")
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def fit_weights(probs: Any, y: Any, objective: str = "accuracy", *, seed: int = 0) -> np.ndarray:
    """Soft-voting weights (M,) summing to 1, fitted on validation probabilities ``(M, N, C)`` and labels.

    - ``logloss``: minimise the mixture's negative log-likelihood (convex in the weights; L-BFGS on
      a softmax parametrisation).
    - ``accuracy``: maximise accuracy over a simplex grid (step 0.05 for up to 4 members, else 4,000
      Dirichlet samples) plus equal weights, each single member and the log-loss optimum; ties go
      to the lowest log-loss. Equal weights are a candidate, so the result is never worse than
      equal weights on the data it was fitted on (on other data it can be).
    - ``equal``: 1/M each.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown weight objective {objective!r} (known: {', '.join(OBJECTIVES)})")
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if probs.ndim != 3 or len(y) != probs.shape[1] or len(y) == 0:
        raise ConfigError(f"fit_weights: need (members, faces, classes) probabilities and one label per face, "
                          f"got {probs.shape} and {len(y)} labels")
    m = probs.shape[0]
    equal = np.full(m, 1.0 / m)
    if objective == "equal" or m == 1:
        return equal
    ll_opt = _fit_logloss(probs, y)
    if objective == "logloss":
        return ll_opt
    if m <= 4:
        grid = _simplex_grid(m, 0.05)
    else:
        grid = np.random.default_rng(seed).dirichlet(np.ones(m), size=4000)
    candidates = np.vstack([equal[None], np.eye(m), ll_opt[None], grid])
    mixed = np.einsum("km,mnc->knc", candidates, probs)              # (K, N, C)
    accs = (mixed.argmax(-1) == y[None]).mean(1)
    best = np.flatnonzero(accs >= accs.max() - 1e-12)
    losses = [log_loss(mixed[k], y) for k in best]
    return candidates[best[int(np.argmin(losses))]]


def fit_stacking(probs: Any, y: Any, *, c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Stacking coefficients ``(coef (C, M*C), intercept (C,))``: scikit-learn's multinomial
    logistic regression (L2, ``C=c``) on the members' log-probabilities (see :func:`stack_logits`).
    A class absent from ``y`` gets a very negative intercept."""
    from sklearn.linear_model import LogisticRegression

    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n_classes = probs.shape[2]
    feats = np.log(np.clip(probs, _EPS, None)).transpose(1, 0, 2).reshape(len(y), -1)
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit(feats, y)
    coef = np.zeros((n_classes, feats.shape[1]))
    intercept = np.full(n_classes, -30.0)
    if len(lr.classes_) == 2:  # binary: sklearn keeps one row for class 1
        coef[lr.classes_[1]], intercept[lr.classes_[1]] = lr.coef_[0], lr.intercept_[0]
        intercept[lr.classes_[0]] = 0.0
    else:
        coef[lr.classes_], intercept[lr.classes_] = lr.coef_, lr.intercept_
    return coef, intercept
