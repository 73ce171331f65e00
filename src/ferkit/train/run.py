"""`train(config)`: build the data module, the training system and a Lightning Trainer; fit.

No hand-written loop: devices, DDP, precision, checkpoints, early stopping and progress bars are
the Trainer's. This module only decides where things go (the run folder) and what gets written.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    EarlyStopping,
    ModelCheckpoint,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger

from ferkit import __version__
from ferkit._fileio import atomic_write_text, remove_stale_temporaries
from ferkit.errors import ConfigError, shorten
from ferkit.evaluate.benchmark import BF16_FLAGS, cpu_flags, machine_info
from ferkit.models import read_json
from ferkit.train.callbacks import AtomicCheckpointIO, RunFolderWriter
from ferkit.train.config import TrainConfig
from ferkit.train.datamodule import FERDataModule
from ferkit.train.module import FERLitModule

log = logging.getLogger("ferkit")
_RUN_DIR_ENV = "FERKIT_RUN_DIR"  # lets DDP worker processes (re-launched copies of the CLI) find rank 0's run folder


def _precision(cfg: TrainConfig) -> str:
    p = str(cfg.trainer.precision)
    on_gpu = torch.cuda.is_available() and cfg.trainer.accelerator in ("auto", "gpu", "cuda")
    if p == "auto":   # the fastest precision that is not emulated here
        if on_gpu:   # not Volta/Turing, where bf16 is emulated
            return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    if p.startswith("bf16") and not on_gpu and not cpu_has_native_bf16():
        log.warning("trainer.precision=%s on a CPU without native bf16 (AVX512-BF16 or AMX; this one has %s): "
                    "bf16 is emulated there and trains about 16x slower than fp32; add trainer.precision=32",
                    p, torch.backends.cpu.get_cpu_capability())
    return p


def _refusal(e: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only refusal that names the refused object ("... unsupported GLOBAL
    posix.system ..."; its first line is general advice), shortened at a word boundary."""
    lines = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    return shorten(next((line for line in lines if "GLOBAL" in line or "nsupported" in line), lines[0]))


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 instructions (AVX512-BF16, AMX, aarch64's BF16): there bf16 autocast
    made the default recipe 1.6x faster than fp32; elsewhere (AVX2, or AVX512 without BF16, where oneDNN
    still accepts bf16) it is emulated and about 16x slower."""
    return bool(BF16_FLAGS & set(cpu_flags()))


def _new_run_dir(cfg: TrainConfig) -> Path:
    if os.environ.get(_RUN_DIR_ENV):
        return Path(os.environ[_RUN_DIR_ENV])
    base = Path(cfg.output_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir, i = base, 1
    while run_dir.exists():  # never reuse (and overwrite) an existing run folder
        run_dir, i = base.with_name(f"{base.name}-{i}"), i + 1
    return run_dir


def train(config: TrainConfig | str | Path, overrides: list[str] | None = None, *,
          resume: str | Path | None = None) -> Path:
    """Train a model; returns the run folder.

    ``config``: a TrainConfig or a YAML path (``overrides`` are ``key.sub=value`` strings).
    ``resume``: a run folder whose ``checkpoints/last.ckpt`` is continued with the same config
    (overrides are refused then, so the resumed run ends where the uninterrupted one would).
    The folder holds ``config.yaml``, ``metrics.csv``, ``curves.png``, ``checkpoints/{best,last}.ckpt``,
    ``model.safetensors`` + ``model.json`` (the best model, all inference needs), ``machine.json`` (where
    it ran) and Lightning logs.
    """
    if resume is not None:
        run_dir = Path(resume)
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            raise ConfigError(f"{run_dir}: nothing to resume (no checkpoints/last.ckpt)")
        if overrides:
            raise ConfigError("--resume continues a run with its own config.yaml; overrides are not allowed")
        cfg = TrainConfig.load(run_dir / "config.yaml")
        for folder in (run_dir, run_dir / "checkpoints"):   # files a killed writer left half-written
            for stale in remove_stale_temporaries(folder):
                log.info("removed %s (left by an interrupted write)", stale)
    else:
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.load(config, overrides)
        ckpt = None
        run_dir = _new_run_dir(cfg)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = FERDataModule(cfg)
    dm.setup("fit")
    unknown = [c for c in cfg.model.export_classes or () if c not in dm.classes]
    if unknown:   # refused now, not at the first epoch's export
        raise ConfigError(f"model.export_classes: {', '.join(unknown)} not among the trained classes "
                          f"({', '.join(dm.classes)})")
    weights = dm.class_weights().tolist() if cfg.data.balance == "weights" else None
    prior = dm.class_prior()
    module = FERLitModule(cfg.to_dict(), dm.classes, weights, prior if cfg.loss.logit_adjust else None)

    meta = {
        "name": cfg.name,
        "classes": dm.classes,
        "input": {"size": cfg.input.size, "channels": cfg.input.channels, "mean": cfg.input.mean, "std": cfg.input.std,
                  **({"region": cfg.input.region} if cfg.input.region else {})},
        "model_kwargs": {"drop_rate": cfg.model.drop_rate, **cfg.model.kwargs},
        # class frequencies of the training targets: `prior=` at inference shifts from this prior
        "train_prior": [round(p, 6) for p in prior],
        "train": {"config": cfg.name, "data": cfg.data.path, "train_split": cfg.data.train_split,
                  "val_split": cfg.data.val_split, "run_dir": str(run_dir), "ferkit_version": __version__},
    }
    es = cfg.trainer.early_stopping
    mode = "min" if "loss" in es.monitor else "max"
    callbacks: list[L.Callback] = [
        ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=es.monitor, mode=mode,
                        save_top_k=1, enable_version_counter=False),
        # last.ckpt after every epoch (save_last alone only follows the best checkpoint's saves)
        ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                        every_n_epochs=1, enable_version_counter=False),
        RunFolderWriter(run_dir, meta, monitor="val/acc", export_classes=cfg.model.export_classes),
    ]
    if es.enabled:
        callbacks.append(EarlyStopping(monitor=es.monitor, mode=mode, patience=es.patience, min_delta=es.min_delta))
    if cfg.trainer.progress_bar:
        try:
            import rich  # noqa: F401
            callbacks.append(RichProgressBar(leave=True))
        except ImportError:
            callbacks.append(TQDMProgressBar())
    loggers: list = [CSVLogger(run_dir, name="logs", version="")]
    if cfg.trainer.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger
        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))

    precision = _precision(cfg)
    if ckpt is not None:   # a resumed run keeps the precision it started in (auto may resolve otherwise here)
        precision = (read_json(run_dir / "machine.json") or {}).get("precision") or precision
    trainer = L.Trainer(
        default_root_dir=run_dir,
        max_epochs=cfg.planned_epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        num_nodes=cfg.trainer.num_nodes,
        strategy=cfg.trainer.strategy,
        precision=precision,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # EpochSampler shards by rank itself
        deterministic=False,
    )
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is None:
            atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        # the machine of each (re)start, so that epoch times can be read with it
        used = str(trainer.precision)   # Lightning's name for it: 32-true, bf16-mixed, ...
        atomic_write_text(run_dir / "machine.json", json.dumps({**machine_info(), "precision": used}, indent=2) + "\n")
        log.info("run folder: %s (precision %s)", run_dir, used)
    os.environ[_RUN_DIR_ENV] = str(run_dir.resolve())  # inherited by DDP processes launched during fit
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*Checkpoint directory.*exists and is not empty.*")
            # the module's hook (batch augmentation) is meant to run; the datamodule has none
            warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
            # a resumed checkpoint is read with weights_only=True: tensors and plain containers only,
            # so a crafted last.ckpt cannot run code (the message names the file)
            try:
                trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
            except pickle.UnpicklingError as e:
                raise ConfigError(f"{ckpt}: refused, not a plain checkpoint ({_refusal(e)})") from None
    finally:
        os.environ.pop(_RUN_DIR_ENV, None)
    return run_dir
