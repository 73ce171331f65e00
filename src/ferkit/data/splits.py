"""Split helpers: stratified hold-out, stratified subsets, (group) k-fold, subject ids, class weights.

Every function takes plain label arrays (int class indices) and returns sorted int64 index
arrays, so the results apply to any aligned array (``FaceSet.select``). scikit-learn is imported
on first use only, to keep ``import ferkit.data`` light.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from ferkit.errors import DataError


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float = 0.1, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A random hold-out keeping class proportions -> (train_idx, val_idx), sorted.

    Classes with a single sample cannot be split and stay in train.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    y = np.asarray(labels)
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    classes, counts = np.unique(y, return_counts=True)
    splittable = np.flatnonzero(np.isin(y, classes[counts >= 2]))
    n_val = round(len(y) * val_fraction)
    if n_val < 1 or len(splittable) - n_val < 1:
        raise DataError(f"cannot hold out {val_fraction:.0%} of {len(y)} samples for validation")
    sub = y[splittable]
    n_classes = len(np.unique(sub))
    if n_val < n_classes or len(sub) - n_val < n_classes:
        raise DataError(f"a stratified split of {len(y)} samples needs at least {n_classes} in train and in "
                        f"validation; val_fraction {val_fraction} gives {n_val}")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    _, val = next(splitter.split(np.zeros(len(sub)), sub))
    val_idx = np.sort(splittable[val]).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx).astype(np.int64)
    return train_idx, val_idx


def stratified_subset(labels: Sequence[int] | np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` sample indices (sorted) keeping class proportions; every class present keeps at least one.

    Per-class sizes are the proportional quotas rounded by largest remainder; ``n`` at least the
    number of samples returns everything.
    """
    y = np.asarray(labels)
    if n >= len(y):
        return np.arange(len(y), dtype=np.int64)
    classes, counts = np.unique(y, return_counts=True)
    if n < len(classes):
        raise DataError(f"a subset of {n} samples cannot hold one sample of each of the {len(classes)} classes")
    quota = counts * n / len(y)
    take = np.clip(np.floor(quota).astype(np.int64), 1, counts)
    while take.sum() != n:                     # at most one step per class either way
        gap = quota - take
        if take.sum() < n:
            gap[take >= counts] = -np.inf
            take[np.argmax(gap)] += 1
        else:
            gap[take <= 1] = np.inf
            take[np.argmin(gap)] -= 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def kfold_splits(
    labels: Sequence[int] | np.ndarray, k: int = 5, seed: int = 0, groups: Sequence[str] | np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified folds -> [(train_idx, val_idx)] (sorted). With ``groups`` (subject ids) the
    folds are identity-disjoint (StratifiedGroupKFold): no subject is in train and val of a fold."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(labels)
    units, what = (len(y), "samples") if groups is None else (len(np.unique(np.asarray(groups))), "subjects")
    if k < 2 or k > units:
        raise DataError(f"cannot make {k} folds from {units} {what} (need 2 <= k <= {units})")
    if groups is None:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    else:
        g = np.asarray(groups)
        if len(g) != len(y):
            raise DataError(f"groups has {len(g)} entries for {len(y)} labels")
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, g)
    return [(np.sort(t).astype(np.int64), np.sort(v).astype(np.int64)) for t, v in folds]


def subject_ids(names: Sequence[str] | np.ndarray, regex: str | re.Pattern[str]) -> np.ndarray:
    """Subject id per file: the first group of ``re.search(regex, file name)`` (the whole match when
    the pattern has no group), searched in the base name of each path, e.g. ``r"(S\\d+)_"`` gives
    ``S010`` for CK+'s ``S010_004_00000019.png``. A name that does not match -> DataError naming it."""
    try:
        pattern = re.compile(regex)
    except re.error as e:
        raise DataError(f"group regex {regex!r}: {e}") from None
    out = []
    for name in names:
        m = pattern.search(os.path.basename(str(name)))
        sid = None if m is None else m.group(1) if pattern.groups else m.group(0)
        if not sid:
            raise DataError(f"{name}: file name does not match the group regex {pattern.pattern!r}")
        out.append(sid)
    return np.array(out, dtype=str)


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """"Balanced" inverse-frequency weights (num_classes,) float32: n / (present classes * count);
    a class without samples gets 0. The sample-weighted mean weight is 1."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    if len(counts) > num_classes:
        raise DataError(f"label {len(counts) - 1} out of range for {num_classes} classes")
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)
