"""The training side's figures on this machine: FER2013 CSV parse and cached-load times (by running
bench_data.py first, unless --skip-data), then training throughput (images/s) per model at 48 px
grayscale and 224 px RGB, in fp32 and, with ``--precision 32,bf16``, in bf16 autocast (native on a CPU
with AVX512-BF16 or AMX, emulated and slow elsewhere: the machine line lists the flags).

Times full training steps (forward, cross-entropy, backward, AdamW update) on a batch of real
FER2013 faces preprocessed by ferkit's own train transform, after one warm-up step, in channels-last
layout (``trainer.channels_last: true``, as the vote-trained recipes run). A model may carry keyword
arguments after a colon, separated by ``;``: ``mobilenet_v2:stem_stride=1``.

    python benchmarks/bench_train.py [--models resnet18,mobilenet_v2:stem_stride=1] [--steps 3] [--threads N]
        [--precision 32,bf16] [--skip-data]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import _report  # the script's own folder is on sys.path
import torch
import torch.nn.functional as F

from ferkit.data import load_dataset
from ferkit.data.transforms import train_transform
from ferkit.evaluate.benchmark import machine_info
from ferkit.models import count_parameters, create_model
from ferkit.train.config import AugmentConfig, InputConfig

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "fer2013"
SETTINGS = {  # name: (size, channels, batch)
    "48px-gray": (48, 1, 64),
    "224px-rgb": (224, 3, 32),
}


def batch_of_faces(data: Path, size: int, channels: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    faces = load_dataset(data, "fer2013-folder").split("Training")
    mean, std = [0.5] * channels, [0.5] * channels
    tf = train_transform(InputConfig(size=size, channels=channels, mean=mean, std=std), AugmentConfig())
    idx = torch.randperm(len(faces), generator=torch.Generator().manual_seed(0))[:n].tolist()
    return torch.stack([tf(faces.load_image(i)) for i in idx]), torch.as_tensor(faces.labels[idx])


def parse_model(spec: str) -> tuple[str, dict]:
    """``name[:key=value;...]`` -> (name, kwargs); values are read as YAML scalars (1, 0.5, true)."""
    import yaml

    name, _, args = spec.partition(":")
    kwargs = {}
    for item in filter(None, args.split(";")):
        key, _, value = item.partition("=")
        kwargs[key] = yaml.safe_load(value)
    return name, kwargs


def images_per_second(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, precision: str) -> float:
    model = model.train().to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * x.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--models", default="vgg_fer,resnet18,resnet34,resnet50,mobilenet_v2,inception_v3,spp_net",
                    help="comma-separated; kwargs after a colon, separated by ';' (mobilenet_v2:stem_stride=1)")
    ap.add_argument("--precision", default="32", help="32, bf16 or both (32,bf16)")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-data", action="store_true", help="skip the CSV parse / cache timings")
    a = ap.parse_args()
    if not set(a.precision.split(",")) <= {"32", "bf16"}:
        ap.error(f"--precision {a.precision!r}: expected 32, bf16 or 32,bf16")
    if not a.skip_data:
        data = subprocess.run([sys.executable, str(HERE / "bench_data.py"), "--data", str(a.data.parent)], check=True,
                              capture_output=True, text=True)
        print(data.stdout)     # through this script's stdout, so that --update-docs keeps it
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"machine: {machine_info()['machine']}")
    print(f"{'model':<28} {'setting':<10} {'batch':>5} {'precision':>9} {'params':>10} {'images/s':>9} "
          f"{'s/epoch (28,709)':>16}")
    for setting in a.settings.split(","):
        size, channels, batch = SETTINGS[setting]
        x, y = batch_of_faces(a.data, size, channels, batch)
        for spec in a.models.split(","):
            name, kwargs = parse_model(spec)
            for precision in a.precision.split(","):
                model = create_model(name, num_classes=7, in_chans=channels, **kwargs)
                ips = images_per_second(model, x, y, a.steps, precision)
                print(f"{spec:<28} {setting:<10} {batch:>5} {precision:>9} {count_parameters(model):>10,} {ips:>9.1f} "
                      f"{28709 / ips:>16.0f}", flush=True)


if __name__ == "__main__":
    _report.run("train", main)
