"""Who may talk to the server, checked before any route runs (HTTP and WebSocket alike):

- **Host allow-list**: the ``Host`` header must name this server (loopback names by default, or
  ``--allowed-hosts``), so a page of another site that rebinds its DNS name to 127.0.0.1 is refused.
- **Origin check**: a browser sends ``Origin`` with cross-site requests; a state-changing request
  (anything but GET/HEAD/OPTIONS) or a WebSocket whose Origin is not this server (same scheme, host
  and port, default ports filled in) is refused, so a web page open in the user's browser cannot
  post images to a server on their machine.
- **Bearer token** (``--token`` / ``FERKIT_SERVE_TOKEN``, optional): required on everything but
  ``/health`` and the page's own files, as ``Authorization: Bearer <token>`` or, for the
  WebSocket (browsers cannot set headers there), the subprotocol ``bearer.<token>``.

Refusals are ``{"detail": ...}`` JSON (400 Host, 403 Origin, 401 token) or, on a WebSocket, close
code 1008 before the handshake completes.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from ferkit.errors import shorten

__all__ = ["LOOPBACK_NAMES", "PUBLIC_PATHS", "TOKEN_PATTERN", "Guard", "allowed_hosts_for", "is_loopback"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: reachable without the token: liveness, and the page (it asks for the token itself)
PUBLIC_PATHS = ("/health", "/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)
#: a token travels in a header and a WebSocket subprotocol: URL-safe characters, 16 or more
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,}")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEB_SCHEMES = {"ws": "http", "wss": "https"}  # a WebSocket's scope scheme -> its page's


def is_loopback(host: str) -> bool:
    """Whether a host name or address reaches only this machine: ``localhost``, 127.0.0.0/8, ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind: str, extra: Iterable[str] = ()) -> list[str]:
    """The default Host allow-list for a server bound to ``bind``: the loopback names, the bound
    address itself, and ``extra``. ``*`` in ``extra`` allows any Host."""
    names = [*LOOPBACK_NAMES]
    if bind not in ("0.0.0.0", "::", ""):
        names.append(bind.strip("[]"))
    return list(dict.fromkeys([*names, *(h.strip().lower() for h in extra if h.strip())]))


def _hostname(netloc: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


class Guard:
    """ASGI middleware applying the Host, Origin and token checks (see the module docstring)."""

    def __init__(self, app: Any, *, allowed_hosts: Iterable[str], token: str | None = None):
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}
        self.token = token.encode() if token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.check(scope)
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # the protocol allows 123 bytes
            await send({"type": "websocket.close", "code": 1008, "reason": shorten(problem[1], 120)})
        else:
            status, detail = problem
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)

    def check(self, scope: dict) -> tuple[int, str] | None:
        """``(status, detail)`` of the refusal, or None when the request may go on."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if "*" not in self.allowed and _hostname(host) not in self.allowed:
            return 400, (f"Host {host!r} is not a name of this server (allowed: {', '.join(sorted(self.allowed))}; "
                         "ferkit serve --allowed-hosts)")
        origin = headers.get("origin")
        writes = scope["type"] == "websocket" or scope.get("method") not in _SAFE_METHODS
        scheme = _WEB_SCHEMES.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
        if writes and origin is not None and not same_origin(origin, scheme, host):
            return 403, f"cross-origin request refused: Origin {origin!r} is not this server ({scheme}://{host})"
        path = scope.get("path", "")
        guarded = self.token and path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES)
        if guarded and not any(hmac.compare_digest(t, self.token) for t in _offered_tokens(scope, headers)):
            return 401, "missing or wrong token: send 'Authorization: Bearer <token>' (ferkit serve --token)"
        return None


def _origin(scheme: str, netloc: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of ``scheme://netloc``, the default port filled in; None when malformed."""
    try:
        url = urlparse(f"{scheme}://{netloc}")
        return scheme, url.hostname or "", url.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range or not a number
        return None


def same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether a browser's ``Origin`` header names this server, reached as ``scheme://host`` (the
    ``Host`` header): scheme, host and port all equal. ``null`` (a sandboxed or file page) never is."""
    url = urlparse(origin)
    mine = _origin(scheme.lower(), host)
    return origin != "null" and mine is not None and _origin(url.scheme.lower(), url.netloc) == mine


def _offered_tokens(scope: dict, headers: Headers) -> list[bytes]:
    out = []
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        out.append(auth[7:].strip().encode())
    if scope["type"] == "websocket":
        out += [p[7:].encode() for p in scope.get("subprotocols", []) if p.startswith("bearer.")]
    return out
