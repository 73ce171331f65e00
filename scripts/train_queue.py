"""Train a queue of ferkit configs one after another on this machine, each resumable epoch by epoch.

    nohup python scripts/train_queue.py default_votes_w2 votes_resnet18n > runs/queue/queue.log 2>&1 &
    python scripts/train_queue.py --root $OUT/queue --deadline 540 --set trainer.precision=bf16-mixed \
        --set data.num_workers=8 default_votes_w2 votes_resnet18n ...          # one call on a lent GPU

Each CONFIG (a shipped config's name or a YAML path, optionally followed by ``key=value`` overrides in
one shell word: ``'votes_resnet18n trainer.max_epochs=10'``) trains in its own process into
``--root/<name>/`` with its log in ``--root/<name>.log``. A run whose folder holds ``checkpoints/last.ckpt``
but no ``done`` marker is resumed from its last finished epoch (``ferkit train --resume``), so the queue
can be stopped at any time (kill, end of a session) and started again with the same command; a finished
run is skipped. Runs go one at a time: on a 2-core CPU a second run only halves the speed of both.

``--deadline S``: at S seconds after the start the run in progress is stopped (SIGINT, then SIGKILL after
a minute) and no other starts; every run keeps what it wrote, its best model so far (``model.safetensors`` +
``model.json``, written at each better validation) and its last finished epoch, which the next call resumes:
a lent GPU's time limit never loses a run. ``--set KEY=VALUE`` (repeatable) is added to every new run's
overrides (a GPU's precision and loader workers).
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path


def run_one(spec: str, root: Path, extra: list[str], deadline: float) -> int:
    config, *overrides = shlex.split(spec)
    overrides += extra
    name = Path(config).stem
    run_dir = root / name
    done = run_dir / "done"
    if done.is_file():
        print(f"{name}: finished before ({run_dir}), skipped", flush=True)
        return 0
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        args = ["train", "--resume", str(run_dir)]
    else:
        args = ["train", config, *overrides]
    start = time.time()
    print(f"{name}: ferkit {shlex.join(args)} (log: {root / (name + '.log')})", flush=True)
    with (root / f"{name}.log").open("a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ferkit", *args], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "FERKIT_RUN_DIR": str(run_dir.resolve()),
                                     "OMP_WAIT_POLICY": "PASSIVE"})
        code = wait_until(proc, deadline, name)
    print(f"{name}: exit {code} after {(time.time() - start) / 60:.1f} min", flush=True)
    if code == 0:
        done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return code


def wait_until(proc: subprocess.Popen, deadline: float, name: str) -> int:
    """``proc``'s exit code; at ``deadline`` (time.time()) it is interrupted, and killed a minute later."""
    try:
        return proc.wait(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        print(f"{name}: deadline reached, stopping it (its best model and last epoch are kept)", flush=True)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.wait()
        return -1
    except BaseException:  # Ctrl-C or a kill of the queue: the run stops with it
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="config names or paths, each optionally with overrides")
    ap.add_argument("--root", type=Path, default=Path("runs/queue"), help="where the run folders go")
    ap.add_argument("--deadline", type=float, help="seconds from now after which the queue stops (runs resumable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every new run")
    a = ap.parse_args()
    a.root.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + (a.deadline if a.deadline is not None else 1e9)
    failed = []
    for spec in a.configs:
        if time.time() >= deadline:
            print(f"{shlex.split(spec)[0]}: not started (deadline)", flush=True)
            failed.append(spec)
            continue
        if run_one(spec, a.root, a.set, deadline) != 0:
            failed.append(spec)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
