"""Micro-batching: face crops from concurrent requests go through the classifier together.

On a CPU one forward pass of 16 crops costs about a third of 16 single passes (shipped model, busy
2-core machine: ~100 ms against ~300 ms), so faces that arrive while the classifier is busy wait
for it and then go in one batch. With ``max_wait_s=0`` (the default) a batch takes only what queued
up meanwhile: a lone request is never delayed, and batches grow only under load, where they pay.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchStats", "Classified", "MicroBatcher"]


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    faces: int = 0
    largest_batch: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {"requests": self.requests, "batches": self.batches, "faces": self.faces,
                "largest_batch": self.largest_batch,
                "mean_batch": round(self.faces / self.batches, 3) if self.batches else 0.0}


@dataclass
class Classified:
    probs: np.ndarray  # (n_crops, n_classes)
    batch_faces: int  # faces in the classifier batch these crops were part of
    wait_ms: float  # from submission to the start of that batch
    run_ms: float  # the batch's forward pass


@dataclass
class _Item:
    crops: Sequence[np.ndarray]
    future: asyncio.Future
    queued: float


class MicroBatcher:
    """Collects crops from many coroutines and runs ``classify(crops) -> probs`` on one thread.

    Args:
        classify: ``(list of crops) -> (n, classes)`` array; runs on the batcher's own thread.
        max_faces: stop adding requests to a batch once it holds this many faces (one request with
            more faces is never split).
        max_wait_s: after the first request of a batch, wait up to this long for more (0: none).
    """

    def __init__(self, classify: Callable[[list[np.ndarray]], np.ndarray], *, max_faces: int = 32,
                 max_wait_s: float = 0.0):
        self._classify = classify
        self.max_faces = max(1, int(max_faces))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ferkit-classify")
        self._task = asyncio.create_task(self._run(), name="ferkit-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(RuntimeError("the server is shutting down"))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def classify(self, crops: Sequence[np.ndarray]) -> Classified:
        """Probabilities for ``crops`` (computed together with other requests' crops)."""
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("MicroBatcher is not running (call start() first)")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(list(crops), fut, time.perf_counter()))
        return await fut

    async def _collect(self) -> list[_Item]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        n = len(items[0].crops)
        deadline = loop.time() + self.max_wait_s
        while n < self.max_faces:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            items.append(item)
            n += len(item.crops)
        return [it for it in items if not it.future.done()]  # a cancelled request (client gone) is dropped

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            if not items:
                continue
            crops = [c for it in items for c in it.crops]
            start = time.perf_counter()
            try:
                probs = await loop.run_in_executor(self._pool, self._classify, crops)
            except Exception as e:  # noqa: BLE001  (handed to every waiting request)
                for it in items:
                    if not it.future.done():
                        it.future.set_exception(e)
                continue
            run_ms = (time.perf_counter() - start) * 1e3
            self.stats.requests += len(items)
            self.stats.batches += 1
            self.stats.faces += len(crops)
            self.stats.largest_batch = max(self.stats.largest_batch, len(crops))
            at = 0
            for it in items:
                k = len(it.crops)
                if not it.future.done():
                    it.future.set_result(Classified(probs[at:at + k], len(crops), (start - it.queued) * 1e3, run_ms))
                at += k
