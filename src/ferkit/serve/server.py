"""Running the app under uvicorn with connection-level limits.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) but not a client that opens a
connection and sends its request head slowly or never finishes it: each such connection is held
for as long as the client likes. :class:`HeadTimeoutH11` closes a connection whose request line and
headers are not complete ``head_timeout_s`` seconds after it opened (or after its previous
response), however many bytes trickle in. ``limit_concurrency`` caps connections plus tasks (503
beyond), so a flood of connections cannot exhaust file descriptors either.

Request bodies have their own limits (:class:`BodyLimits`, an ASGI middleware): a body must be
complete ``body_timeout_s`` after its head and arrive at ``min_body_rate_kb_s`` on average (after its
first :data:`RATE_GRACE_S` seconds), else 408 and the connection is closed; the bodies being
received hold at most ``body_budget_bytes`` together. An image takes one of the ``max_pending``
places only once its body is complete, so slow or stalled senders cannot hold the decoder's queue.

With ``--workers N`` (:func:`serve_workers`) each worker process listens on its own socket
(``SO_REUSEPORT``: the kernel spreads new connections evenly over them; with one shared socket the
worker that wakes first takes most) and dies with the parent (``die_with_parent``).
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import threading
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ferkit.errors import FerkitError
from ferkit.serve.errors import InputError
from ferkit.serve.settings import Settings

log = logging.getLogger("ferkit.serve")

#: seconds of a request body before its average rate is checked against ``min_body_rate_kb_s``
RATE_GRACE_S = 5.0


class BodyLimits:
    """ASGI middleware bounding how HTTP request bodies are received (see the module docstring).

    The app's ``receive`` is wrapped: waiting for the next part of a body past the deadline (the
    earlier of ``timeout_s`` after the head and the time the bytes received so far are due at
    ``min_rate`` bytes/s after ``grace_s``) raises InputError 408, and a body whose bytes would take
    the bodies being received past ``budget`` raises InputError 503 (unless it is the only one), both
    answered with ``Connection: close``: the client gets its answer, the connection is freed."""

    def __init__(self, app: Any, *, timeout_s: float, min_rate: float, budget: int, grace_s: float = RATE_GRACE_S):
        self.app, self.timeout_s, self.min_rate, self.budget, self.grace_s = app, timeout_s, min_rate, budget, grace_s
        self.receiving = 0  # bytes of bodies being received now, in this process

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        got = held = 0
        done = False

        def release() -> None:
            nonlocal held
            self.receiving -= held
            held = 0

        async def limited() -> dict:
            nonlocal got, held, done
            if done:  # after the body (is_disconnected polls): no limit
                return await receive()
            due = start + self.grace_s + got / self.min_rate if self.min_rate else math.inf
            try:
                message = await asyncio.wait_for(receive(), max(0.0, min(start + self.timeout_s, due) - loop.time()))
            except TimeoutError:
                release()
                done = True
                raise self._late(scope, got, loop.time() - start) from None
            body = message.get("body", b"")
            done = message["type"] != "http.request" or not message.get("more_body", False)
            if done:
                release()
            else:
                got, held, self.receiving = got + len(body), held + len(body), self.receiving + len(body)
                if self.receiving > self.budget and self.receiving > held:
                    release()
                    done = True
                    raise InputError(503, f"server busy: {self.receiving / 1e6:.1f} MB of uploads are being received, "
                                          f"the limit is {self.budget / 1e6:g} MB (ferkit serve --max-pending x "
                                          "--max-upload-mb); retry in a moment",
                                     headers={"Retry-After": "1", "Connection": "close"})
            return message

        try:
            await self.app(scope, limited, send)
        finally:
            release()

    def _late(self, scope: dict, got: int, took: float) -> InputError:
        why = (f"not complete within {self.timeout_s:g} s (ferkit serve --body-timeout-s)" if took >= self.timeout_s
               else f"slower than {self.min_rate / 1e3:g} KB/s (ferkit serve --min-body-rate-kb-s)")
        client = "{}:{}".format(*scope["client"]) if scope.get("client") else "a client"
        log.info("%s: request body %s after %d bytes; answered 408", client, why, got)
        return InputError(408, f"request body {why}: {got} bytes in {took:.1f} s", headers={"Connection": "close"})


class HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (line + headers)."""

    head_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        # IDLE: no complete request head since the connection opened or the last response
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.info("%s: request head not complete after %g s; connection closed", client, self.head_timeout_s)
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


