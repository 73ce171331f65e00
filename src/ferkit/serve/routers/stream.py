"""``WebSocket /v1/ws``: the page's live camera.

Protocol: the client sends each frame as one binary message (JPEG, PNG, WebP...); the server
answers each with one text message, a JSON ``StreamResult`` (the ``/v1/predict`` answer plus
``frame``) or, for a frame it cannot use, a ``StreamError`` ``{"detail", "status", "frame"}``; the
connection stays open either way. Frames are answered in order, one at a time, so a client that
sends the next frame only after the answer (as the page does) never builds a backlog. A page from
another origin (another site open in the visitor's browser), a foreign Host or a missing token
(with ``--token``) is refused with close code 1008 (``ferkit.serve.security``).
"""
from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ferkit.serve.deps import EngineDep, SettingsDep
from ferkit.serve.errors import InputError

__all__ = ["router"]

router = APIRouter(tags=["stream"])


@router.websocket("/v1/ws")
async def stream(websocket: WebSocket, settings: SettingsDep, engine: EngineDep) -> None:
    # Host, Origin and token were checked by ferkit.serve.security.Guard; a browser that offered
    # subprotocols (the page's "ferkit", "bearer.<token>") needs one of them echoed
    await websocket.accept(subprotocol="ferkit" if "ferkit" in websocket.scope.get("subprotocols", []) else None)
    frame = 0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            try:
                if data is None:
                    raise InputError(415, "send frames as binary messages (JPEG or PNG bytes), not text")
                if len(data) > settings.max_upload_bytes:
                    raise InputError(413, f"frame too large: {len(data) / 1e6:.1f} MB; the limit is "
                                          f"{settings.max_upload_mb:g} MB")
                with engine.admit():
                    pred = await engine.predict(data)
                websocket.app.state.metrics.faces.inc(len(pred.result.faces))
                await websocket.send_json({**pred.result.to_dict(), "model": settings.model, "timing": pred.timing,
                                           "frame": frame})
            except InputError as e:
                await websocket.send_json({"detail": e.detail, "status": e.status_code, "frame": frame})
            frame += 1
    except WebSocketDisconnect:
        return
