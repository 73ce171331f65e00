"""Fitting how an ensemble combines its members: the soft-voting weights and the stacking
regression, on a validation split; the combination rules themselves (``soft_vote``,
``majority_vote``, ``stack_logits``) are applied by the :class:`~ferkit.models.Ensemble` module and
live with it in ``ferkit.models`` (re-exported here).

All functions take the members' probabilities as one ``(M, N, C)`` array (members x faces x
classes, rows summing to 1).

>>> p = soft_vote(probs, weights)          # sum_m w_m p_m
>>> p = majority_vote(probs)               # (votes + mean p) / (M + 1): argmax = most votes, ties by mean p
>>> w = fit_weights(probs, y, "accuracy")  # never worse than equal weights on (probs, y)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ferkit.errors import ConfigError
from ferkit.models import ENSEMBLE_METHODS as METHODS
from ferkit.models import PROB_FLOOR, majority_vote, soft_vote, stack_logits

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

#: what ``fit_weights`` optimises on the validation split
OBJECTIVES = ("accuracy", "logloss", "equal")


def log_loss(p: Any, y: Any) -> float:
    """Mean negative log-likelihood of the labels ``y`` (N,) under probabilities ``p`` (N, C)."""
    p = np.asarray(p, dtype=np.float64)
    return float(-np.log(np.clip(p[np.arange(len(p)), np.asarray(y)], PROB_FLOOR, None)).mean())


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
        mix = np.clip(py @ w, PROB_FLOOR, None)
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
    feats = np.log(np.clip(probs, PROB_FLOOR, None)).transpose(1, 0, 2).reshape(len(y), -1)
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
