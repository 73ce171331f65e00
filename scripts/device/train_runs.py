"""Train several ferkit configs at once on one lent GPU, sized to a time budget.

    python scripts/device/train_runs.py --data /tmp/data --out $OUT --budget 400 \\
        default=configs/default_mix_w15.yaml ferplus=configs/ferplus_vgg_fer_w2.yaml \\
        'no_mix=configs/default_mix_w15.yaml data.ferplus_votes=null' ...

Each RUN is ``name=config`` followed by its overrides (space-separated, one shell word). The
runs share the GPU (small 48-px nets leave most of it idle, so running them side by side costs
little per run). First a probe: every run trains 2 epochs at once, which gives each run's epoch
time under that sharing; then each run gets as many epochs as fit in ``--budget`` seconds (at most
its config's ``trainer.max_epochs``, at least ``--min-epochs``), so that every one-cycle schedule
ends properly instead of being cut. Each run's model (fp16), metrics.csv, config.yaml and log are
packed into ``--out``/runs.tar, split into 15 MB parts (the device tool's file limits).
"""
from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CHILD = """
import sys, logging, torch
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
from ferkit.train import train
print("RUN_DIR", train(sys.argv[1], sys.argv[2:]), flush=True)
"""


def data_overrides(cfg: str, data: Path) -> list[str]:
    if "ferplus_vgg" in cfg:
        return [f"data.path={data}/ferplus"]
    return [f"data.path={data}/fer2013", f"data.ferplus_votes={data}/ferplus",
            f"data.ferplus_map={data}/fer2013_ferplus_map.csv"]


def launch(runs: dict, data: Path, root: Path, extra: dict[str, list[str]], tag: str) -> dict:
    procs = {}
    for name, (cfg, ovs) in runs.items():
        log = root / f"{name}.{tag}.log"
        args = [sys.executable, "-c", CHILD, cfg, *data_overrides(cfg, data), *ovs, f"name={name}",
                f"output_dir={root / tag}", *extra.get(name, [])]
        procs[name] = (subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT), log)
    return procs


def wait(procs: dict, deadline: float) -> None:
    while any(p.poll() is None for p, _ in procs.values()) and time.time() < deadline:
        time.sleep(2)
    for name, (p, log) in procs.items():
        if p.poll() is None:
            print(f"{name}: past the deadline, stopped", flush=True)
            p.terminate()
        p.wait()
        print(f"{name}: exit {p.returncode}; " + " | ".join(log.read_text().splitlines()[-2:])[-300:], flush=True)


def epoch_times(folder: Path, name: str) -> list[float]:
    """Epoch wall times in the metrics.csv of run ``name`` under ``folder`` ([] if none)."""
    for path in sorted(folder.glob(f"{name}-*/metrics.csv")):
        with path.open() as f:
            return [float(r["epoch_time_s"]) for r in csv.DictReader(f)]
    return []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, required=True, help="seconds for the real runs")
    ap.add_argument("--min-epochs", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/ferkit_runs"))
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    runs = {}
    for spec in a.runs:
        head, *ovs = shlex.split(spec)
        name, cfg = head.split("=", 1)
        runs[name] = (cfg, ovs)
    a.work.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    probe = launch(runs, a.data, a.work, {n: ["trainer.max_epochs=2"] for n in runs}, "probe")
    wait(probe, t0 + 240)
    probe_s = time.time() - t0
    epochs = {}
    from ferkit.train.config import TrainConfig

    for name, (cfg, ovs) in runs.items():
        times = epoch_times(a.work / "probe", name)
        per_epoch = times[-1] if times else None
        cap = TrainConfig.load(cfg, ovs).trainer.max_epochs
        n = cap if per_epoch is None else int(min(cap, max(a.min_epochs, (a.budget - 25) // (per_epoch * 1.08))))
        epochs[name] = n
        print(f"probe {name}: epoch times {times} -> {n} epochs", flush=True)
    print(f"probe took {probe_s:.0f} s", flush=True)
    t1 = time.time()
    real = launch(runs, a.data, a.work, {n: [f"trainer.max_epochs={epochs[n]}"] for n in runs}, "real")
    wait(real, t1 + a.budget + 60)
    print(f"training took {time.time() - t1:.0f} s", flush=True)

    import torch

    from ferkit.models import load_model, save_model
    pack = a.work / "pack"
    for name in runs:
        for run_dir in (a.work / "real").glob(f"{name}-*"):
            dest = pack / name
            dest.mkdir(parents=True, exist_ok=True)
            if (run_dir / "model.json").is_file():
                model, meta = load_model(run_dir / "model")
                save_model(model, dest / "model", meta, dtype=torch.float16)
            for f in ("metrics.csv", "config.yaml", "curves.png"):
                if (run_dir / f).is_file():
                    (dest / f).write_bytes((run_dir / f).read_bytes())
        for tag in ("probe", "real"):
            log = a.work / f"{name}.{tag}.log"
            if log.is_file():
                (pack / f"{name}.{tag}.log").write_text(log.read_text()[-200_000:])
    a.out.mkdir(parents=True, exist_ok=True)
    tar = a.work / "runs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(pack, arcname="runs")
    data = tar.read_bytes()
    part = 15 * 1024 * 1024
    for i in range(0, len(data), part):
        (a.out / f"runs.tar.{i // part:02d}").write_bytes(data[i:i + part])
    print(f"packed {len(data) / 1e6:.1f} MB into {a.out}", flush=True)


if __name__ == "__main__":
    main()
