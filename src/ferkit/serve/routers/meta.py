"""``GET /health``, ``GET /v1/models`` and the page (``GET /``; its files under ``/static``)."""
from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ferkit import __version__
from ferkit.serve.deps import EngineDep, SettingsDep
from ferkit.serve.schemas import HealthResponse, ModelsResponse

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/health", response_model=HealthResponse, tags=["meta"],
            summary="Liveness, with load and batching counters")
async def health(settings: SettingsDep, engine: EngineDep) -> dict:
    load = {"in_flight": engine.in_flight, "max_pending": settings.max_pending,
            "saturated": engine.in_flight >= settings.max_pending, "waiting": engine.waiting, "refused": engine.refused,
            "abandoned": engine.abandoned}
    return {"status": "ok", "version": __version__, "model": settings.model,
            "uptime_s": round(time.time() - engine.started, 1), "load": load,
            "batching": engine.batcher.stats.as_dict()}


@router.get("/v1/models", response_model=ModelsResponse, tags=["meta"],
            summary="The loaded model and the others available")
async def models(settings: SettingsDep, engine: EngineDep) -> dict:
    from ferkit.models import list_models, shipped_models

    try:
        architectures = list_models()  # they need PyTorch (not in an install without [train])
    except ImportError:
        architectures = []
    rec = engine.recognizer
    meta = rec.meta
    inp = meta.get("input") or {}
    backend = rec.backend
    return {
        "loaded": {
            "name": settings.model, "weights": meta.get("name"), "arch": meta.get("arch"), "classes": engine.classes,
            "input_size": inp.get("size"), "input_channels": inp.get("channels"), "num_params": meta.get("num_params"),
            "status": meta.get("status"), "detector": rec.detector.name, "backend": str(backend),
            "device": str(rec.device),
        },
        "shipped": sorted(shipped_models()),
        "architectures": architectures,
    }


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
