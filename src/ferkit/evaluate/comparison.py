"""`compare()`: the papers' model-comparison table for several models on one dataset split.

Per model: accuracy, macro-F1 and mean ROC AUC (from :func:`ferkit.evaluate.run_evaluation` on
the same data), parameters, FLOPs of one forward pass at the model's input size (counted by
``torch.utils.flop_counter.FlopCounterMode``: a multiply-add counts as 2 FLOPs; convolutions and
matrix products only), CPU latency per face at batch 1 (median of ``latency_runs`` forward passes
after warm-up) and CPU throughput at batch 64 (images/s), both for the model's forward pass on
preprocessed tensors (no decoding or resizing) with one CPU thread unless ``threads`` says
otherwise, and the mean training time per epoch from the run's
``metrics.csv`` (``epoch_time_s`` column) when the model is a run folder or its JSON names an
existing ``train.run_dir``.
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import ConfigError

__all__ = [
    "COMPARE_COLUMNS",
    "compare",
    "compare_markdown",
    "count_flops",
    "cpu_speed",
    "epoch_times",
    "write_compare_folder",
]

#: keys of each compare() row, in table order
COMPARE_COLUMNS = ("model", "path", "arch", "input", "accuracy", "macro_f1", "mean_auc", "n_images", "params", "flops",
                   "latency_ms", "images_per_s", "epoch_time_s", "epochs")


def count_flops(model: Any, input_cfg: dict[str, Any]) -> int:
    """FLOPs of one forward pass of a single ``channels x size x size`` input."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, int(input_cfg["channels"]), int(input_cfg["size"]), int(input_cfg["size"]))
    model = model.to("cpu").eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def cpu_speed(model: Any, input_cfg: dict[str, Any], *, latency_runs: int = 30, throughput_runs: int = 3,
              throughput_batch: int = 64, warmup: int = 3, threads: int | None = 1) -> tuple[float, float]:
    """``(median ms per face at batch 1, images/s at batch ``throughput_batch``)`` on the CPU with
    ``threads`` intra-op threads (None: torch's current setting). One thread is the default: it is
    reproducible and unaffected by other processes, whereas several OpenMP threads on a busy machine
    can be slower by two orders of magnitude."""
    import torch

    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return cpu_speed(model, input_cfg, latency_runs=latency_runs, throughput_runs=throughput_runs,
                             throughput_batch=throughput_batch, warmup=warmup, threads=None)
        finally:
            torch.set_num_threads(before)
    c, s = int(input_cfg["channels"]), int(input_cfg["size"])
    model = model.to("cpu").eval()
    gen = torch.Generator().manual_seed(0)
    one = torch.randn(1, c, s, s, generator=gen)
    many = torch.randn(throughput_batch, c, s, s, generator=gen)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(one)
        for _ in range(max(1, latency_runs)):
            t0 = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t0)
        model(many)
        t0 = time.perf_counter()
        for _ in range(max(1, throughput_runs)):
            model(many)
        elapsed = time.perf_counter() - t0
    return 1000 * statistics.median(times), throughput_batch * max(1, throughput_runs) / elapsed


def _run_dir(model: Any, meta: dict[str, Any]) -> Path | None:
    """The training-run folder of a model: the folder given, the folder of a stem/file, or the
    JSON's ``train.run_dir`` when it exists."""
    from ferkit.models import resolve_model_path

    candidates = []
    if not isinstance(model, tuple):
        p = resolve_model_path(model)
        candidates.append(p if p.is_dir() else p.parent)
    run_dir = (meta.get("train") or {}).get("run_dir") if isinstance(meta.get("train"), dict) else None
    if run_dir:
        candidates.append(Path(run_dir))
    for c in candidates:
        if c.is_dir() and (c / "metrics.csv").is_file():
            return c
    return None


