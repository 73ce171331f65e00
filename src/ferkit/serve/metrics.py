"""``GET /metrics``: the server's counters in the Prometheus text format (``prometheus_client``).

- ``ferkit_http_requests_total{method, route, status}`` and the latency histogram
  ``ferkit_http_request_duration_seconds{method, route}``, for every HTTP request (routes as
  templates, so the label set stays small; unknown paths count as ``other``);
- ``ferkit_faces_total``: faces answered (HTTP and WebSocket);
- gauges read at scrape time: ``ferkit_in_flight`` (images being read, detected or classified),
  ``ferkit_waiting`` (read and waiting for the detector: the queue depth), ``ferkit_max_pending``,
  and the counters ``ferkit_refused_total`` (503, server full) and ``ferkit_abandoned_total``
  (client gone or time budget out).

Each app has its own registry, so several apps in one process (tests) do not collide.

With several worker processes (``ferkit serve --workers N``; the default is one per core), the CLI
sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start: each worker writes its values there
(prometheus_client's multiprocess mode) and whichever worker answers ``/metrics`` reports the sum
over the live workers, so a scrape counts every request whichever process served it. The gauges
are then set by each worker as its requests start and end (``livesum``), since a gauge read at
scrape time would only see the answering worker.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

#: prometheus_client's multiprocess directory (set by ``ferkit serve`` when it starts several workers)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the multiprocess folders ``ferkit serve`` makes: ``<prefix><server pid>-<random>`` in the temporary folder
DIR_PREFIX = "ferkit-serve-metrics-"
#: latency buckets (seconds): a face photo takes 0.05-1 s on a CPU
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The registry of one app and the middleware that feeds it."""

    def __init__(self, engine_of: Any):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("ferkit_http_requests", "HTTP requests answered", ("method", "route", "status"),
                                registry=self.registry)
        self.latency = Histogram("ferkit_http_request_duration_seconds", "HTTP request latency", ("method", "route"),
                                 buckets=BUCKETS, registry=self.registry)
        self.faces = Counter("ferkit_faces", "faces answered (HTTP and WebSocket)", registry=self.registry)
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self._engine_of = engine_of
        self._gauges: list[tuple[Gauge, Any]] = []
        for name, doc, read in (
            ("ferkit_in_flight", "images being read, detected or classified", lambda e: e.in_flight),
            ("ferkit_waiting", "images read and waiting for the detection thread", lambda e: e.waiting),
            ("ferkit_max_pending", "the limit on images in flight (--max-pending, summed over workers)",
             lambda e: e.settings.max_pending),
            ("ferkit_refused_total", "images refused with 503 because the server was full", lambda e: e.refused),
            ("ferkit_abandoned_total", "images dropped: client gone or time budget out", lambda e: e.abandoned),
        ):
            if self.multiprocess:
                self._gauges.append((Gauge(name, doc, registry=self.registry, multiprocess_mode="livesum"), read))
            else:
                Gauge(name, doc, registry=self.registry).set_function(lambda read=read: _read(engine_of(), read))

    def refresh(self) -> None:
        """Set the multiprocess gauges from this worker's engine (no-op with one process)."""
        engine = self._engine_of()
        for gauge, read in self._gauges:
            gauge.set(_read(engine, read))

    async def middleware(self, request: Request, call_next: Any) -> Response:
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", None) or "other"
            self.requests.labels(request.method, path, str(status)).inc()
            self.latency.labels(request.method, path).observe(time.perf_counter() - t0)
            self.refresh()

    def response(self) -> Response:
        if not self.multiprocess:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
        self.refresh()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _read(engine: Any, read: Any) -> float:
    return float(read(engine)) if engine is not None else 0.0


def remove_stale_dirs() -> None:
    """Remove the multiprocess folders of this user's servers that are gone (a server killed with
    ``kill -9`` cannot remove its own); ``ferkit serve`` calls it as it starts."""
    for old in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        pid = old.name[len(DIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and old.stat().st_uid == os.getuid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def make_multiproc_dir() -> str:
    """A new multiprocess folder for this server (its pid in the name)."""
    return tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
