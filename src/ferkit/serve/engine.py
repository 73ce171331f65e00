"""The inference side of the service: one Recognizer, one detection thread, one MicroBatcher.

A request is decoded, its faces detected and cropped on the detection thread, then its crops are
classified by the batcher (with other requests' crops) on the classifier thread, so detection of one
request overlaps classification of another. dlib's detector holds the GIL, so more detection
threads would not run faster; ``--workers N`` (processes) is the way to use more cores.
"""
from __future__ import annotations

import asyncio
import ctypes
import io
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np

from ferkit.images import ImageReadError, refuse_format
from ferkit.infer import FaceBatch
from ferkit.serve.batcher import MicroBatcher
from ferkit.serve.errors import InputError
from ferkit.serve.images import FORMATS, input_error
from ferkit.serve.settings import Settings
from ferkit.types import ImageResult

__all__ = ["Engine", "Prediction", "build_recognizer"]

log = logging.getLogger("ferkit.serve")


class ClientGone(Exception):
    """The client disconnected while its image waited or was processed: nobody to answer."""


#: uploads at least this large are followed by :func:`release_free_memory`
TRIM_AFTER_BYTES = 1_000_000
#: blocks at least this large get a mapping of their own, unmapped when freed (see :func:`map_large_blocks`)
MMAP_THRESHOLD = 256 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)


@cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): nothing to trim
        return None


