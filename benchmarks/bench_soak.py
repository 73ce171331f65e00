"""Soak test of ``ferkit serve`` on loopback: N requests (2000) with K in flight (16), a mix of good
photos, the malformed uploads of ``tests/test_serve.py``, stalled bodies and refused formats.

Starts ``python -m ferkit serve --max-upload-mb 1`` (the tests' upload limit, so their over-size
uploads are over it; every sample photo is under it) on a free 127.0.0.1 port, then sends, shuffled
(``--seed``):

- good: the sample photos (``shared/data/samples/*.jpg``) as raw ``image/jpeg`` bodies; an error is
  a non-200 answer, a transport error, or a face count other than the photo's warm-up answer;
- malformed: each bad request of ``tests/test_serve.py`` in turn (over-size, truncated, not an
  image, pixel bombs, empty, wrong types, broken multipart...), checked against the status the test
  expects;
- refused: an EPS (``--eps-mb``) sent as ``image/jpeg``, expected 415;
- stalled: 1 KB of a 280 KB body, then nothing until the server answers (408) or closes.

It prints requests/s, p50/p99 of the good ones, the errors among them, the answers of the others,
and the server's memory (RSS summed over its processes, sampled every 0.25 s) at the start (after
the warm-up), its peak, after each quarter of the answers (a leak keeps growing, a one-time rise levels
off) and at the end (2 s after the last answer), with the machine (CPU model, avx2, avx512_bf16).
Exit code 1 when any good request failed.

    python benchmarks/bench_soak.py [--requests 2000] [--concurrency 16] [--time-limit 3600]
        [-- extra ferkit serve options]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _report  # the script's own folder is on sys.path
import httpx
import numpy as np
from bench_serve import SAMPLES, start_server, tree_rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_serve import LIMIT_MB, _bad_requests  # the tests' malformed uploads

KINDS = ("good", "malformed", "refused", "stalled")


def machine() -> str:
    """CPU model, core count and the avx2 / avx512_bf16 flags (lscpu), Python version."""
    try:
        info = dict(line.split(":", 1) for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                                                  check=True).stdout.splitlines() if ":" in line)
    except (OSError, subprocess.CalledProcessError):
        info = {}
    flags = info.get("Flags", "").split()
    model = info.get("Model name", platform.processor() or platform.machine()).strip()
    return (f"{model}, {os.cpu_count()} cores, avx2 {'yes' if 'avx2' in flags else 'no'}, avx512_bf16 "
            f"{'yes' if 'avx512_bf16' in flags else 'no'}; Python {platform.python_version()}")


def eps(size: int) -> bytes:
    """An EPS document of ``size`` bytes (comment lines pad it), which Pillow would hand to Ghostscript."""
    head = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"
    pad = b"% " + b"x" * 77 + b"\n"
    return head + pad * max(0, (size - len(head)) // len(pad)) + b"showpage\n"


def stalled(port: int) -> tuple[int, float]:
    """Send 1 KB of a 280 KB body and wait: the server's status (0: closed without one) and the seconds it took."""
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/jpeg\r\n"
                  f"Content-Length: 280000\r\n\r\n".encode() + os.urandom(1000))
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    parts = answer.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--malformed", type=float, default=0.15, help="share of malformed uploads (default: 0.15)")
    p.add_argument("--refused", type=float, default=0.05, help="share of EPS-as-JPEG uploads (default: 0.05)")
    p.add_argument("--stalled", type=float, default=0.03, help="share of stalled bodies (default: 0.03)")
    p.add_argument("--eps-mb", type=float, default=0.9, help="size of the EPS upload in MB (default: 0.9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=3600,
                   help="stop sending after this many seconds (default: 3600)")
    p.add_argument("serve_args", nargs=argparse.REMAINDER, help="after --: options for ferkit serve")
    a = p.parse_args()
    extra = ["--max-upload-mb", str(LIMIT_MB), *(x for x in a.serve_args if x != "--")]
    shares = {"malformed": a.malformed, "refused": a.refused, "stalled": a.stalled}
    if (not (1 <= a.requests <= 100_000 and 1 <= a.concurrency <= 256) or min(shares.values()) < 0
            or sum(shares.values()) > 1):
        raise SystemExit("--requests must be 1..100000, --concurrency 1..256, the shares >= 0 and at most 1 together")
    rng = random.Random(a.seed)
    counts = {k: round(v * a.requests) for k, v in shares.items()}
    plan = ["good"] * (a.requests - sum(counts.values())) + [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(plan)
    photos = {path.name: path.read_bytes() for path in sorted(SAMPLES.glob("*.jpg"))}
    small_face = photos["obama.jpg"]
    bad_names = list(_bad_requests(small_face))
    eps_body = eps(int(a.eps_mb * 1e6))

    log = Path(tempfile.mkdtemp(prefix="bench_soak_")) / "server.log"
    proc, url = start_server(extra, log)
    port = int(url.rsplit(":", 1)[1])
    memory: list[tuple[int, float]] = []  # (answers so far, MB)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            memory.append((len(results), tree_rss_mb(proc.pid)[0]))

    results: list[tuple[str, str, int, float, str]] = []  # kind, name, status, seconds, problem
    try:
        with httpx.Client(base_url=url, timeout=600, limits=httpx.Limits(max_connections=a.concurrency)) as client:
            expect = {}
            for name, body in photos.items():  # warm-up: each photo's face count ...
                r = client.post("/v1/predict", content=body, headers={"Content-Type": "image/jpeg"})
                r.raise_for_status()
                expect[name] = len(r.json()["faces"])

            def warm(i: int) -> None:  # ... and every photo again over `concurrency` connections: every worker
                client.post("/v1/predict", content=list(photos.values())[i % len(photos)],
                            headers={"Content-Type": "image/jpeg"}).raise_for_status()

            with ThreadPoolExecutor(a.concurrency) as pool:
                list(pool.map(warm, range(max(a.concurrency, len(photos)))))
            start_mb, processes = tree_rss_mb(proc.pid)
            stop_at = time.perf_counter() + a.time_limit

            def one(i: int) -> None:
                kind = plan[i]
                if time.perf_counter() > stop_at:
                    return
                t = time.perf_counter()
                if kind == "stalled":
                    status, took = stalled(port)
                    results.append((kind, "stalled body", status, took, "" if status == 408 else f"answered {status}"))
                    return
                if kind == "good":
                    name = list(photos)[i % len(photos)]
                    kwargs, want = {"content": photos[name], "headers": {"Content-Type": "image/jpeg"}}, 200
                elif kind == "refused":
                    name, kwargs, want = ("EPS as image/jpeg",
                                          {"content": eps_body, "headers": {"Content-Type": "image/jpeg"}}, 415)
                else:
                    name = bad_names[i % len(bad_names)]
                    kwargs, want, _ = _bad_requests(small_face)[name]
                try:
                    r = client.post("/v1/predict", **kwargs)
                    status, problem = (r.status_code,
                                       "" if r.status_code == want else f"HTTP {r.status_code}: {r.text[:120]}")
                    if kind == "good" and not problem and len(r.json()["faces"]) != expect[name]:
                        problem = f"{len(r.json()['faces'])} faces instead of {expect[name]}"
                except (httpx.HTTPError, ValueError, KeyError) as e:
                    status, problem = 0, f"{type(e).__name__}: {e}"
                results.append((kind, name, status, time.perf_counter() - t, problem))

            watcher = threading.Thread(target=sample, daemon=True)
            watcher.start()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(a.concurrency) as pool:
                list(pool.map(one, range(len(plan))))
            wall = time.perf_counter() - t0
            time.sleep(2)
            end_mb = tree_rss_mb(proc.pid)[0]
            stop.set()
            health = client.get("/health").json()["load"]
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)

    print(f"machine: {machine()}; 1-min load average {os.getloadavg()[0]:.1f} after")
    print(f"server: {url}, ferkit serve {' '.join(extra)} ({processes} processes)")
    done = len(results)
    print(f"requests: {done} of {a.requests} at {a.concurrency} in flight in {wall:.1f} s "
          f"= {done / wall:.2f} requests/s"
          + ("  (stopped by --time-limit)" if done < a.requests else ""))
    for kind in KINDS:
        rows = [r for r in results if r[0] == kind]
        if not rows:
            continue
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(Counter(r[2] for r in rows).items()))
        seconds = np.array([r[3] for r in rows])
        problems = [f"{r[1]}: {r[4]}" for r in rows if r[4]]
        line = f"  {kind}: {len(rows)}, answers {{{statuses}}}, p50 {np.percentile(seconds, 50):.2f} s, " \
               f"p99 {np.percentile(seconds, 99):.2f} s, {'errors' if kind == 'good' else 'unexpected'} {len(problems)}"
        print(line)
        for text in sorted(set(problems))[:5]:
            print(f"    {text}")
    print(f"server memory (RSS summed over its processes): start {start_mb:.0f} MB, "
          f"peak {max((m for _, m in memory), default=end_mb):.0f} MB, end {end_mb:.0f} MB "
          f"(end - start {end_mb - start_mb:+.0f} MB)")
    # a leak grows with the answers, a one-time rise (caches, allocator arenas) levels off
    quarters = [next((m for n, m in memory if n >= q * done / 4), end_mb) for q in (1, 2, 3)]
    print("  after 1/4, 1/2, 3/4 of the answers: " + ", ".join(f"{m:.0f} MB" for m in quarters))
    print(f"server load at the end: {health}")
    return 1 if any(r[4] for r in results if r[0] == "good") else 0


if __name__ == "__main__":
    _report.run("soak", main)