def epoch_times(metrics_csv: str | os.PathLike[str]) -> list[float]:
    """The ``epoch_time_s`` values of a run's metrics.csv (rows without a value are skipped)."""
    out = []
    try:
        with open(metrics_csv, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                v = (row.get("epoch_time_s") or "").strip()
                try:
                    out.append(float(v))
                except ValueError:
                    continue
    except OSError:
        return []
    return out


def compare(
    models: Sequence[Any], data: str | os.PathLike[str] | None = None, format: str = "auto", split: str | None = None,
    classes: str | Sequence[str] | None = None, *, tta: str = "none", limit: int | None = None, batch_size: int = 128,
    device: str = "auto", label_mode: str = "majority", latency_runs: int = 30, throughput_runs: int = 3,
    threads: int | None = 1, progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per model (keys ``COMPARE_COLUMNS``; ``model`` is a short name: the shipped name, the
    run folder's name or the file stem; ``path`` the resolved stem); accuracy columns are None without
    ``data``.

    ``models`` are names, paths or ``(module, meta)`` pairs as for :func:`~ferkit.evaluate.evaluate`;
    ``data``/``format``/``split``/``classes``/``tta``/``limit`` select the evaluation data (loaded
    once; each model restricts its argmax to the classes it shares with it). Latency and throughput
    are measured on the CPU whatever ``device`` is (``device`` is for the accuracy pass), with
    ``threads`` CPU threads (see :func:`cpu_speed`).
    ``progress(message)`` is called as each model starts.
    """
    from ferkit.evaluate.runner import _load_model, load_eval_data, run_evaluation

    if not models:
        raise ValueError("compare: no models")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer, not {threads!r}")
    faces_info = load_eval_data(data, format, split, classes, limit=limit, label_mode=label_mode) if data else None
    rows = []
    for model in models:
        name = model[1].get("name", "model") if isinstance(model, tuple) else os.fspath(model)
        if progress:
            progress(name)
        if faces_info is not None:
            # the models as trained (prior train), as the papers' tables: a shipped model's own prior aside
            ev = run_evaluation(model, data, format, split, classes, tta, batch_size, device, limit=limit,
                                label_mode=label_mode, faces_info=faces_info, prior="train")
            net, meta, m, label, path = ev.model, ev.meta, ev.metrics, ev.label, ev.metrics["model"]["path"]
        else:
            net, meta, ident, label = _load_model(model, "cpu")
            m, path = None, ident["path"]
        inp = meta["input"]
        flops = count_flops(net, inp)
        latency, throughput = cpu_speed(net, inp, latency_runs=latency_runs, throughput_runs=throughput_runs,
                                        threads=threads)
        run = _run_dir(model, meta)
        epochs = epoch_times(run / "metrics.csv") if run else []
        rows.append({
            "model": label, "path": path, "arch": meta.get("arch"),
            "input": f"{inp['channels']}x{inp['size']}x{inp['size']}",
            "accuracy": m["accuracy"] if m else None, "macro_f1": m["macro_f1"] if m else None,
            "mean_auc": m["mean_auc"] if m else None, "n_images": m["n_images"] if m else None,
            "params": int(sum(p.numel() for p in net.parameters())), "flops": flops,
            "latency_ms": round(latency, 3), "images_per_s": round(throughput, 1),
            "epoch_time_s": round(float(np.mean(epochs)), 2) if epochs else None, "epochs": len(epochs) or None,
        })
    return rows


def _human(n: float | None, unit: str = "") -> str:
    if n is None:
        return "n/a"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def compare_markdown(rows: Sequence[dict[str, Any]], *, threads: int | None = None) -> str:
    """The comparison as a GitHub Markdown table (percentages for accuracy and macro-F1)."""
    from ferkit.evaluate.report import markdown_table

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}"

    table = markdown_table(
        ["model", "arch", "input", "accuracy %", "macro-F1 %", "mean AUC", "params", "FLOPs", "CPU ms/face (batch 1)",
         "CPU images/s (batch 64)", "s/epoch (training)"],
        [[r["model"], r["arch"], r["input"], pct(r["accuracy"]), pct(r["macro_f1"]),
          "n/a" if r["mean_auc"] is None else f"{r['mean_auc']:.4f}", _human(r["params"]), _human(r["flops"]),
          f"{r['latency_ms']:.2f}", f"{r['images_per_s']:.0f}",
          "n/a" if r["epoch_time_s"] is None else f"{r['epoch_time_s']:.1f} ({r['epochs']} epochs)"] for r in rows],
        align="lllrrrrrrrr")
    n = next((r["n_images"] for r in rows if r["n_images"]), None)
    cpu = f"CPU, {threads} thread{'s' if threads > 1 else ''}" if threads else "CPU"
    foot = [f"Accuracy on {n} images, each model as trained (class prior train)." if n
            else "No evaluation data given: accuracy columns are n/a.",
            ("FLOPs: one forward pass at the model's input size (multiply-add = 2). Latency and throughput: "
            f"forward pass only, {cpu}.")]
    return table + "\n\n" + " ".join(foot) + "\n"


def write_compare_folder(rows: Sequence[dict[str, Any]], target: str | os.PathLike[str] | None = None,
                         *, context: dict[str, Any] | None = None, threads: int | None = None) -> Path:
    """Write ``compare.md``, ``compare.json`` and ``accuracy_vs_latency.png`` atomically into
    ``target`` (default ``eval/compare-<time>``; an existing folder is refused)."""
    from ferkit.evaluate.report import atomic_folder
    from ferkit.viz import report_plots as viz

    if target is None:
        base = Path("eval") / f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        target, k = base, 1
        while target.exists():
            k += 1
            target = base.with_name(f"{base.name}-{k}")
    target = Path(target)
    with atomic_folder(target) as tmp:
        (tmp / "compare.md").write_text("# Model comparison\n\n" + compare_markdown(rows, threads=threads)
                                        + "\n![accuracy vs. latency](accuracy_vs_latency.png)\n", encoding="utf-8")
        (tmp / "compare.json").write_text(json.dumps({"context": context or {}, "models": list(rows)}, indent=2) + "\n",
                                          encoding="utf-8")
        viz.plot_accuracy_vs_latency([r["model"] for r in rows], [r["latency_ms"] for r in rows],
                                     [r["accuracy"] for r in rows], tmp / "accuracy_vs_latency.png",
                                     params=[r["params"] for r in rows])
    return target
