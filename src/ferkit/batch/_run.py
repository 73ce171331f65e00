"""`run_batch`: inputs -> engine -> shards, resumable."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from typing import Any

from ferkit.batch._engines import ENGINES, RayStart, run_local, run_ray
from ferkit.batch._inputs import expand_inputs
from ferkit.batch._sink import ShardSink
from ferkit.batch._worker import InputResult, recognizer_identity
from ferkit.errors import FerkitError
from ferkit.infer import RecognizerOptions, StreamOptions

__all__ = ["BatchSummary", "run_batch"]

@dataclass
class BatchSummary:
    """What a run did. ``inputs``: inputs found; ``skipped``: already in the folder (resumed);
    ``processed``: inputs done by this run; ``faces``, ``failures``, ``frames`` (images plus
    sampled video frames classified) by this run; ``seconds`` its wall time from the start of the
    workers (their model loading included), ``per_second`` frames per second, ``startup_seconds``
    until the first result came back and ``steady_per_second`` the rate after it; ``workers``: distinct worker processes
    (``host:pid`` or Ray ``node:pid``) that returned results; ``problems``: arguments that gave no input."""

    out: str
    inputs: int = 0
    skipped: int = 0
    processed: int = 0
    faces: int = 0
    failures: int = 0
    frames: int = 0
    shards: int = 0
    seconds: float = 0.0
    engine: str = "local"
    workers: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    startup_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_per_second(self) -> float:
        """Frames per second after the first result arrived (workers up, model loaded): the rate a
        long run converges to."""
        span = self.seconds - self.startup_seconds
        return (self.frames - 1) / span if span > 0 and self.frames > 1 else 0.0

    def __str__(self) -> str:
        s = (f"{self.processed} input{'s' * (self.processed != 1)} processed"
             + (f" ({self.skipped} already done)" if self.skipped else "")
             + f", {self.faces} face{'s' * (self.faces != 1)}, {self.failures} failed; "
             f"{self.per_second:.1f} images/s on {len(self.workers)} worker"
             f"{'s' * (len(self.workers) != 1)} ({self.engine}); {self.shards} shard{'s' * (self.shards != 1)} "
             f"written to {self.out}")
        return s


def run_batch(
    inputs: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: RecognizerOptions | None = None,
    *,
    stream: StreamOptions | None = None,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    gpus: int = 0,
    every: int = 1,
    fps: float | None = None,
    format: str = "parquet",
    shard_size: int = 256,
    shard_seconds: float = 60.0,
    chunk: int = 8,
    on_result: Callable[[InputResult], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    **option_changes: Any,
) -> BatchSummary:
    """Emotions of every face in images and videos, written as a resumable table in ``out``.

    Args:
        inputs: files, folders (searched recursively), globs, or list files (``.txt``, ``.csv``,
            ``.parquet``: see ``expand_inputs``).
        out: the output folder (``faces/``, ``failures/``, ``manifest.json``; ``docs/batch_schema.md``).
            Running again with the same settings skips the inputs already there (same path, size and
            modification time); other settings are refused.
        options: how faces are found and classified (``ferkit.infer.RecognizerOptions``, the same as
            ``ferkit predict``'s); ``option_changes``: fields of it changed by keyword (``model="ferplus"``).
        stream: how videos are followed (``ferkit.infer.StreamOptions``: the defaults of ``ferkit video``;
            its ``stride`` comes from ``every`` / ``fps``).
        engine: ``"local"`` (a process pool on this machine) or ``"ray"`` (Ray Data; ``address``: an
            existing cluster, else a local Ray; ``gpus``: that many GPU actors instead of CPU ones).
        workers: worker processes or actors (default: every CPU core; Ray: every CPU of the cluster).
        every / fps: classify every ``every``-th video frame, or about ``fps`` frames per second.
        format: ``"parquet"`` (needs pyarrow) or ``"jsonl"``.
        shard_size, shard_seconds: a shard is committed every ``shard_size`` inputs or
            ``shard_seconds`` seconds, whichever comes first (what a crash can lose).
        chunk: images per work unit sent to a worker.
        on_result: called with each InputResult as it arrives (progress); ``on_start(total, skipped)``
            once the inputs are known.

    Raises FerkitError (one line) for bad settings, a folder holding another run, or no inputs.
    Unreadable inputs do not raise: they are rows of the failures table.
    """
    from ferkit.infer import Recognizer

    unknown = set(option_changes) - {f.name for f in fields(RecognizerOptions)}
    if unknown:
        raise FerkitError(f"run_batch: unknown option(s) {', '.join(sorted(unknown))}")
    if any(isinstance(v, tuple) for v in option_changes.values()):
        raise FerkitError("run_batch: give the model as a name or a path (workers load it themselves)")
    options = (options or RecognizerOptions()).replace(
        **{k: os.fspath(v) if k == "model" else v for k, v in option_changes.items()})
    stream = stream or StreamOptions()
    if stream.stride != 1 or stream.max_frames is not None:
        raise FerkitError("run_batch: a video's frames are chosen by every= or fps=, not stream.stride or max_frames")
    if engine not in ENGINES:
        raise FerkitError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if every < 1:
        raise FerkitError(f"--every must be >= 1, not {every}")
    if fps is not None and not fps > 0:
        raise FerkitError(f"--fps must be > 0, not {fps}")
    if workers is not None and workers < 1:
        raise FerkitError(f"--workers must be >= 1, not {workers}")
    if shard_size < 1 or chunk < 1:
        raise FerkitError("batch: shard_size and chunk must be >= 1")
    items, problems = expand_inputs(inputs)
    if not items:
        raise FerkitError(problems[0] if len(problems) == 1
                          else f"batch: nothing to read ({'; '.join(problems) or 'no inputs'})")
    # Ray (started or joined on the main thread, which it requires) is shut down when the run ends
    with RayStart(address, workers) if engine == "ray" else nullcontext() as ray_start:
        spec = options.to_dict()
        # loaded here first: every setting is checked (one line) before any worker starts, and the
        # model's identity is known for the manifest; the local engine then reuses it (Ray starts
        # meanwhile, on the main thread, which it requires)
        if ray_start is None:
            rec = Recognizer.from_options(options)
        else:
            with ThreadPoolExecutor(1, thread_name_prefix="ferkit-load") as pool:
                loading = pool.submit(Recognizer.from_options, options)
                ray_start.start()
                rec = loading.result()
        ident = recognizer_identity(rec, spec["model"])
        # what decides the rows (effective values, so that the API's defaults and the CLI's agree);
        # a run resumes only into a folder made with the same
        settings = {**{k: v for k, v in spec.items() if k not in ("model", "device", "batch_size")},
                    "margin": rec.margin, "landmarks": rec.landmarks, "backend": rec.backend, "prior": rec.prior,
                    **{k: v for k, v in stream.to_dict().items() if k not in ("stride", "max_frames")},
                    "every": every if fps is None else None, "fps": fps}
        sink = ShardSink(out, {"format": format, **ident, "classes": list(rec.classes), "settings": settings},
                         landmarks=rec.landmarks is not None)
        done = sink.done_keys()
        todo = [i for i in items if i.key not in done]
        summary = BatchSummary(os.fspath(out), inputs=len(items), skipped=len(items) - len(todo), engine=engine,
                               problems=problems)
        if on_start:
            on_start(len(items), summary.skipped)
        n = workers or (os.cpu_count() or 1)
        work = {"every": every, "fps": fps, "stream": stream.to_dict()}
        if engine == "local":
            results = run_local(todo, spec, work, workers=min(n, max(1, len(todo))), chunk=chunk, recognizer=rec)
        else:
            del rec  # the actors load their own
            results = run_ray(todo, spec, work, workers=workers, chunk=chunk, gpus=gpus, start=ray_start)

        pending: list[InputResult] = []
        last_commit = t0 = time.perf_counter()

        def commit() -> None:
            nonlocal last_commit
            if sink.commit(pending):
                summary.shards += 1
            pending.clear()
            last_commit = time.perf_counter()

        first: float | None = None
        try:
            for r in results:
                if first is None:
                    first = time.perf_counter() - t0
                pending.append(r)
                summary.processed += 1
                summary.faces += r.faces
                summary.failures += r.failure is not None
                summary.frames += r.frames
                summary.workers.add(r.worker)
                if on_result:
                    on_result(r)
                if len(pending) >= shard_size or time.perf_counter() - last_commit >= shard_seconds:
                    commit()
        finally:  # results received are complete: keep them even when interrupted
            commit()
            summary.seconds = time.perf_counter() - t0
        summary.startup_seconds = first or 0.0
        sink.note(engine=engine, workers=sorted(summary.workers), processed=summary.processed,
                  seconds=round(summary.seconds, 3), frames_per_second=round(summary.per_second, 3),
                  startup_seconds=round(summary.startup_seconds, 3),
                  steady_frames_per_second=round(summary.steady_per_second, 3))
        return summary
