"""``POST /v1/predict``: an image (multipart field ``file``, or the raw body with an ``image/*``
Content-Type) -> every face with its emotion, or the annotated JPEG with ``?annotate=true``.

The handler reads the body itself, so that every bad upload gets a 4xx ``{"detail": ...}``
answer: an over-size body is read to the end (up to a cap) and dropped rather than left unread, so
the client receives the answer and the connection stays usable.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from ferkit.serve.deps import EngineDep, SettingsDep
from ferkit.serve.errors import InputError
from ferkit.serve.schemas import ErrorResponse, PredictResponse
from ferkit.serve.settings import Settings

__all__ = ["MULTIPART_SLACK", "read_body", "router"]

router = APIRouter(tags=["predict"])

#: room for the multipart boundaries and part headers on top of the image size limit
MULTIPART_SLACK = 64 * 1024
#: an over-size body is read and dropped up to this many bytes past the limit; beyond, the
#: connection is closed without reading (the client may then see a reset instead of the answer)
DRAIN_CAP = 64 * 1024 * 1024

_BINARY = {"type": "string", "format": "binary"}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff")
_REQUEST_BODY = {
    "required": True,
    "description": "The image: a multipart upload in the field `file`, or the raw bytes with an image Content-Type. "
                   "JPEG, PNG, WebP, BMP, TIFF or GIF (told from the first bytes; others get 415); "
                   "at most --max-upload-mb (10 MB by default) and --max-megapixels.",
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": _BINARY}}},
        **{t: {"schema": _BINARY} for t in _IMAGE_TYPES},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Empty body or file, malformed multipart, no `file` field"},
    413: {"model": ErrorResponse,
          "description": "Upload over the size limit, or an image whose header claims too many pixels"},
    415: {"model": ErrorResponse, "description": "Content-Type is neither multipart/form-data nor image/*"},
    422: {"model": ErrorResponse,
          "description": "Not an image, a truncated or corrupt image, or an invalid query parameter"},
    408: {"model": ErrorResponse, "description": "The body was not complete within --body-timeout-s, or came slower "
                                                "than --min-body-rate-kb-s; the connection is closed"},
    503: {"model": ErrorResponse, "description": "Busy: --max-pending images in progress, or too many bytes of uploads "
                                                "being received; retry after `Retry-After` seconds"},
}


def _too_large(limit: int, size: int | None) -> InputError:
    got = f"{size / 1e6:.1f} MB" if size is not None else "more"
    return InputError(413, f"upload too large: {got}; the limit is {limit / 1e6:g} MB (ferkit serve --max-upload-mb)")


async def read_body(request: Request, limit: int, *, slack: int = 0) -> bytes:
    """The request body, at most ``limit + slack`` bytes; raises InputError 413 (naming ``limit``)
    after reading and dropping the rest (up to DRAIN_CAP), or at once when the declared
    Content-Length is beyond that."""
    shown, limit = limit, limit + slack
    declared: int | None = None
    if "content-length" in request.headers:
        try:
            declared = int(request.headers["content-length"])
        except ValueError:
            raise InputError(400, f"bad Content-Length: {request.headers['content-length']!r}") from None
        if declared > limit + DRAIN_CAP:
            raise _too_large(shown, declared)
    over = declared is not None and declared > limit
    buf = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            over = True
        if over:
            if size > limit + DRAIN_CAP:
                break
            continue
        buf += chunk
    if over:
        raise _too_large(shown, size if declared is None else declared)
    return bytes(buf)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


async def _multipart_file(request: Request, body: bytes, limit: int) -> tuple[bytes, str | None]:
    """The ``file`` part of a multipart body already read into memory."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=16)  # malformed: HTTPException 400
    try:
        part = form.get("file")
        if part is None:
            fields = ", ".join(repr(k) for k in form) or "none"
            raise InputError(400, f"multipart upload has no field 'file' (fields: {fields})")
        if not isinstance(part, UploadFile):
            raise InputError(400, "multipart field 'file' must be a file, not a text value")
        ptype = media_type(part.content_type)
        if ptype and not (ptype.startswith("image/") or ptype == "application/octet-stream"):
            raise InputError(415, f"unsupported file type {ptype!r}: upload an image (image/jpeg, image/png, ...)")
        data = await part.read()
        if len(data) > limit:
            raise _too_large(limit, len(data))
        if not data:
            raise InputError(400, f"empty file: {part.filename or 'the upload'} has no bytes")
        return data, part.filename or None
    finally:
        await form.close()


async def image_from_request(request: Request, settings: Settings) -> tuple[bytes, str | None]:
    """The uploaded image bytes and the file name (multipart) from a request; InputError otherwise."""
    limit = settings.max_upload_bytes
    mtype = media_type(request.headers.get("content-type"))
    body = await read_body(request, limit, slack=MULTIPART_SLACK if mtype == "multipart/form-data" else 0)
    if mtype == "multipart/form-data":
        return await _multipart_file(request, body, limit)
    if not body:
        raise InputError(400, "empty body: send an image as the multipart field 'file' or as the raw body "
                              "with an image Content-Type")
    if not mtype:
        raise InputError(415, "no Content-Type: use multipart/form-data (field 'file') or image/jpeg, image/png, ...")
    if not mtype.startswith("image/"):
        raise InputError(415, f"unsupported Content-Type {mtype!r}: use multipart/form-data (field 'file') "
                              "or an image type (image/jpeg, image/png, ...)")
    return body, None


@router.post(
    "/v1/predict",
    summary="Faces and emotions in one image",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses={200: {"description": "Every face (JSON), or the annotated JPEG with `annotate=true`",
                     "content": {"image/jpeg": {"schema": _BINARY}}}, **_ERRORS},
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def predict(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    annotate: Annotated[bool, Query(description="return the image with boxes, labels and probability bars (JPEG) "
                                                "instead of JSON")] = False,
) -> Any:
    """Every face in the image with its box `[x, y, w, h]`, emotion, confidence and class probabilities
    (the face keys of `ferkit predict --format json`), the image size, the model and timing."""
    # read first (within --body-timeout-s, see ferkit.serve.server.BodyLimits): a place is taken
    # only by a complete upload, so slow senders cannot hold them; 503 here when the server is full
    data, name = await image_from_request(request, settings)
    with engine.admit():
        pred = await engine.predict(data, path=name, keep_image=annotate, gone=request.is_disconnected)
        if annotate:
            request.app.state.metrics.faces.inc(len(pred.result.faces))
            jpeg = await engine.run_cpu(engine.annotated_jpeg, pred)
            return Response(jpeg, media_type="image/jpeg",
                            headers={"X-Faces": str(len(pred.result.faces)),
                                     "X-Total-Ms": str(pred.timing["total_ms"])})
    request.app.state.metrics.faces.inc(len(pred.result.faces))
    return {**pred.result.to_dict(), "model": settings.model, "timing": pred.timing}
