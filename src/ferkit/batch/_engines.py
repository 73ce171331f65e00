"""Engines: who runs :class:`BatchWorker` over the inputs. Each yields :class:`InputResult`
objects, in completion order, to the process that writes the shards.

- ``local``: a pool of worker processes on this machine (one Recognizer per process, one torch
  thread each; forked from this process when that is safe, see ``_start_method``), or the calling
  process itself for one worker.
- ``ray``: Ray Data, ``map_batches`` over an actor pool of BatchWorkers (one per CPU, or one per
  GPU with ``gpus``), on a local Ray started here or on the cluster at ``address``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Self

from ferkit._fileio import stderr_to_devnull
from ferkit._process import die_with_parent
from ferkit.batch._inputs import Input
from ferkit.batch._worker import BatchWorker, InputResult
from ferkit.errors import FerkitError

__all__ = ["ENGINES", "RayStart", "check_address", "chunks", "run_local", "run_ray"]

ENGINES = ("local", "ray")


def chunks(items: Sequence[Input], size: int) -> list[list[Input]]:
    """Work units: images in groups of ``size`` (their faces are classified together), each video alone."""
    out: list[list[Input]] = []
    images: list[Input] = []
    for i in items:
        if i.kind == "video":
            out.append([i])
        else:
            images.append(i)
            if len(images) == size:
                out.append(images)
                images = []
    if images:
        out.append(images)
    return out


# ------------------------------------------------------------------------------ local
_WORKER: BatchWorker | None = None
_PARENT_RECOGNIZER: Any = None  # inherited by forked workers


def _init_worker(spec: dict[str, Any], options: dict[str, Any], parent: int) -> None:
    global _WORKER
    die_with_parent(parent)
    _WORKER = BatchWorker(spec, threads=1, recognizer=_PARENT_RECOGNIZER, **options)


def _start_method(spec: dict[str, Any], recognizer: Any) -> str:
    """``fork`` where it is safe and available: a CPU PyTorch Recognizer already loaded here is
    inherited by the workers as it is (no second start-up: torch import and model load take
    several seconds per worker), as DataLoader workers inherit a dataset. ``spawn`` otherwise: CUDA
    and ONNX Runtime's thread pools do not survive a fork."""
    import multiprocessing as mp

    if (recognizer is not None and "fork" in mp.get_all_start_methods()
            and getattr(recognizer, "backend", "torch") == "torch" and str(spec.get("device", "cpu")) == "cpu"):
        return "fork"
    return "spawn"


def _work(items: list[Input]) -> list[InputResult]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.process(items)


def run_local(items: Sequence[Input], spec: dict[str, Any], options: dict[str, Any], *, workers: int,
              chunk: int = 8, recognizer: Any = None) -> Iterator[InputResult]:
    """Process pool of ``workers`` (1: this process, with ``recognizer`` if given)."""
    units = chunks(items, chunk)
    if workers <= 1:
        worker = BatchWorker(spec, recognizer=recognizer, **options)
        for unit in units:
            yield from worker.process(unit)
        return
    import multiprocessing as mp

    global _PARENT_RECOGNIZER
    method = _start_method(spec, recognizer)
    _PARENT_RECOGNIZER = recognizer if method == "fork" else None
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init_worker,
                               initargs=(spec, options, os.getpid()))
    pending = iter(units)
    try:
        in_flight = {pool.submit(_work, u) for u in (next(pending, None) for _ in range(2 * workers)) if u}
        while in_flight:
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for f in done:
                yield from f.result()
                nxt = next(pending, None)
                if nxt:
                    in_flight.add(pool.submit(_work, nxt))
    except BrokenProcessPool:
        raise FerkitError("batch: a worker process died (out of memory, or killed); the shards written so far are "
                          "kept: run the same command again to resume") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _PARENT_RECOGNIZER = None


# ------------------------------------------------------------------------------ ray
class RayWorker:
    """A Ray Data actor: a BatchWorker over batches of inputs, each result as one JSON string."""

    def __init__(self, spec: dict[str, Any], options: dict[str, Any]) -> None:
        import ray

        node = ray.get_runtime_context().get_node_id()[:12]
        self.worker = BatchWorker(spec, threads=1, worker=f"{node}:{os.getpid()}", **options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        items = [Input(str(p), str(k), int(s), int(m))
                 for p, k, s, m in zip(batch["path"], batch["kind"], batch["size"], batch["mtime_ns"], strict=True)]
        return {"result": np.array([r.to_json() for r in self.worker.process(items)], dtype=object)}


def check_address(address: str, timeout: float = 5.0) -> None:
    """A ``host:port`` cluster address must accept a connection (Ray itself retries for minutes)."""
    import socket

    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # ray://, auto, ...: left to Ray
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise FerkitError(f"--address {address}: no Ray cluster answers there ({e.strerror or e}); start one with "
                          "`ray start --head`") from None


class RayStart:
    """Connects to the cluster at ``address`` or starts a local Ray (``workers`` CPUs) when
    :meth:`start` is called (nothing when Ray is already initialised in this process); :meth:`stop`
    shuts down what it started. Ray must be started from the main thread (its shutdown fails
    otherwise), so ``run_batch`` loads its model on a thread meanwhile."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            import ray
            import ray.data
        except ImportError:
            raise FerkitError('--engine ray needs Ray: pip install "ferkit[ray]"') from None
        import logging

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # Ray Data's per-run INFO lines and progress-bar notices
        # Ray's core worker logs an error line for every Ray Data actor whose class sits in the object
        # store (ray-project/ray#53727: harmless here); set RAY_BACKEND_LOG_LEVEL to see Ray's C++ logs again
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        self.address, self.workers, self.started = address, workers, False
        if address and not ray.is_initialized():
            check_address(address)

    def start(self) -> None:
        import ray

        if self.started or ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        try:
            with stderr_to_devnull():  # Ray's C++ logging announces the level it was set to
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:
                    ray.init(num_cpus=self.workers or os.cpu_count() or 1, **kwargs)
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, AuthenticationError...
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise FerkitError(f"--address {self.address}: cannot connect to the Ray cluster ({why})" if self.address
                              else f"--engine ray: cannot start a local Ray ({why})") from None
        self.started = True

    def stop(self) -> None:
        import ray

        if self.started:
            ray.shutdown()
            self.started = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_ray(items: Sequence[Input], spec: dict[str, Any], options: dict[str, Any], *, workers: int | None = None,
            chunk: int = 8, gpus: int = 0, start: RayStart | None = None) -> Iterator[InputResult]:
    """Ray Data over an actor pool, on the Ray that ``start`` connected to or started (whoever made
    ``start`` stops it); without one, a local Ray (or the one already initialised in this process)
    that is shut down after."""
    import ray
    import ray.data

    own = start is None
    start = start or RayStart(None, workers)
    try:
        start.start()
        if not items:
            return
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ferkit's own progress bar counts inputs
        ctx.print_on_execution_start = False
        if gpus:
            size, resources = gpus, {"num_cpus": 1, "num_gpus": 1}
            spec = {**spec, "device": "cuda"}
        else:
            size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            resources = {"num_cpus": 1}
        rows = [i.to_dict() for i in items]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), -(-len(rows) // chunk))))
        ds = ds.map_batches(RayWorker, fn_constructor_kwargs={"spec": spec, "options": options}, batch_size=chunk,
                            batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=2),
                            **resources)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for text in batch["result"]:
                yield InputResult.from_json(text)
    finally:
        if own:
            start.stop()
