"""Figures of the evaluation report and the model comparison (matplotlib, Agg backend, files only).

Every function takes plain data (lists, numpy arrays, strings), writes one PNG atomically and
returns its path; none runs a model or computes a metric.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.viz.plots import save_figure

__all__ = [
    "plot_accuracy_vs_latency",
    "plot_confusion_matrix",
    "plot_prediction_grid",
    "plot_reliability_diagram",
    "plot_roc_curves",
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _finish(plt: Any, fig: Any, path: str | Path) -> Path:
    """Save ``fig`` as ``path`` atomically (temporary file beside it, then rename) and close it."""
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[str], path: str | Path, title: str = "",
) -> Path:
    """Heat map of the confusion matrix normalised by true class (each row sums to 100 %).

    ``confusion[i][j]`` counts images of true class ``classes[i]`` predicted as ``classes[j]``; each
    cell shows the row percentage and the count. A class without images has an empty row.
    """
    plt = _pyplot()
    counts = np.asarray(confusion, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    n = len(classes)
    side = max(4.5, 0.8 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    for i in range(n):
        for j in range(n):
            colour = "white" if norm[i, j] > 0.6 else "black"
            ax.text(j, i, f"{100 * norm[i, j]:.0f}%\n{int(counts[i, j])}", ha="center", va="center",
                    color=colour, fontsize=8)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix (normalised by true class)")
    return _finish(plt, fig, path)


def plot_roc_curves(curves: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """One-vs-rest ROC curve of each class: ``curves[class] = {"fpr": [...], "tpr": [...], "auc": float | None}``;
    classes without a curve (no images) are listed in the legend as ``n/a``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    for name, c in curves.items():
        if c.get("auc") is None or not len(c.get("fpr", [])):
            ax.plot([], [], label=f"{name} (AUC n/a)")
            continue
        ax.plot(c["fpr"], c["tpr"], lw=1.6, label=f"{name} (AUC {c['auc']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC curves (one vs. rest)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _finish(plt, fig, path)


def plot_reliability_diagram(
    confidence: Sequence[float | None], accuracy: Sequence[float | None], count: Sequence[int], path: str | Path,
    ece: float | None = None, title: str = "",
) -> Path:
    """Reliability diagram: accuracy per top-1-confidence bin (equal-width bins over [0, 1], one
    entry per bin, ``None`` for empty bins) against the diagonal, with the gap to each bin's mean
    confidence shaded, and the bin sizes below."""
    plt = _pyplot()
    n_bins = len(count)
    edges = np.linspace(0, 1, n_bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / n_bins
    acc = np.array([np.nan if a is None else a for a in accuracy], dtype=np.float64)
    conf = np.array([np.nan if c is None else c for c in confidence], dtype=np.float64)
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ok = ~np.isnan(acc)
    ax.bar(centres[ok], acc[ok], width=width * 0.95, color="tab:blue", edgecolor="navy", label="accuracy")
    ax.bar(centres[ok], (conf - acc)[ok], bottom=acc[ok], width=width * 0.95, color="tab:red", alpha=0.3,
           hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title((title or "Reliability diagram") + (f"  (ECE {ece:.3f})" if ece is not None else ""))
    ax.grid(alpha=0.3)
    ax_n.bar(centres, list(count), width=width * 0.95, color="grey")
    ax_n.set_xlim(0, 1)
    ax_n.set_xlabel("confidence (top-1 probability)")
    ax_n.set_ylabel("images")
    return _finish(plt, fig, path)


def plot_prediction_grid(
    images: Sequence[np.ndarray], true: Sequence[str], pred: Sequence[str], confidence: Sequence[float],
    path: str | Path, ncols: int = 8, title: str = "",
) -> Path:
    """Faces with their true label, predicted label and confidence; misclassified faces get a red
    frame and red text, correct ones green. ``images`` are uint8 (H, W) grey or (H, W, 3) RGB."""
    plt = _pyplot()
    n = len(images)
    if n == 0:
        raise ValueError("plot_prediction_grid: no images")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.55 * ncols, 1.95 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        img = np.asarray(images[k])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        wrong = true[k] != pred[k]
        colour = "red" if wrong else "green"
        for side in ax.spines.values():
            side.set_edgecolor(colour)
            side.set_linewidth(3 if wrong else 1.5)
        mark = "\u2717 " if wrong else ""
        ax.set_title(f"{mark}{pred[k]} {confidence[k]:.2f}\ntrue: {true[k]}", fontsize=7, color=colour)
    fig.suptitle(title or "Predictions (red: misclassified; predicted label, confidence, true label)", fontsize=9)
    fig.tight_layout()
    return _finish(plt, fig, path)


def plot_accuracy_vs_latency(
    names: Sequence[str], latency_ms: Sequence[float], accuracy: Sequence[float | None], path: str | Path,
    params: Sequence[int] | None = None, title: str = "",
) -> Path:
    """Scatter of accuracy against CPU latency per face (log scale); marker area grows with the
    parameter count when ``params`` is given. Models without an accuracy are left out."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    pts = [(nm, lat, acc, params[i] if params is not None else None)
           for i, (nm, lat, acc) in enumerate(zip(names, latency_ms, accuracy)) if acc is not None and lat]
    if pts:
        big = max((p for *_, p in pts if p), default=1) or 1
        for nm, lat, acc, p in pts:
            size = 40 + 400 * (p / big) if p else 60
            ax.scatter([lat], [100 * acc], s=size, alpha=0.7, edgecolors="black")
            ax.annotate(nm, (lat, 100 * acc), textcoords="offset points", xytext=(6, 6), fontsize=8)
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        lats = [lat for _, lat, _, _ in pts]
        ax.set_xlim(min(lats) / 1.6, max(lats) * 2.5)
        ax.margins(y=0.15)
    ax.set_xlabel("CPU latency per face, batch 1 (ms, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title or "Accuracy vs. latency")
    return _finish(plt, fig, path)
