"""Matplotlib figures (Agg backend, files only)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


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
        return _save(fig, path)
    finally:
        plt.close(fig)
