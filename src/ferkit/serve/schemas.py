"""Response models: pydantic mirrors of ``ferkit.types`` (``FaceResult.to_dict`` / ``ImageResult.to_dict``),
so that the OpenAPI document describes exactly what the endpoints return."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BatchingStats",
    "ErrorResponse",
    "Face",
    "HealthResponse",
    "ModelInfo",
    "ModelsResponse",
    "PredictResponse",
    "StreamError",
    "StreamResult",
    "Timing",
]


class Face(BaseModel):
    """One face; the same keys as ``ferkit predict --format json`` (``FaceResult.to_dict``)."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "box": [296, 205, 340, 340], "emotion": "happy", "confidence": 0.91,
        "probabilities": {"angry": 0.01, "disgust": 0.0, "fear": 0.01, "happy": 0.91, "sad": 0.02,
                          "surprise": 0.01, "neutral": 0.04},
        "detection_score": 2.1}})

    box: Annotated[list[int], Field(min_length=4, max_length=4,
                                    description="[x, y, w, h] integer pixels of the (EXIF-rotated) image, "
                                                "clipped to it")]
    emotion: str = Field(description="the most probable class")
    confidence: float = Field(ge=0, le=1, description="its probability")
    probabilities: dict[str, float] = Field(
        description="every class of the model -> probability (sums to 1), in the model's order")
    track_id: int | None = Field(None, description="track id across video frames (never set by this service)")
    detection_score: float | None = Field(None, description="the face detector's score (scale depends on the detector)")
    landmarks: list[list[float]] | None = Field(None,
                                                description="(x, y) landmark points, when the recognizer computes them")


class Timing(BaseModel):
    """Where the time went, in milliseconds (reading the upload is not included)."""

    decode_ms: float
    detect_ms: float = Field(description="face detection and cropping")
    queue_ms: float = Field(description="waiting for the classifier (busy with other requests)")
    classify_ms: float = Field(description="wall time of the classifier batch this request's faces were part of "
                               "(under load it includes waiting for the GIL, which dlib's detector holds)")
    batch_faces: int = Field(description="faces in that batch, from all requests together (0: no face)")
    total_ms: float


class PredictResponse(BaseModel):
    """Every face in the image (an empty list when there is none): ``ImageResult.to_dict`` plus timing."""

    path: str | None = Field(None, description="the uploaded file's name (multipart uploads only)")
    faces: list[Face]
    width: int = Field(description="image width in pixels, after EXIF rotation")
    height: int
    model: str = Field(description="the model that classified the faces")
    timing: Timing


class StreamResult(PredictResponse):
    """A WebSocket answer to one frame."""

    frame: int = Field(description="0-based count of frames received on this connection")


class ErrorResponse(BaseModel):
    """Every error answer (4xx, 5xx): one line saying what is wrong."""

    model_config = ConfigDict(json_schema_extra={"example": {"detail": "image too large: its header says 50000x50000 "
                                                             "pixels (2500.0 megapixels); the limit is 50 megapixels"}})
    detail: str


class StreamError(ErrorResponse):
    """A WebSocket answer to a frame that could not be used (the connection stays open)."""

    frame: int
    status: int = Field(description="the HTTP status the same upload would get from POST /v1/predict")


class BatchingStats(BaseModel):
    requests: int = Field(description="requests whose faces were classified")
    batches: int = Field(description="classifier forward passes (batches)")
    faces: int
    largest_batch: int
    mean_batch: float = Field(description="faces per batch")


class LoadStats(BaseModel):
    in_flight: int = Field(description="images admitted and not answered yet")
    max_pending: int = Field(description="the limit (ferkit serve --max-pending); beyond it, 503")
    saturated: bool = Field(description="in_flight has reached max_pending: new images are refused for now")
    waiting: int = Field(0, description="images read and waiting for the detection thread (the queue's depth)")
    refused: int = Field(description="images refused with 503 since the start")
    abandoned: int = Field(0, description="images whose client left, or whose time budget ran out, before they "
                              "were processed: their work was dropped")


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    model: str
    uptime_s: float
    load: LoadStats
    batching: BatchingStats


class ModelInfo(BaseModel):
    name: str = Field(description="as requested (--model)")
    weights: str | None = Field(None, description="the weights' own name")
    arch: str | None = None
    classes: list[str]
    input_size: int | None = Field(None, description="side of the square face crop the model sees")
    input_channels: int | None = None
    num_params: int | None = None
    status: str | None = Field(None, description="the weights' status note, if any")
    detector: str
    backend: str
    device: str


class ModelsResponse(BaseModel):
    loaded: ModelInfo = Field(description="the model serving /v1/predict and /v1/ws")
    shipped: list[str] = Field(description="model names shipped with ferkit (usable with ferkit serve --model)")
    architectures: list[str] = Field(description="architectures ferkit can build and train")
