"""ferkit over HTTP: ``ferkit serve`` / ``create_app(settings)``.

>>> from ferkit.serve import Settings, create_app
>>> app = create_app(Settings(model="default", max_upload_mb=10))   # uvicorn.run(app)

Endpoints: ``POST /v1/predict`` (image -> faces and emotions, or an annotated JPEG), ``WebSocket
/v1/ws`` (live frames), ``GET /health``, ``GET /v1/models``, the page at ``GET /`` and the OpenAPI
document at ``/openapi.json`` (``/docs``). Needs FastAPI and uvicorn; the core of ferkit never imports this.
"""
from __future__ import annotations

from ferkit.serve.app import create_app, create_app_from_env
from ferkit.serve.settings import Settings, get_settings

__all__ = ["Settings", "create_app", "create_app_from_env", "get_settings"]
