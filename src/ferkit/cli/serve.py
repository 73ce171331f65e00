"""`ferkit serve`: the models over HTTP (FastAPI + uvicorn) and a live-camera page at ``/``.

Binds 127.0.0.1 unless ``--host`` says otherwise. Endpoints: ``POST /v1/predict`` (multipart field
``file`` or a raw ``image/*`` body; ``?annotate=true`` for a JPEG), ``WebSocket /v1/ws``, ``GET
/health``, ``GET /v1/models``, ``GET /metrics`` (Prometheus), the OpenAPI document at ``/openapi.json``. Bad uploads get a 4xx
``{"detail": "..."}``, a full server 503. Requests must name this server in ``Host`` (loopback names
unless ``--allowed-hosts``), browsers' cross-site requests are refused, and ``--token`` requires a
bearer token. Every option is also an environment variable ``FERKIT_SERVE_<OPTION>``.

    ferkit serve --port 8000
    curl -F file=@photo.jpg http://127.0.0.1:8000/v1/predict
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import sys
import tempfile

from ferkit.errors import FerkitError


def settings_from_args(a: argparse.Namespace):
    """The server Settings for parsed ``ferkit serve`` arguments (unset options keep their defaults)."""
    from pydantic import ValidationError

    from ferkit.serve.settings import Settings

    given = {k: getattr(a, k) for k in ("host", "port", "model", "detector", "backend", "device", "min_size", "workers",
                                        "max_upload_mb", "max_megapixels", "max_detect_megapixels", "max_batch", "batch_wait_ms",
                                        "max_pending", "request_budget_s", "head_timeout_s",
                                        "allowed_hosts", "token")}
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        raise FerkitError(f"serve: --{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(a: argparse.Namespace) -> int:
    import uvicorn

    from ferkit.detect import list_detectors
    from ferkit.models._shipped import resolve_model_path
    from ferkit.serve.server import uvicorn_options
    from ferkit.serve.settings import ENV_PREFIX

    s = settings_from_args(a)
    resolve_model_path(s.model)  # a wrong --model fails here in one line, not in the server's startup
    if s.detector is not None and s.detector not in list_detectors():
        raise FerkitError(f"serve: unknown detector {s.detector!r} (known: {', '.join(list_detectors())})")
    if not _is_loopback(s.host) and s.token is None:
        print(f"ferkit serve: warning: listening on {s.host} without --token: anyone who can reach this machine can "
              "use the server (set --token or FERKIT_SERVE_TOKEN; put TLS in front for untrusted networks)", file=sys.stderr)
    shown = f"[{s.host}]" if ":" in s.host else s.host
    print(f"ferkit serve: http://{shown}:{s.port}/  (model {s.model}, {s.workers} worker"
          f"{'s' * (s.workers != 1)}; Ctrl+C to stop)", file=sys.stderr)
    log_level = "debug" if a.verbose else "info"
    if s.workers == 1:
        from ferkit.serve import create_app

        uvicorn.run(create_app(s), host=s.host, port=s.port, log_level=log_level, **uvicorn_options(s))
    else:  # each worker process builds its app (and loads its model) from the environment
        from ferkit.serve.metrics import MULTIPROC_ENV

        for key, value in s.model_dump().items():
            if value is not None:
                os.environ[ENV_PREFIX + key.upper()] = value.get_secret_value() if key == "token" else str(value)
        own = not os.environ.get(MULTIPROC_ENV)
        if own:   # /metrics sums the workers' values, kept in files here (removed when the server stops)
            os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="ferkit-serve-metrics-")
        try:
            uvicorn.run("ferkit.serve.app:create_app_from_env", factory=True, host=s.host, port=s.port,
                        workers=s.workers, log_level=log_level, **uvicorn_options(s))
        finally:
            if own:
                shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)
    return 0


def add_parser(sub) -> None:
    from ferkit.detect import list_detectors

    p = sub.add_parser("serve", help="serve the models over HTTP, with a live-camera page",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, help="TCP port (default: 8000)")
    p.add_argument("--model", help="shipped model name or saved model path (default: default)")
    p.add_argument("--detector", choices=list_detectors(), help="face detector (default: dlib-hog+blazeface, as predict)")
    p.add_argument("--backend", choices=("torch", "onnx"), help="inference backend (default: onnx for shipped models on the CPU, else torch)")
    p.add_argument("--device", help="torch device for the classifier (default: cpu)")
    p.add_argument("--min-size", type=int, help="smallest face side in pixels (default: the detector's; 80 makes "
                   "dlib-hog ~4x faster on webcam-sized faces)")
    p.add_argument("--workers", type=int, help="worker processes, each loading the model (about 0.8 GB each; "
                   "default: one per usable core; /metrics sums them)")
    p.add_argument("--max-upload-mb", type=float, help="largest accepted upload in MB (default: 10)")
    p.add_argument("--max-megapixels", type=float, help="largest accepted image, checked from its header before "
                   "decoding (default: 50)")
    p.add_argument("--max-detect-megapixels", type=float, help="detect faces on a copy scaled down to this size, "
                   "boxes mapped back: a huge image costs the detector no more than this (default: 2)")
    p.add_argument("--max-batch", type=int, help="most faces classified together across concurrent requests (default: 32)")
    p.add_argument("--batch-wait-ms", type=float, help="wait this long for more faces before a batch (default: 0, "
                   "batch only what queued while the classifier was busy)")
    p.add_argument("--max-pending", type=int, help="images accepted at once; beyond, 503 + Retry-After before the "
                   "upload is read (default: 16)")
    p.add_argument("--request-budget-s", type=float, help="seconds an image may wait for and use the detector; "
                   "beyond, 503 and its work is dropped (default: 30); work for a client that disconnected is dropped too")
    p.add_argument("--head-timeout-s", type=float, help="seconds a connection may take to send a request's line and "
                   "headers; slower (or half-sent) heads are closed (default: 10)")
    p.add_argument("--allowed-hosts", metavar="NAMES", help="extra Host names to answer to, comma-separated, e.g. "
                   "myserver.lan ('*': any); loopback names and the bound address always")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on everything but /health and the page "
                   "(which takes it as http://host:port/#token=TOKEN); better given as FERKIT_SERVE_TOKEN")
    p.set_defaults(func=run)
