"""Load test of ``ferkit serve`` on loopback: N requests (500) with K in flight (16), a real face photo.

Starts ``python -m ferkit serve`` on a free 127.0.0.1 port (or uses ``--url``, which must be a
loopback address), sends a few warm-up requests, then ``--requests`` POST /v1/predict with the photo
as the raw body, ``--concurrency`` at a time, and prints throughput, p50/p95/p99 latency, the error
count (a non-200 answer, a transport error, or a face count other than the warm-up's) and how the
server batched the faces. Bounded: it stops sending after ``--time-limit`` seconds and says so.
Exit code 1 when any request failed.

    python benchmarks/bench_serve.py [--requests 500] [--concurrency 16] [--image PATH]
        [--time-limit 600] [--url http://127.0.0.1:8000] [-- extra ferkit serve options]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import _report  # the script's own folder is on sys.path
import httpx
import numpy as np

from ferkit.serve.security import is_loopback

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples"


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """RSS in MB summed over ``pid`` and its descendants (from /proc), and how many processes."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    total, count, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            rss = next(line for line in Path(f"/proc/{p}/status").read_text().splitlines() if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        total += int(rss.split()[1])
        count += 1
    return total / 1024, count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(extra: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "ferkit", "serve", "--host", "127.0.0.1", "--port", str(port),
                             *extra], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            text = log.read_text(errors="replace")   # every worker started, not just the first to answer
            if (httpx.get(url + "/health", timeout=2).status_code == 200
                    and text.count("Application startup complete") >= text.count("Started server process")):
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("the server did not start in 180 s")


async def load(url: str, body: bytes, n: int, concurrency: int, time_limit: float, expect_faces: int) -> dict:
    latencies: list[float] = []
    server_ms: dict[str, list[float]] = {"detect_ms": [], "queue_ms": [], "classify_ms": [], "batch_faces": []}
    errors: list[str] = []
    issued = 0
    stop_at = time.perf_counter() + time_limit
    headers = {"Content-Type": "image/jpeg"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def worker() -> None:
            nonlocal issued
            while issued < n and time.perf_counter() < stop_at:
                issued += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", content=body, headers=headers)
                    dt = time.perf_counter() - t
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                        continue
                    out = r.json()
                    if len(out["faces"]) != expect_faces:
                        errors.append(f"{len(out['faces'])} faces instead of {expect_faces}")
                        continue
                    latencies.append(dt)
                    for k, values in server_ms.items():
                        values.append(out["timing"][k])
                except (httpx.HTTPError, ValueError, KeyError) as e:
                    errors.append(f"{type(e).__name__}: {e}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "wall": wall, "issued": issued, "server_ms": server_ms}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--image", type=Path, default=SAMPLES / "obama.jpg")
    p.add_argument("--time-limit", type=float, default=600, help="stop sending after this many seconds (default: 600)")
    p.add_argument("--url", help="an already running server (loopback only); default: start one")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("serve_args", nargs=argparse.REMAINDER, help="after --: options for ferkit serve")
    a = p.parse_args()
    extra = [x for x in a.serve_args if x != "--"]
    if not (1 <= a.requests <= 100_000 and 1 <= a.concurrency <= 256):
        raise SystemExit("--requests must be 1..100000 and --concurrency 1..256")
    body = a.image.read_bytes()
    load_before = os.getloadavg()[0]

    proc = None
    log = Path(tempfile.mkdtemp(prefix="bench_serve_")) / "server.log"
    if a.url:
        if not is_loopback(urlparse(a.url).hostname or ""):
            raise SystemExit(f"{a.url}: this benchmark runs against loopback addresses only")
        url = a.url.rstrip("/")
    else:
        proc, url = start_server(extra, log)
    try:
        models = httpx.get(url + "/v1/models", timeout=30).json()["loaded"]
        first = None
        for _ in range(max(1, a.warmup)):
            r = httpx.post(url + "/v1/predict", content=body, headers={"Content-Type": "image/jpeg"}, timeout=300)
            r.raise_for_status()
            first = r.json()
        expect = len(first["faces"])
        before = httpx.get(url + "/health", timeout=30).json()["batching"]
        res = asyncio.run(load(url, body, a.requests, a.concurrency, a.time_limit, expect))
        after = httpx.get(url + "/health", timeout=30).json()["batching"]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)

    # worker processes of a server started here (uvicorn logs one line per process); 1 for --url
    workers = max(1, len(re.findall(r"Started server process", log.read_text()))) if proc is not None else 1
    lat = np.array(res["latencies"]) * 1e3
    done = len(lat) + len(res["errors"])
    batches = after["batches"] - before["batches"]
    faces = after["faces"] - before["faces"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, 1-min load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; python {platform.python_version()}")
    print(f"server: {url} (model {models['name']}, {models['backend']}, detector {models['detector']}, "
          f"{models['device']}, {workers} worker{'s' * (workers != 1)})"
          f"{' with ' + ' '.join(extra) if extra else ''}")
    print(f"image: {a.image.name} ({len(body) / 1e3:.0f} kB, {first['width']}x{first['height']}, {expect} face"
          f"{'s' * (expect != 1)}), raw body image/jpeg")
    print(f"requests: {done} of {a.requests} at {a.concurrency} in flight, {res['wall']:.1f} s"
          + ("  (stopped by --time-limit)" if done < a.requests else ""))
    print(f"errors: {len(res['errors'])}")
    for e in sorted(set(res["errors"]))[:5]:
        print(f"  {e}")
    if len(lat):
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        print(f"throughput: {len(lat) / res['wall']:.2f} requests/s")
        print(f"latency ms: p50 {p50:.0f}  p95 {p95:.0f}  p99 {p99:.0f}  (min {lat.min():.0f}, max {lat.max():.0f})")
        sm = {k: float(np.mean(v)) for k, v in res["server_ms"].items()}
        print(f"server side, mean per request: detect {sm['detect_ms']:.0f} ms, waiting for the classifier "
              f"{sm['queue_ms']:.1f} ms, classifier batch {sm['classify_ms']:.1f} ms (wall time, GIL waits included)")
        if workers == 1:
            print(f"batching: {faces} faces in {batches} classifier batches (mean {faces / max(1, batches):.2f}, "
                  f"largest seen {after['largest_batch']})")
        else:   # /health describes the worker that answers it
            print(f"batching: per worker ({workers} workers); not summed")
    rate = len(lat) / res["wall"] if len(lat) else 0.0
    p99 = float(np.percentile(lat, 99)) if len(lat) else float("inf")
    as_set = not extra and not a.url and a.image.name == "obama.jpg" and a.concurrency == 16
    _report.target(f"ferkit serve with its defaults, obama.jpg at 16 in flight: >= 40 requests/s, p99 <= 1 s, 0 "
                   f"errors in 2,000: {rate:.2f} requests/s, p99 {p99:.0f} ms, {len(res['errors'])} errors in {done}"
                   + ("" if as_set else " (not the target's settings)"),
                   as_set and rate >= 40 and p99 <= 1000 and not res["errors"] and done >= 2000)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    _report.run("serve", main)
