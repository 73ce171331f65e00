"""Huge uploads against ``ferkit serve`` (issue 18): a 7000x7000 JPEG (49 megapixels, under the
50 MP limit) alone, then beside a normal request (obama.jpg sent 0.2 s after it); then ``--uploads``
clients (default 100) each sending a 9.9 MB JPEG at once, behind a slow 49 MP request: how many
were answered, refused (503) or failed, and the server's resident memory before, at its peak
(VmHWM) and 10 s after.

    python benchmarks/bench_serve_huge.py [--side 7000] [--uploads 100] [-- extra ferkit serve options]
"""
from __future__ import annotations

import argparse
import io
import platform
import tempfile
import threading
import time
from pathlib import Path

import _report  # the script's own folder is on sys.path
import httpx
import numpy as np
from bench_serve import SAMPLES, start_server, tree_rss_mb
from PIL import Image


class TreeMemory:
    """The resident memory of the server and all its processes (uvicorn's supervisor and workers), in MB:
    now, and the highest sum seen by a thread sampling it every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def now(self) -> float:
        return tree_rss_mb(self.pid)[0]

    def __enter__(self) -> TreeMemory:
        self.peak, self._stop = self.now(), threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, self.now())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def run_together(threads: list[threading.Thread]) -> None:
    """Start every thread, then wait for all of them."""
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def big_jpeg(target: int = 9_900_000) -> bytes:
    """A noisy photo-sized JPEG just under ``target`` bytes (noise does not compress)."""
    rng = np.random.default_rng(0)
    side, last = 1000, b""
    while True:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)).save(buf, "JPEG", quality=95)
        if len(buf.getvalue()) > target:
            return last
        last, side = buf.getvalue(), side + 100


def concurrent_uploads(url: str, pid: int, n: int, slow: bytes) -> None:
    """``n`` clients post a 9.9 MB JPEG at once while a 49 MP request holds the detector."""
    body = big_jpeg()
    memory = TreeMemory(pid)
    base = memory.now()
    codes: list[int | str] = []

    def post(data: bytes) -> None:
        try:
            with httpx.Client(base_url=url, timeout=300) as c:
                codes.append(c.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}).status_code)
        except httpx.HTTPError as e:
            codes.append(type(e).__name__)

    threads = [threading.Thread(target=post, args=(slow,))] + [threading.Thread(target=post, args=(body,))
                                                                for _ in range(n)]
    t = time.perf_counter()
    with memory:
        run_together(threads)
    dt = time.perf_counter() - t
    after, peak = memory.now(), memory.peak
    counts = {k: codes.count(k) for k in sorted(set(codes), key=str)}
    print(f"{n} concurrent {len(body) / 1e6:.1f} MB uploads behind a 49 MP one: {counts} in {dt:.1f} s; server RSS "
          f"(all its processes) {base:.0f} MB before, peak {peak:.0f} MB, {after:.0f} MB at the end")
    time.sleep(10)
    later = memory.now()
    print(f"server RSS 10 s later: {later:.0f} MB")
    _report.target(f"{n} concurrent uploads: peak RSS < 1.5 GB, back to the start (+10%) within 10 s: peak "
                   f"{peak:.0f} MB, {later:.0f} MB 10 s later against {base:.0f} MB",
                   peak < 1500 and later <= 1.1 * base)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=7000)
    p.add_argument("--uploads", type=int, default=100, help="concurrent 9.9 MB uploads (0: skip)")
    p.add_argument("serve_args", nargs=argparse.REMAINDER, help="after --: options for ferkit serve")
    a = p.parse_args()
    buf = io.BytesIO()
    Image.new("RGB", (a.side, a.side), (120, 130, 140)).save(buf, "JPEG", quality=20)
    huge, normal = buf.getvalue(), (SAMPLES / "obama.jpg").read_bytes()
    jpeg = {"Content-Type": "image/jpeg"}
    extra = [x for x in a.serve_args if x != "--"]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(extra, Path(tmp) / "server.log")
        try:
            with httpx.Client(base_url=url, timeout=300) as c:
                for _ in range(2):
                    c.post("/v1/predict", content=normal, headers=jpeg)  # warm-up
                memory = TreeMemory(proc.pid)
                base = memory.now()
                t = time.perf_counter()
                with memory:
                    r = c.post("/v1/predict", content=huge, headers=jpeg)
                alone = time.perf_counter() - t
                after, peak = memory.now(), memory.peak
                print(f"machine: {platform.processor() or platform.machine()}; server {url}"
                      + "".join(f" {x}" for x in extra))
                print(f"{a.side}x{a.side} JPEG ({len(huge) / 1e3:.0f} kB) alone: HTTP {r.status_code} "
                      f"in {alone:.2f} s, {len(r.json().get('faces', []))} faces; server RSS (all its processes) "
                      f"{base:.0f} MB before, peak {peak:.0f} MB (+{peak - base:.0f}), {after:.0f} MB after")
                got: dict[str, float] = {}

                def send(name: str, body: bytes, delay: float) -> None:
                    time.sleep(delay)
                    t0 = time.perf_counter()
                    with httpx.Client(base_url=url, timeout=300) as cc:
                        cc.post("/v1/predict", content=body, headers=jpeg).raise_for_status()
                    got[name] = time.perf_counter() - t0

                threads = [threading.Thread(target=send, args=("huge", huge, 0.0)),
                           threading.Thread(target=send, args=("normal", normal, 0.2))]
                run_together(threads)
                print(f"side by side: the huge one {got['huge']:.2f} s, a normal request (obama.jpg) sent 0.2 s later "
                      f"{got['normal']:.2f} s")
                mp = a.side * a.side / 1e6
                _report.target(f"a {mp:.0f} MP upload answered within 3 s with < 300 MB extra memory, a normal "
                               f"request beside it within 2 s: {alone:.2f} s and +{peak - base:.0f} MB alone, "
                               f"{got['huge']:.2f} s and {got['normal']:.2f} s side by side",
                               r.status_code == 200 and alone <= 3 and peak - base < 300 and got["huge"] <= 3
                               and got["normal"] <= 2)
                time.sleep(10)
                print(f"server RSS 10 s later: {memory.now():.0f} MB")
                if a.uploads:
                    concurrent_uploads(url, proc.pid, a.uploads, huge)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    _report.run("serve-huge", main)
