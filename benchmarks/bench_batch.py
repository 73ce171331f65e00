"""Archive throughput: `ferkit batch` (local process pool, and Ray Data) against single-process
`ferkit predict` on the same photos, in the same run, one command at a time; memory per worker;
frames/s of one worker on the sample video; hours for 10^6 photos and 1,000 h of video.

Photos: ``--n`` FER2013 PublicTest faces placed into the sample photos' face-free regions
(``ferkit.data.composite``: 640 px photos, faces 96-320 px, one per photo), built once into
``--work``. Every command is timed from start to exit (model loading and, for Ray, starting the
local Ray included), as a user would time it.

    python benchmarks/bench_batch.py [--n 1000] [--workers 2] [--no-ray] [--work /tmp/ferkit_bench_batch]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import _report  # the script's own folder is on sys.path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIP = DATA / "samples" / "short_hamilton_clip.mp4"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tree_rss(root: int) -> dict[int, int]:
    """RSS in bytes of ``root`` and every descendant (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        children.setdefault(int(fields["PPid"].strip()), []).append(int(d.name))
        if "VmRSS" in fields:
            rss[int(d.name)] = int(fields["VmRSS"].split()[0]) * 1024
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        out[pid] = rss.get(pid, 0)
        todo += children.get(pid, [])
    return out


def timed(argv: list[str], label: str) -> dict:
    """Run a command alone; wall seconds, peak RSS of the whole process tree and of its largest
    non-root process (a worker), sampled every 0.2 s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = {"total": 0, "worker": 0, "driver": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            tree = _tree_rss(proc.pid)
            peak["total"] = max(peak["total"], sum(tree.values()))
            peak["driver"] = max(peak["driver"], tree.get(proc.pid, 0))
            others = [v for k, v in tree.items() if k != proc.pid]
            peak["worker"] = max(peak["worker"], max(others, default=0))
            stop.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    stop.set()
    th.join()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{label} failed ({proc.returncode}): {err[-2000:]}")
    summary = err.strip().splitlines()[-1] if err.strip() else ""
    print(f"  {label}: {seconds:.1f} s  ({summary})", flush=True)
    return {"seconds": seconds, "peak_rss_total_mb": peak["total"] / 2**20,
            "peak_rss_worker_mb": peak["worker"] / 2**20, "peak_rss_driver_mb": peak["driver"] / 2**20}


def build_photos(n: int, folder: Path) -> list[str]:
    from ferkit.data.composite import build_composites
    from ferkit.evaluate import load_eval_data

    if not (folder / "boxes.csv").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        faces, _ = load_eval_data(DATA / "fer2013", "fer2013-folder", "PublicTest", limit=n)
        build_composites(faces, folder, samples_dir=DATA / "samples")
    return sorted(str(p) for p in folder.rglob("*.jpg"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="photos (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="local workers / Ray actors (default: all cores)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ferkit_bench_batch"),
                    help="scratch folder (photos are kept)")
    a = ap.parse_args()

    photos = build_photos(a.n, a.work / f"photos{a.n}")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {len(photos)} photos in {a.work / f'photos{a.n}'}",
          flush=True)
    ferkit = [sys.executable, "-m", "ferkit"]
    for d in ("local", "ray", "clip"):
        shutil.rmtree(a.work / d, ignore_errors=True)
    runs = {"predict": timed([*ferkit, "predict", str(a.work / f"photos{a.n}"), "-r", "--format", "json",
                              "-o", str(a.work / "predict.json")], "ferkit predict (one process)")}
    runs["local"] = timed([*ferkit, "batch", str(a.work / f"photos{a.n}"), "--out", str(a.work / "local"),
                           "--workers", str(a.workers)], f"ferkit batch --engine local ({a.workers} workers)")
    if not a.no_ray:
        runs["ray"] = timed([*ferkit, "batch", str(a.work / f"photos{a.n}"), "--out", str(a.work / "ray"),
                             "--engine", "ray", "--workers", str(a.workers)],
                            f"ferkit batch --engine ray ({a.workers} actors)")
    runs["clip"] = timed([*ferkit, "batch", str(CLIP), "--out", str(a.work / "clip"), "--workers", "1"],
                         "ferkit batch on the 275-frame clip, every frame (one worker)")
    n = len(photos)
    rate = {k: n / v["seconds"] for k, v in runs.items() if k != "clip"}
    steady = {k: json.loads((a.work / k / "manifest.json").read_text())["runs"][-1]
              for k in ("local", "ray") if k in runs}
    # the clip's rate without start-up (the run's own timing, in its manifest), and the cost of the
    # frames that sampling skips (grabbed, not decoded to pixels)
    clip_fps = json.loads((a.work / "clip" / "manifest.json").read_text())["runs"][-1]["frames_per_second"]
    from ferkit.infer import open_source

    t0 = time.perf_counter()
    with open_source(CLIP) as src:
        for _ in src.frames(stride=10_000):
            pass
        grab_s = (time.perf_counter() - t0) / src.frames_read
    print()
    print("| command | wall s | images/s (wall) | vs predict | start-up s | images/s after start-up "
          "| peak RSS of a worker | peak RSS, all processes |")
    print("|---|---|---|---|---|---|---|---|")
    for k, label in (("predict", "`ferkit predict` (1 process)"),
                     ("local", f"`ferkit batch --engine local` ({a.workers} workers)"),
                     ("ray", f"`ferkit batch --engine ray` ({a.workers} actors)")):
        if k in runs:
            r = runs[k]
            worker = f"{r['peak_rss_worker_mb']:.0f} MB" if k != "predict" else "-"
            st = steady.get(k)
            after = f"{st['startup_seconds']:.1f} | {st['steady_frames_per_second']:.2f}" if st else "- | -"
            print(f"| {label} | {r['seconds']:.1f} | {rate[k]:.2f} | {rate[k] / rate['predict']:.2f}x | {after} "
                  f"| {worker} | {r['peak_rss_total_mb']:.0f} MB |")
    print()
    speedup = rate["local"] / rate["predict"]
    _report.target(f"ferkit batch (local engine) >= 1.8x the images/s of ferkit predict: {speedup:.2f}x wall",
                   speedup >= 1.8)
    if "ray" in rate:
        after = steady["ray"]["steady_frames_per_second"] / steady["local"]["steady_frames_per_second"]
        _report.target(f"Ray Data >= 0.8x the local engine's images/s after their start-up: {after:.2f}x "
                       f"({rate['ray'] / rate['local']:.2f}x wall)", after >= 0.8)
    per_core = rate["local"] / a.workers
    # at 1 frame/s of 29.97 fps video: per second of video, one frame classified and ~29 grabbed
    video_s_per_s = 1 / clip_fps + 29 * grab_s
    print(f"\nper core: {per_core:.2f} photos/s; one worker on 640x360 video: {clip_fps:.1f} frames/s classified, "
          f"{grab_s * 1000:.2f} ms per frame skipped -> {1 / video_s_per_s:.1f} s of video per s at --fps 1")
    for cores in (2, 16, 64, 512):
        photos_h = 1e6 / (per_core * cores) / 3600
        video_h = 1000 * 3600 * video_s_per_s / cores / 3600
        print(f"  {cores:4d} cores: 10^6 photos {photos_h:7.1f} h; 1,000 h of video at 1 frame/s {video_h:7.1f} h")
    out = a.work / "bench_batch.json"
    out.write_text(json.dumps({"machine": cpu_name(), "cores": os.cpu_count(), "photos": n, "workers": a.workers,
                               "runs": runs, "images_per_s": rate, "after_startup": steady,
                               "clip_frames_per_s": clip_fps, "grab_ms": grab_s * 1000}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    _report.run("batch", main)
