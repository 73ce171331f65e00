"""Percentile-bootstrap confidence intervals for accuracy, macro-F1 and per-class recall.

Each resample draws the resampling units (images, or groups of images such as the frames of one
subject) with replacement, as many as there are units, and recomputes the metrics on the drawn
images; the interval is the (2.5, 97.5) percentile range of the ``n_boot`` recomputed values
(Efron & Tibshirani 1993, ch. 13). Resampling groups (a cluster bootstrap) is the honest choice
when images are not independent: the near-identical frames of one CK+ sequence are one piece of
evidence, not twenty, and resampling them one by one gives intervals that are too narrow.

Vectorised with numpy: every unit is reduced once to its counts (images, hits and, per class,
true / predicted / hit counts), and a block of resamples is a ``(block, units)`` matrix of draw
counts multiplied by that ``(units, 1 + 3C)`` table. Memory is bounded by resampling in blocks of
about four million draws. Seeded: the same inputs, ``n_boot`` and ``seed`` give the same interval.

Definitions match the point estimates of :func:`ferkit.evaluate.metrics.compute_metrics`
(scikit-learn with ``labels=range(C)``, ``zero_division=0``): F1 of a class is
``2 tp / (true + predicted)`` and 0 when the class is neither present nor predicted; macro-F1
averages every class. A prediction of ``-1`` (no face found by ``evaluate --detect``) is wrong
and predicts no class. A class absent from a resample has no recall there; its interval is taken
over the resamples that hold it (``None`` when none does).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ferkit.errors import ConfigError, DataError

__all__ = ["CI_METHOD", "DEFAULT_N_BOOT", "DEFAULT_SEED", "bootstrap_ci", "resample_counts"]

CI_METHOD = "percentile bootstrap"
#: resamples per interval: the Monte Carlo error of a 95 % percentile bound is then ~0.1 of the
#: interval's width (Efron & Tibshirani recommend >= 1000 for percentile intervals)
DEFAULT_N_BOOT = 1000
DEFAULT_SEED = 0
#: draws per block of resamples (bounds the (block, units) count matrix to ~32 MB of int64)
_BLOCK_DRAWS = 4_000_000


def resample_counts(n_units: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n_units)`` int64: how often each unit is drawn in each of ``n_boot`` resamples of
    ``n_units`` draws with replacement. Row ``b`` uses the ``b``-th block of ``n_units`` integers
    of ``rng.integers(0, n_units, size=(n_boot, n_units))``."""
    idx = rng.integers(0, n_units, size=(n_boot, n_units))
    flat = (idx + np.arange(n_boot, dtype=np.int64)[:, None] * n_units).ravel()
    return np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units)


def _unit_table(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, unit: np.ndarray, n_units: int) -> np.ndarray:
    """``(n_units, 1 + 3C)`` float64 per unit: images, then per class hits, true counts, predicted counts."""
    rows = np.arange(len(y_true))
    per_image = np.zeros((len(y_true), 1 + 3 * n_classes))
    per_image[:, 0] = 1.0
    hit = y_pred == y_true
    per_image[rows[hit], 1 + y_true[hit]] = 1.0
    per_image[rows, 1 + n_classes + y_true] = 1.0
    found = y_pred >= 0
    per_image[rows[found], 1 + 2 * n_classes + y_pred[found]] = 1.0
    table = np.zeros((n_units, per_image.shape[1]))
    np.add.at(table, unit, per_image)
    return table


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    """Percentile interval of the finite values (None when there are none)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return [round(float(lo), 6), round(float(hi), 6)]


def bootstrap_ci(
    y_true: np.ndarray | Sequence[int], y_pred: np.ndarray | Sequence[int], classes: Sequence[str], *,
    groups: np.ndarray | Sequence[str] | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile-bootstrap intervals of accuracy, macro-F1 and per-class recall.

    Args:
        y_true: ``(N,)`` int indices into ``classes``.
        y_pred: ``(N,)`` int predicted indices; ``-1`` is an image without a prediction (always wrong).
        classes: class names (the keys of ``recall``).
        groups: ``(N,)`` group id per image (e.g. subject ids); resample groups instead of images.
        n_boot: resamples (>= 1).
        seed: seed of ``numpy.random.default_rng``.
        level: coverage of the interval (0.95: the 2.5th and 97.5th percentiles).

    Returns:
        ``{"method", "n_boot", "seed", "resample" ("images" | "groups"), "n_groups" (int, or None
        when images are resampled), "accuracy": [lo, hi], "macro_f1": [lo, hi], "recall": {class:
        [lo, hi] | None}}``: plain floats, JSON-ready.

    Raises ConfigError for a bad ``n_boot`` or ``level``, DataError for mismatched lengths, no
    images, or fewer than two groups.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot (bootstrap resamples) must be a positive integer, not {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"confidence level must be between 0 and 1, not {level!r}")
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n, c = len(y_true), len(classes)
    if len(y_pred) != n:
        raise DataError(f"bootstrap: {n} labels but {len(y_pred)} predictions")
    if n == 0:
        raise DataError("bootstrap: no images")
    if y_true.min() < 0 or y_true.max() >= c or y_pred.max() >= c or y_pred.min() < -1:
        raise DataError(f"bootstrap: labels and predictions must be class indices in 0..{c - 1} "
                        "(predictions may be -1)")
    if groups is None:
        unit, n_units = np.arange(n), n
    else:
        g = np.asarray(groups)
        if len(g) != n:
            raise DataError(f"bootstrap: {len(g)} group ids for {n} images")
        _, unit = np.unique(g, return_inverse=True)
        n_units = int(unit.max()) + 1
        if n_units < 2:
            raise DataError(f"bootstrap: all {n} images are in one group ({g[0]!s}); groups cannot be resampled")
    table = _unit_table(y_true, y_pred, c, unit, n_units)

    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_DRAWS // n_units)
    stats = []
    for start in range(0, n_boot, block):
        counts = resample_counts(n_units, min(block, n_boot - start), rng).astype(np.float64)
        stats.append(counts @ table)
    s = np.concatenate(stats)                      # (n_boot, 1 + 3C)
    images, hits = s[:, 0], s[:, 1 : 1 + c]
    true, pred = s[:, 1 + c : 1 + 2 * c], s[:, 1 + 2 * c :]
    accuracy = hits.sum(axis=1) / images
    f1 = np.divide(2.0 * hits, true + pred, out=np.zeros_like(hits), where=(true + pred) > 0)
    macro_f1 = f1.mean(axis=1)
    recall = np.divide(hits, true, out=np.full_like(hits, np.nan), where=true > 0)
    return {
        "method": CI_METHOD,
        "n_boot": int(n_boot),
        "seed": int(seed),
        "resample": "images" if groups is None else "groups",
        "n_groups": None if groups is None else n_units,
        "accuracy": _interval(accuracy, level),
        "macro_f1": _interval(macro_f1, level),
        "recall": {name: _interval(recall[:, k], level) for k, name in enumerate(classes)},
    }
