"""Dataset loading times on this machine: FER2013 CSV parse (no ferkit cache, one thread), the cached
CSV load, the FER2013 folder index and the FER+ folder index.

Without ``--csv`` the full FER2013 CSV (35,736 rows, ~300 MB) is first generated into a temporary
folder with the shared data's make_fer2013_csv.py (not timed).

    python benchmarks/bench_data.py [--data ../shared/data] [--csv fer2013.csv] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _report  # the script's own folder is on sys.path
import numpy as np
from threadpoolctl import threadpool_limits

from ferkit.data import load_fer2013_csv, load_fer2013_folder, load_ferplus

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """(best wall time in seconds over ``repeat`` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (default: %(default)s)")
    ap.add_argument("--csv", type=Path, help="an existing full FER2013 CSV (default: generate one)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is shown")
    a = ap.parse_args()
    with threadpool_limits(1):          # the parser uses element-wise numpy only; this rules out BLAS threads
        run(a)


def run(a: argparse.Namespace) -> None:

    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs (usable: {len(os.sched_getaffinity(0))}), "
          f"Python {platform.python_version()}, numpy {np.__version__}, numpy/BLAS limited to 1 thread")
    with tempfile.TemporaryDirectory(prefix="ferkit-bench-") as tmp:
        csv_path = a.csv
        if csv_path is None:
            csv_path = Path(tmp) / "fer2013.csv"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(a.data / "fer2013_csv" / "make_fer2013_csv.py"), str(csv_path)],
                           check=True, capture_output=True)
            print(f"generated {csv_path} in {time.perf_counter() - t0:.1f} s (not part of the timings)")
        size_mb = csv_path.stat().st_size / 1e6
        counter = iter(range(10**6))
        cold, faces = timed(lambda: load_fer2013_csv(csv_path, cache_dir=Path(tmp) / f"cold-{next(counter)}"), a.repeat)
        print(f"fer2013-csv parse, no cache:   {cold:6.2f} s  ({len(faces):,} rows, {size_mb:.0f} MB, "
              f"{size_mb / cold:.0f} MB/s, includes writing the cache)")
        warm, _ = timed(lambda: load_fer2013_csv(csv_path, cache_dir=Path(tmp) / "cold-0"), max(a.repeat, 3))
        print(f"fer2013-csv load from cache:   {warm:6.2f} s")
        index, faces = timed(lambda: load_fer2013_folder(a.data / "fer2013"), max(a.repeat, 3))
        print(f"fer2013-folder index:          {index:6.2f} s  ({len(faces):,} files)")
        index, faces = timed(lambda: load_ferplus(a.data / "ferplus"), max(a.repeat, 3))
        print(f"ferplus folders + label.csv:   {index:6.2f} s  ({len(faces):,} images kept, majority)")


if __name__ == "__main__":
    _report.run("data", main)
