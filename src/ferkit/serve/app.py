"""``create_app(settings)``: the FastAPI application. The model is loaded by the lifespan (not at
import), on a worker thread, before the server accepts connections."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ferkit import __version__
from ferkit.serve.engine import ClientGone, Engine
from ferkit.serve.errors import InputError
from ferkit.serve.metrics import Metrics
from ferkit.serve.routers import meta, predict, stream
from ferkit.serve.security import Guard, allowed_hosts_for
from ferkit.serve.server import BodyLimits
from ferkit.serve.settings import Settings, get_settings

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger("ferkit.serve")

DESCRIPTION = """Facial expression recognition over HTTP.

* `POST /v1/predict`: an image (multipart field `file`, or the raw body with an `image/*` Content-Type) ->
  every face with its box `[x, y, w, h]`, emotion, confidence and probabilities; `?annotate=true` -> JPEG.
* `WebSocket /v1/ws`: binary image frames in, one JSON answer per frame out (used by the page at `/`).
* Every error is `{"detail": "..."}` with a 4xx status (503 with `Retry-After` when busy).
* Host names, cross-site Origins and (with `--token`) a bearer token are checked first (`ferkit.serve.security`).
"""


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path", "header"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "invalid request: " + "; ".join(parts)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for ``settings`` (default: from the environment, ``FERKIT_SERVE_*``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await anyio.to_thread.run_sync(Engine, settings)
        await engine.start()
        app.state.engine = engine
        metrics.refresh()   # with several workers, each one's gauges count from its start
        try:
            yield
        finally:
            await engine.close()

    # no /docs or /redoc: their pages load Swagger UI and ReDoc from a CDN; /openapi.json stays
    app = FastAPI(title="ferkit", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.dependency_overrides[get_settings] = lambda: settings
    metrics = app.state.metrics = Metrics(lambda: getattr(app.state, "engine", None))

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        """Counters in the Prometheus text format (see ferkit.serve.metrics)."""
        return metrics.response()

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # the client closed its connection before its upload was complete: nobody to answer, one line
        log.info("%s %s: the client disconnected before its request body was complete", request.method,
                 request.url.path)
        return Response(status_code=400)

    @app.exception_handler(ClientGone)
    async def _left(request: Request, exc: ClientGone) -> Response:
        log.info("%s %s: the client disconnected before its image was processed; its work was dropped",
                 request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); the server keeps running"},
                            status_code=500)

    app.include_router(predict.router)
    app.include_router(stream.router)
    app.include_router(meta.router)
    app.mount("/static", StaticFiles(directory=meta.STATIC_DIR), name="static")
    token = settings.token.get_secret_value() if settings.token else None
    # innermost: its 408/503 are raised in the route's reads and answered by the handlers above
    app.add_middleware(BodyLimits, timeout_s=settings.body_timeout_s, min_rate=settings.min_body_rate_kb_s * 1e3,
                       budget=settings.body_budget_bytes)
    app.add_middleware(Guard, allowed_hosts=allowed_hosts_for(settings.host, settings.extra_hosts), token=token)
    app.middleware("http")(metrics.middleware)  # outermost: requests the Guard refuses are counted too
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (``ferkit serve --workers N``): settings from ``FERKIT_SERVE_*``."""
    return create_app(Settings())
