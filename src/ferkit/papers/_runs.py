"""The training runs behind the papers' tables: which recipe, which run folder, trained, resumed or reused.

A run folder is reused when its ``config.yaml`` is the recipe's config (apart from where runs go
and the progress bar); an interrupted one is resumed from ``checkpoints/last.ckpt``. So the same
command rebuilds a table without retraining, and continues where a killed one stopped.
"""
from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.errors import ConfigError
from ferkit.models import read_json
from ferkit.papers._catalog import RECIPES, Paper, PaperRun
from ferkit.train.callbacks import read_epoch_metrics
from ferkit.train.config import TrainConfig, shipped_config

__all__ = ["RunState", "choose_recipe", "find_run", "recipe_config", "run_name", "run_state", "train_run"]

log = logging.getLogger("ferkit")

# config keys that do not change what a run learns: where it is written, how fast it goes (threads, loader
# workers, the precision: ``auto`` is bf16 where the hardware has it, so a recipe's runs may differ in it;
# machine.json and the table record the one each run used)
_IGNORED = (("output_dir",), ("trainer", "progress_bar"), ("trainer", "threads"), ("data", "num_workers"),
            ("trainer", "precision"))


def run_name(paper: Paper, run: PaperRun, recipe: str) -> str:
    return f"{paper.key}_{run.key}_{recipe}"


def choose_recipe(run: PaperRun, recipe: str, pretrained: str | None = None) -> str:
    """``auto``: ``imagenet`` when a weights file is given or torchvision's ImageNet weights of the
    run's architecture are in the TORCH_HOME cache, else ``scratch48``. A network torchvision has no
    ImageNet weights of (SPP-net, vgg_fer) is trained from scratch under either recipe, unless given a file."""
    if recipe not in ("auto", *RECIPES):
        raise ConfigError(f"--recipe {recipe!r}: expected auto, {', '.join(RECIPES)}")
    if pretrained:
        if recipe == "scratch48":
            raise ConfigError(f"--pretrained {run.key}={pretrained}: the scratch48 recipe trains from scratch "
                              "(use --recipe auto or imagenet)")
        return "imagenet"
    if recipe == "scratch48":
        return recipe
    from ferkit.models import imagenet_cache_file

    arch = TrainConfig.load(shipped_config(run.config)).model.name
    try:
        cached = imagenet_cache_file(arch).is_file()
    except ValueError:  # torchvision has no ImageNet weights of that name
        return "scratch48"
    return "imagenet" if recipe == "imagenet" or cached else "scratch48"


def recipe_config(paper: Paper, run: PaperRun, recipe: str, runs_dir: str | Path, *,
                  pretrained: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The TrainConfig of ``run`` under ``recipe``; ``overrides`` come last (quick checks)."""
    if recipe == "scratch48":
        ov = [*run.scratch, *run.extra]
    elif recipe == "imagenet":
        ov = [*run.extra, f"model.pretrained={pretrained or 'true'}"]
    else:
        raise ConfigError(f"recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
    ov += [f"name={run_name(paper, run, recipe)}", f"output_dir={runs_dir}", "trainer.progress_bar=false", *overrides]
    return TrainConfig.load(shipped_config(run.config), ov)


def _comparable(cfg: TrainConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    for path in _IGNORED:
        node = d
        for k in path[:-1]:
            node = node.get(k, {})
        node.pop(path[-1], None)
    return d


def find_run(runs_dir: str | Path, cfg: TrainConfig) -> Path | None:
    """The folder ``<runs_dir>/<cfg.name>-*`` trained with ``cfg`` (None if there is none); of several, a
    complete one before a stopped one, one with a model before one without, then the last trained (the
    newest ``metrics.csv``): a folder moved in under any name (``<run name>-gpu``) is weighed the same."""
    want = _comparable(cfg)
    found = []
    for folder in sorted(Path(runs_dir).glob(f"{cfg.name}-*")):
        try:
            if _comparable(TrainConfig.load(folder / "config.yaml")) == want:
                found.append(folder)
        except (ConfigError, OSError) as e:
            log.warning("%s: skipped, its config.yaml cannot be read (%s)", folder, e)
    if len(found) < 2:
        return found[0] if found else None

    def rank(folder: Path) -> tuple[bool, bool, float]:
        state, metrics = run_state(folder, cfg), folder / "metrics.csv"
        return state.complete, state.has_model, metrics.stat().st_mtime if metrics.is_file() else 0.0

    return max(found, key=rank)


@dataclass
class RunState:
    folder: Path
    epochs_done: int
    epochs_planned: int
    complete: bool           # every planned epoch ran, or early stopping ended it
    has_model: bool          # model.safetensors (the best epoch so far) exists
    best_epoch: int | None
    s_per_epoch: float | None    # median over the run's epochs
    machine: str | None          # machine.json of its last (re)start
    precision: str | None = None     # the precision it trained in (None: not recorded by older runs)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder.name, "epochs_done": self.epochs_done, "epochs_planned": self.epochs_planned,
                "complete": self.complete, "best_epoch": self.best_epoch, "s_per_epoch": self.s_per_epoch,
                "machine": self.machine, "precision": self.precision}


def _epochs_without_improvement(rows: list[dict[str, Any]], cfg: TrainConfig) -> int:
    """The epochs since the early-stopping metric last improved by more than its ``min_delta``, counted as
    Lightning's EarlyStopping counts them (its metric ``val/x`` is the ``val_x`` column of metrics.csv)."""
    es = cfg.trainer.early_stopping
    sign = -1.0 if "loss" in es.monitor else 1.0        # as train.run's mode: min for a loss, else max
    best, since = None, 0
    for value in (r.get(es.monitor.replace("/", "_")) for r in rows):
        if value is not None and (best is None or sign * (value - best) > es.min_delta):
            best, since = value, 0
        else:
            since += 1
    return since


def run_state(folder: Path, cfg: TrainConfig) -> RunState:
    rows = read_epoch_metrics(folder / "metrics.csv")
    done = len(rows)
    planned = cfg.planned_epochs
    accs = [r.get("val_acc") for r in rows]
    best = max(range(done), key=lambda i: accs[i] if accs[i] is not None else -1.0) if done else None
    es = cfg.trainer.early_stopping
    stopped = es.enabled and _epochs_without_improvement(rows, cfg) >= es.patience
    times = [r["epoch_time_s"] for r in rows if r.get("epoch_time_s")]
    recorded = read_json(folder / "machine.json", warn=log.warning) or {}
    machine, precision = recorded.get("machine"), recorded.get("precision")
    return RunState(folder, done, planned, done >= planned or stopped, (folder / "model.safetensors").is_file(),
                    best, round(statistics.median(times), 1) if times else None, machine, precision)


def train_run(cfg: TrainConfig, runs_dir: str | Path, *, train: bool = True) -> RunState | None:
    """Reuse, resume or train the run of ``cfg``; with ``train=False`` only find it (None if none)."""
    folder = find_run(runs_dir, cfg)
    if folder is not None:
        state = run_state(folder, cfg)
        if state.complete or not train:
            return state
        if (folder / "checkpoints" / "last.ckpt").is_file():
            log.info("%s: resuming at epoch %d of %d", folder, state.epochs_done, state.epochs_planned)
            from ferkit.train import train as fit

            fit(None, resume=folder)
            return run_state(folder, cfg)
        log.warning("%s: stopped after %d of %d epochs with no checkpoint to resume from (trained elsewhere?); "
                    "training the run again", folder, state.epochs_done, state.epochs_planned)
    if not train:
        return None
    from ferkit.train import train as fit

    folder = fit(cfg)
    return run_state(folder, cfg)
