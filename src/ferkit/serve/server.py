"""Running the app under uvicorn with connection-level limits.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) but not a client that opens a
connection and sends its request head slowly or never finishes it: each such connection is held
for as long as the client likes. :class:`HeadTimeoutH11` closes a connection whose request line and
headers are not complete ``head_timeout_s`` seconds after it opened (or after its previous
response), however many bytes trickle in. ``limit_concurrency`` caps connections plus tasks (503
beyond), so a flood of connections cannot exhaust file descriptors either.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ferkit.serve.settings import Settings

log = logging.getLogger("ferkit.serve")


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