def map_large_blocks() -> None:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` for this process. By default glibc raises it
    after each large block is freed (up to 32 MB), after which uploads, decoded images and crops come
    from heap arenas that fragment and seldom shrink; with it fixed they are mapped and unmapped. In the
    soak benchmark (800 requests on 2 workers) the server ended 147 MB above its start without this and
    51 MB with it, starting 230 MB lower."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_free_memory() -> None:
    """glibc keeps freed memory of large decodes in its arenas; ``malloc_trim`` returns it to the
    system, so the server's resident memory comes back down after a burst of large uploads."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def build_recognizer(settings: Settings) -> Any:
    """The Recognizer for ``settings`` (their ``RecognizerOptions``, as ``ferkit predict`` builds it)."""
    from ferkit.infer import Recognizer

    return Recognizer.from_options(settings.recognizer_options())


@dataclass
class Prediction:
    result: ImageResult
    timing: dict[str, float | int]
    image: np.ndarray | None = field(default=None, repr=False)  # the decoded RGB image, when asked for
    #: the upload's pixels per pixel of ``image`` (> 1 when a large JPEG was decoded at reduced size);
    #: ``result`` is in the upload's pixels
    scale: float = 1.0


class Engine:
    """Loads the model (slow: call it off the event loop) and predicts uploaded images asynchronously."""

    def __init__(self, settings: Settings):
        t = time.perf_counter()
        map_large_blocks()  # before the model and the first upload: the whole process's blocks follow it
        self.settings = settings
        self.recognizer = build_recognizer(settings)
        self.classes: list[str] = list(self.recognizer.classes)
        self.batcher = MicroBatcher(self.recognizer.classify, max_faces=settings.max_batch,
                                    max_wait_s=settings.batch_wait_ms / 1e3)
        self._detect_pool = ThreadPoolExecutor(1, thread_name_prefix="ferkit-detect")
        self.started = time.time()
        self.in_flight = 0  # images admitted and not answered yet (the event loop is the only writer)
        self.refused = 0
        self.abandoned = 0  # images dropped because the client left or the budget ran out
        self._waiting: set[object] = set()  # images read and queued for the detection thread, not started
        self.load_s = time.perf_counter() - t
        log.info("loaded %r in %.1f s", self.recognizer, self.load_s)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of the ``max_pending`` places for an image while it is processed; InputError 503
        (``Retry-After: 1``) when every place is taken. Entered once the upload's body is complete (a slow
        sender holds no place; the bodies being received share a byte budget, ``serve.server.BodyLimits``)."""
        limit = self.settings.max_pending
        if self.in_flight >= limit:
            self.refused += 1
            raise InputError(503, f"server busy: {self.in_flight} images in progress, the limit is {limit} "
                                  "(ferkit serve --max-pending); retry in a moment", headers={"Retry-After": "1"})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def start(self) -> None:
        await self.batcher.start()

    async def close(self) -> None:
        await self.batcher.close()
        self._detect_pool.shutdown(wait=True)

    async def run_cpu(self, fn: Any, *args: Any) -> Any:
        """Run CPU work (decoding, detection, drawing, encoding) on the detection thread."""
        return await asyncio.get_running_loop().run_in_executor(self._detect_pool, fn, *args)

    def _prepare(self, data: bytes, path: str | None) -> FaceBatch:
        """``Recognizer.prepare`` of the upload (a JPEG larger than the detector's working copy is
        decoded at 1/2-1/8 size), with the server's formats and statuses."""
        try:
            return self.recognizer.prepare(data, path, keep_image=True, formats=FORMATS)
        except ImageReadError as e:
            raise input_error(e) from None

    async def _watched(self, fn: Any, *args: Any, gone: Callable[[], Awaitable[bool]] | None) -> Any:
        """``run_cpu(fn, *args)`` within ``request_budget_s``, polling ``gone()`` (the client left?)
        every 0.25 s: either ends it with ClientGone / InputError 503, and the job is dropped if it
        has not started (a started one finishes on its thread; its result is unused)."""
        token = object()
        self._waiting.add(token)

        def started() -> Any:  # on the detection thread: no longer waiting
            self._waiting.discard(token)
            return fn(*args)

        job = asyncio.ensure_future(self.run_cpu(started))
        deadline = time.monotonic() + self.settings.request_budget_s
        try:
            return await self._wait(job, deadline, gone)
        finally:
            self._waiting.discard(token)

    @property
    def waiting(self) -> int:
        """Images read and waiting for the detection thread (the queue's depth)."""
        return len(self._waiting)

    async def _wait(self, job: asyncio.Future, deadline: float, gone: Callable[[], Awaitable[bool]] | None) -> Any:
        while True:
            done, _ = await asyncio.wait({job}, timeout=max(0.0, min(0.25, deadline - time.monotonic())))
            if done:
                return job.result()
            if gone is not None and await gone():
                job.cancel()
                self.abandoned += 1
                raise ClientGone()
            if time.monotonic() >= deadline:
                job.cancel()
                self.abandoned += 1
                raise InputError(503, f"the image was not processed within the server's budget of "
                                      f"{self.settings.request_budget_s:g} s (ferkit serve --request-budget-s); retry "
                                      "later", headers={"Retry-After": "5"})

    async def predict(self, data: bytes, *, path: str | None = None, keep_image: bool = False,
                      gone: Callable[[], Awaitable[bool]] | None = None) -> Prediction:
        """Every face in the encoded image ``data``. Raises InputError for bad images or when the time
        budget runs out, ClientGone when ``gone()`` (polled while waiting) says the client left."""
        t0 = time.perf_counter()
        try:  # a format refused from its first bytes is answered at once, without waiting its turn
            refuse_format(data, FORMATS)
        except ImageReadError as e:
            raise input_error(e) from None
        try:
            batch = await self._watched(self._prepare, data, path, gone=gone)
        finally:
            if len(data) >= TRIM_AFTER_BYTES:  # give the freed decode buffers back to the system
                self._detect_pool.submit(release_free_memory)
        timing: dict[str, float | int] = dict(batch.timing)
        if batch.crops:
            c = await self.batcher.classify(batch.crops)
            batch.probabilities = c.probs
            timing.update(queue_ms=c.wait_ms, classify_ms=c.run_ms, batch_faces=c.batch_faces)
        else:
            batch.probabilities = np.zeros((0, len(self.classes)))
            timing.update(queue_ms=0.0, classify_ms=0.0, batch_faces=0)
        timing["total_ms"] = (time.perf_counter() - t0) * 1e3
        timing = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in timing.items()}
        return Prediction(batch.result(self.classes), timing, batch.image if keep_image else None, batch.scale)

    def annotated_jpeg(self, prediction: Prediction, quality: int = 90) -> bytes:
        """The decoded image with boxes, labels and probability bars (``ferkit.viz.annotate``), as JPEG."""
        from PIL import Image

        from ferkit.viz import annotate

        assert prediction.image is not None, "predict(keep_image=True) first"
        result, s = prediction.result, prediction.scale
        if s != 1.0:  # drawn on the image as decoded: boxes and landmarks back to its pixels
            result = replace(result, faces=[
                replace(f, box=tuple(round(v / s) for v in f.box),
                        landmarks=None if f.landmarks is None else np.asarray(f.landmarks) / s)
                for f in result.faces])
        buf = io.BytesIO()
        Image.fromarray(annotate(prediction.image, result)).save(buf, "JPEG", quality=quality)
        return buf.getvalue()
