"""Matplotlib figures (Agg backend, files only)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferkit._fileio import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure atomically (the format follows the extension)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return Path(path)


def plot_training_curves(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Accuracy and loss per epoch, train vs. validation, side by side (the papers' figure)."""
    plt = _pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] + 1 for r in rows]
    for ax, key in ((ax_acc, "acc"), (ax_loss, "loss")):
        for split, style in (("train", "-o"), ("val", "-s")):
            ys = [r.get(f"{split}_{key}") for r in rows]
            pts = [(e, y) for e, y in zip(epochs, ys) if y is not None]
            if pts:
                ax.plot(*zip(*pts), style, ms=3, label="validation" if split == "val" else "train")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_track_emotions(
    rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "", max_tracks: int = 12
) -> Path:
    """Each track's emotion probabilities over time, one panel per track (the longest first).

    Args:
        rows: one mapping per face per processed frame with ``track_id``, ``time_s`` and
            ``probabilities`` (class -> probability), e.g. ``FrameResult.to_dict()`` faces with the
            frame's ``time_s`` added.
        path: the image file to write (atomically).
        max_tracks: panels at most; shorter tracks beyond that are left out (and named in the title).
    """
    plt = _pyplot()
    from ferkit.viz.annotate import emotion_color

    tracks: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        tracks.setdefault(r.get("track_id"), []).append(r)
    order = sorted(tracks, key=lambda k: (-len(tracks[k]), str(k)))
    shown = sorted(order[:max_tracks], key=lambda k: (k is None, k if isinstance(k, (int, float)) else str(k)))
    n = max(1, len(shown))
    cols = 1 if n == 1 else 2
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(7 * cols, 2.3 * nrows + 1.0), squeeze=False, sharex=True)
    classes: list[str] = []
    for r in rows:
        for c in r.get("probabilities", {}):
            if c not in classes:
                classes.append(c)
    for ax, tid in zip(axes.flat, shown):
        pts = sorted(tracks[tid], key=lambda r: r["time_s"])
        t = [r["time_s"] for r in pts]
        for c in classes:
            col = tuple(v / 255 for v in emotion_color(c))
            ax.plot(t, [r["probabilities"].get(c, 0.0) for r in pts], "-", lw=1.3, color=col, label=c,
                    marker="." if len(pts) < 30 else None)
        ax.set_ylim(0, 1)
        ax.set_title(f"track {tid}" if tid is not None else "faces", fontsize=9)
        ax.set_ylabel("probability")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    if not shown:
        axes.flat[0].text(0.5, 0.5, "no faces", ha="center", va="center", transform=axes.flat[0].transAxes)
    extra = f" ({len(order) - len(shown)} shorter tracks not shown)" if len(order) > len(shown) else ""
    fig.suptitle((title or "emotions per track") + extra)
    bottom = 0.0
    if classes and shown:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(classes), 8), fontsize=8, frameon=False)
        bottom = 0.45 / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