def protocol_for(settings: Settings) -> type[HeadTimeoutH11]:
    """The protocol class with ``settings.head_timeout_s`` (a subclass, so uvicorn's workers, which
    import the class by reference, see the default unless the setting changed it)."""
    if settings.head_timeout_s == HeadTimeoutH11.head_timeout_s:
        return HeadTimeoutH11
    return type("HeadTimeoutH11", (HeadTimeoutH11,), {"head_timeout_s": settings.head_timeout_s})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run keyword arguments for these settings: the protocol, keep-alive and concurrency."""
    return {
        "http": protocol_for(settings),
        "timeout_keep_alive": 5,
        # connections + tasks: the pending images, the page's WebSockets and health checks, with room
        "limit_concurrency": 4 * settings.max_pending + 32,
        "h11_max_incomplete_event_size": 16 * 1024,  # a request head larger than 16 KB is refused
        # WebSocket frames: one message queued per connection (websockets' default is 16, each up
        # to 16 MB: pipelined 10 MB frames held 1.5 GB); a message over twice the upload limit closes
        # the connection (1009), one between the limit and that gets a JSON 413 and the connection lives
        "ws_max_size": 2 * settings.max_upload_bytes,
        "ws_max_queue": 1,
    }


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening yet). ``SO_REUSEADDR``: a restarted server
    binds at once, whatever connections of the previous one linger in TIME_WAIT; ``reuse_port``:
    ``SO_REUSEPORT``, one socket per worker, the kernel spreading connections over them.
    Raises FerkitError in one line when the address is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise FerkitError(f"serve: --port {port}: cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def _worker(port: int, log_level: str, parent: int) -> None:
    """One ``--workers`` process (spawned): the app from ``FERKIT_SERVE_*`` on its own socket."""
    import sys

    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from ferkit._process import die_with_parent

    die_with_parent(parent)
    settings = Settings()
    try:
        sock = listening_socket(settings.host, port, reuse_port=True)
    except FerkitError as e:
        print(f"ferkit serve: error: {e}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config("ferkit.serve.app:create_app_from_env", factory=True, host=settings.host, port=port,
                            log_level=log_level, **uvicorn_options(settings))
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve_workers(settings: Settings, log_level: str) -> int:
    """Run ``settings.workers`` worker processes, whose settings are in ``FERKIT_SERVE_*``, until
    SIGINT or SIGTERM; a worker that dies is replaced, one that fails to start stops them all
    (exit status 1). Each worker has its own ``SO_REUSEPORT`` socket; the port is checked here
    first, so a taken port is one line before any worker starts."""
    import multiprocessing as mp
    import signal

    from prometheus_client import multiprocess
    from uvicorn.config import STARTUP_FAILURE

    if not hasattr(socket, "SO_REUSEPORT"):
        raise FerkitError("serve: --workers above 1 needs SO_REUSEPORT (Linux, macOS); use --workers 1")
    with listening_socket(settings.host, settings.port) as probe:
        port = probe.getsockname()[1]  # the one picked for --port 0
    ctx = mp.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        proc = ctx.Process(target=_worker, args=(port, log_level, os.getpid()), name="ferkit-serve-worker")
        proc.start()
        return proc

    status = 0
    workers = [start() for _ in range(settings.workers)]
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(workers):
                if proc.exitcode is None:
                    continue
                if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                    multiprocess.mark_process_dead(proc.pid)
                if proc.exitcode == STARTUP_FAILURE:
                    log.error("worker %d failed to start; stopping the server", proc.pid)
                    status = 1
                    stop.set()
                    break
                log.warning("worker %d exited (status %s); starting another", proc.pid, proc.exitcode)
                workers[i] = start()
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(10)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
