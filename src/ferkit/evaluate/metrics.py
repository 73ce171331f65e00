"""Classification and calibration metrics from true labels and predicted probabilities.

Everything is computed with scikit-learn (accuracy, precision/recall/F1/support, one-vs-rest ROC
AUC and ROC curves, confusion counts, log loss) except the expected calibration error, which
scikit-learn does not provide for multi-class top-1 confidence and is computed here with numpy.

Inputs are plain arrays: ``y_true`` (N,) int indices into ``classes`` and ``probs`` (N, C) float,
rows summing to 1. Outputs are JSON-ready (floats, ints, lists; ``None`` where a value is undefined,
never NaN).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_ECE_BINS", "compute_metrics", "expected_calibration_error", "reliability_bins", "roc_curves"]

#: number of equal-width confidence bins for ECE and the reliability diagram
DEFAULT_ECE_BINS = 15


def _float(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = DEFAULT_ECE_BINS) -> dict[str, Any]:
    """Top-1 confidence histogram: ``n_bins`` equal-width bins over [0, 1].

    Returns ``{"n_bins", "edges" (n_bins + 1), "confidence", "accuracy", "count"}``: per bin the
    mean confidence and accuracy of the samples whose top-1 confidence falls in it (``None`` for an
    empty bin) and their count. A confidence exactly on an edge goes to the bin below it (bins are
    ``(lo, hi]``; the first bin also holds 0).
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=n_bins)
    nz = count > 0
    return {
        "n_bins": int(n_bins),
        "edges": [float(e) for e in edges],
        "confidence": [float(s / k) if k else None for s, k in zip(conf_sum, count)],
        "accuracy": [float(s / k) if k else None for s, k in zip(acc_sum, count)],
        "count": [int(k) for k in count],
        "_gap": float(np.abs(acc_sum[nz] - conf_sum[nz]).sum() / max(len(conf), 1)),
    }


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """ECE of the top-1 confidence: sum over bins of (bin size / N) * |accuracy - mean confidence|,
    with ``n_bins`` equal-width bins (Guo et al. 2017). 0 is perfectly calibrated."""
    return reliability_bins(y_true, probs, n_bins)["_gap"]


def roc_curves(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One-vs-rest ROC curve per class: ``{class: {"fpr": [...], "tpr": [...], "auc": float | None}}``.

    A class without positives or without negatives has no curve: empty lists and ``auc`` None.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true = np.asarray(y_true)
    out: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(classes):
        pos = y_true == k
        if pos.all() or not pos.any():
            out[name] = {"fpr": [], "tpr": [], "auc": None}
            continue
        fpr, tpr, _ = roc_curve(pos, probs[:, k])
        out[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(roc_auc_score(pos, probs[:, k]))}
    return out


#: the false-positive rates at which ``metrics.json`` keeps each ROC curve (101 points: a figure's worth)
ROC_GRID = np.linspace(0.0, 1.0, 101)


def roc_summary(curves: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """ROC curves (:func:`roc_curves`) on :data:`ROC_GRID` for ``metrics.json``: ``{"fpr": [...],
    "tpr": {class: [...] | None}}``, from which ``roc_curves.png`` can be drawn again without the predictions."""
    def on_grid(fpr: Sequence[float], tpr: Sequence[float]) -> list[float]:
        # the highest true-positive rate reached at or below each grid point (the curve's steps kept)
        at = np.searchsorted(np.asarray(fpr), ROC_GRID, side="right") - 1
        return np.round(np.asarray(tpr)[np.clip(at, 0, None)], 4).tolist()

    tpr = {name: None if c.get("auc") is None else on_grid(c["fpr"], c["tpr"]) for name, c in curves.items()}
    return {"fpr": np.round(ROC_GRID, 4).tolist(), "tpr": tpr}


def compute_metrics(
    y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], *, n_bins: int = DEFAULT_ECE_BINS,
) -> dict[str, Any]:
    """All metrics of the ``metrics.json`` schema that depend on predictions only.

    ``y_pred`` is ``probs.argmax(1)``. Per-class and averaged precision/recall/F1 use every class
    in ``classes`` as a label (scikit-learn's ``labels=range(C)``, ``zero_division=0``), so a class
    with no images still counts in the macro average; ``auc`` is one-vs-rest ``roc_auc_score`` of
    that class's probability, ``None`` when the class has no images (or only images of it);
    ``mean_auc`` is the mean of the defined per-class AUCs (scikit-learn's ``multi_class="ovr"``,
    macro average, when every class is present). ``nll`` is scikit-learn's ``log_loss``.

    Returns a dict with ``n_images, accuracy, macro_precision, macro_recall, macro_f1,
    weighted_precision, weighted_recall, weighted_f1, mean_auc, ece, nll, per_class, confusion,
    reliability``.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, c = probs.shape
    if len(y_true) != n or c != len(classes):
        raise ValueError(f"compute_metrics: {len(y_true)} labels, probs {probs.shape}, {len(classes)} classes")
    if n == 0:
        raise ValueError("compute_metrics: no samples")
    labels = list(range(c))
    y_pred = probs.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    avg = {}
    for how in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=how, zero_division=0)
        avg[how] = (float(p), float(r), float(f))
    curves = roc_curves(y_true, probs, classes)
    aucs = [curves[name]["auc"] for name in classes]
    defined = [a for a in aucs if a is not None]
    rel = reliability_bins(y_true, probs, n_bins)
    ece = rel.pop("_gap")
    per_class = {
        name: {"precision": float(prec[k]), "recall": float(rec[k]), "f1": float(f1[k]),
               "support": int(support[k]), "auc": aucs[k]}
        for k, name in enumerate(classes)
    }
    return {
        "n_images": int(n),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": avg["macro"][0], "macro_recall": avg["macro"][1], "macro_f1": avg["macro"][2],
        "weighted_precision": avg["weighted"][0], "weighted_recall": avg["weighted"][1],
        "weighted_f1": avg["weighted"][2],
        "mean_auc": float(np.mean(defined)) if defined else None,
        "ece": float(ece),
        "nll": _float(log_loss(y_true, probs, labels=labels)),
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).astype(int).tolist(),
        "reliability": rel,
    }
