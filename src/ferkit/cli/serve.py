"""`ferkit serve`: the models over HTTP (FastAPI + uvicorn) and a live-camera page at ``/``.

Binds 127.0.0.1 unless ``--host`` says otherwise. Endpoints: ``POST /v1/predict`` (multipart field
``file`` or a raw ``image/*`` body; ``?annotate=true`` for a JPEG), ``WebSocket /v1/ws``, ``GET
/health``, ``GET /v1/models``, ``GET /metrics`` (Prometheus), the OpenAPI document at ``/openapi.json``.
Bad uploads get a 4xx
``{"detail": "..."}``, a full server 503. Requests must name this server in ``Host`` (loopback names
unless ``--allowed-hosts``), browsers' cross-site requests are refused, and ``--token`` requires a
bearer token. Every option is also an environment variable ``FERKIT_SERVE_<OPTION>``.

    ferkit serve --port 8000
    curl -F file=@photo.jpg http://127.0.0.1:8000/v1/predict
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from ferkit.errors import FerkitError


def settings_from_args(a: argparse.Namespace):
    """The server Settings for parsed ``ferkit serve`` arguments (unset options keep their defaults)."""
    from pydantic import ValidationError

    from ferkit.serve.settings import Settings

    given = {k: getattr(a, k, None) for k in Settings.model_fields}
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        if not err["loc"]:  # RecognizerOptions' own check: "field: what is wrong"
            field, _, msg = str(err["msg"]).removeprefix("Value error, ").partition(": ")
            raise FerkitError(f"serve: --{field.replace('_', '-')}: {msg}") from None
        raise FerkitError(f"serve: --{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None


def run(a: argparse.Namespace) -> int:
    import uvicorn

    from ferkit.models import resolve_model_path
    from ferkit.serve.metrics import MULTIPROC_ENV, make_multiproc_dir, remove_stale_dirs
    from ferkit.serve.security import is_loopback
    from ferkit.serve.server import serve_workers, uvicorn_options
    from ferkit.serve.settings import ENV_PREFIX

    s = settings_from_args(a)
    resolve_model_path(s.model)  # a wrong --model fails here in one line, not in the server's startup
    s.recognizer_options().check()  # an option the detector cannot take: the same line as ferkit predict's
    if not is_loopback(s.host) and s.token is None:
        print(f"ferkit serve: warning: listening on {s.host} without --token: anyone who can reach this machine can "
              "use the server (set --token or FERKIT_SERVE_TOKEN; put TLS in front for untrusted networks)",
              file=sys.stderr)
    shown = f"[{s.host}]" if ":" in s.host else s.host
    print(f"ferkit serve: http://{shown}:{s.port}/  (model {s.model}, {s.workers} worker"
          f"{'s' * (s.workers != 1)}; Ctrl+C to stop)", file=sys.stderr)
    log_level = "debug" if a.verbose else "info"
    remove_stale_dirs()
    if s.workers == 1:
        from ferkit.serve import create_app

        uvicorn.run(create_app(s), host=s.host, port=s.port, log_level=log_level, **uvicorn_options(s))
        return 0
    # each worker process builds its app (and loads its model) from the environment
    for key, value in s.model_dump().items():
        if value is not None:
            os.environ[ENV_PREFIX + key.upper()] = value.get_secret_value() if key == "token" else str(value)
    own = not os.environ.get(MULTIPROC_ENV)
    if own:   # /metrics sums the workers' values, kept in files here (removed when the server stops)
        os.environ[MULTIPROC_ENV] = make_multiproc_dir()
    try:
        return serve_workers(s, log_level)
    finally:
        if own:
            shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the models over HTTP, with a live-camera page",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, help="TCP port (default: 8000)")
    p.add_argument("--workers", type=int, help="worker processes, each loading the model (default: one per "
                   "usable core; /metrics sums them)")
    p.add_argument("--max-upload-mb", type=float, help="largest accepted upload in MB (default: 10)")
    p.add_argument("--max-batch", type=int,
                   help="most faces classified together across concurrent requests (default: 32)")
    p.add_argument("--batch-wait-ms", type=float, help="wait this long for more faces before a batch (default: 0, "
                   "batch only what queued while the classifier was busy)")
    p.add_argument("--max-pending", type=int, help="images accepted at once, each taking its place once its upload is "
                   "complete; beyond, 503 + Retry-After; uploads being received hold at most this many times "
                   "--max-upload-mb (default: 16)")
    p.add_argument("--request-budget-s", type=float, help="seconds an image may wait for and use the detector; "
                   "beyond, 503 and its work is dropped (default: 30); work for a client that disconnected is "
                   "dropped too")
    p.add_argument("--head-timeout-s", type=float, help="seconds a connection may take to send a request's line and "
                   "headers; slower (or half-sent) heads are closed (default: 10)")
    p.add_argument("--body-timeout-s", type=float, help="seconds a request's body may take after its head; a slower "
                   "or stalled upload gets 408 and its connection is closed (default: 60)")
    p.add_argument("--min-body-rate-kb-s", type=float, help="slowest average upload rate in KB/s, checked after the "
                   "first 5 s of a body; slower uploads get 408 (default: 10; 0: only --body-timeout-s)")
    p.add_argument("--allowed-hosts", metavar="NAMES", help="extra Host names to answer to, comma-separated, e.g. "
                   "myserver.lan ('*': any); loopback names and the bound address always")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on everything but /health and the page "
                   "(which takes it as http://host:port/#token=TOKEN); better given as FERKIT_SERVE_TOKEN")
    # the model and face options: those of ferkit predict (ferkit.infer.RecognizerOptions), generated
    from ferkit.infer import NOT_SERVED, RecognizerOptions, add_arguments

    add_arguments(p, RecognizerOptions, exclude=NOT_SERVED)
    p.set_defaults(func=run)
