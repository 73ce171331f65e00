"""Callbacks that write a run folder: per-epoch metrics CSV, curves, best model as safetensors+JSON."""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ferkit._fileio import atomic_path, atomic_write_text

log = logging.getLogger("ferkit")

EPOCH_COLUMNS = ["epoch", "phase", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1",
                 "epoch_time_s"]


def read_epoch_metrics(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    ints = ("epoch", "phase")

    def parse(key: str, value: str | None) -> Any:
        if value in ("", None):
            return None
        return int(float(value)) if key in ints else float(value)

    with p.open() as f:
        return [{k: parse(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints are written to a temporary file and renamed, so `kill -9` never leaves half a file."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: Any = None) -> None:
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())


class RunFolderWriter(L.Callback):
    """Rank zero writes ``metrics.csv`` (one row per epoch, with wall time) and ``curves.png`` after
    every epoch, and exports the best model (by ``monitor``) as ``model.safetensors`` + ``model.json``,
    restricted to ``export_classes`` when given (``ferkit.models.restrict_classes``)."""

    def __init__(self, run_dir: Path, meta: dict[str, Any], monitor: str = "val/acc",
                 export_classes: list[str] | None = None):
        self.run_dir, self.meta, self.monitor = Path(run_dir), meta, monitor
        self.export_classes = export_classes
        self.best: float = -math.inf
        self._t0 = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best", -math.inf)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or float(value) <= self.best:
            return
        self.best = float(value)
        from ferkit.models import restrict_classes, save_model
        metrics = {k.replace("/", "_"): round(float(v), 6) for k, v in trainer.callback_metrics.items()
                   if k.startswith("val/")}
        meta = dict(self.meta, metrics=dict(metrics, epoch=trainer.current_epoch))
        net = pl_module.export_net() if hasattr(pl_module, "export_net") else pl_module.net
        if self.export_classes:
            net, meta = restrict_classes(net, meta, list(self.export_classes))
        save_model(net, self.run_dir / "model", meta)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics

        def get(key: str) -> float | None:
            return round(float(m[key]), 6) if key in m else None

        epoch = trainer.current_epoch
        row = {
            "epoch": epoch, "phase": pl_module.phase_of_epoch(epoch),
            "lr": trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None,
            "train_loss": get("train/loss_epoch"), "train_acc": get("train/acc"), "val_loss": get("val/loss"),
            "val_acc": get("val/acc"), "val_macro_f1": get("val/macro_f1"),
            "epoch_time_s": round(time.perf_counter() - self._t0, 2),
        }
        path = self.run_dir / "metrics.csv"
        rows = [r for r in read_epoch_metrics(path) if r["epoch"] < epoch] + [row]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=EPOCH_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in EPOCH_COLUMNS})
        atomic_write_text(path, buf.getvalue())
        from ferkit.viz import plot_training_curves
        try:
            plot_training_curves(rows, self.run_dir / "curves.png", title=self.meta.get("name", ""))
        except Exception as e:  # noqa: BLE001 - a plot must never stop training
            log.warning("could not draw training curves: %s", e)
