"""`Recognizer`: detect faces -> crop (margin, optional eye alignment) -> the model's own
preprocessing -> batched classification -> typed results; for images, folders and video streams."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from ferkit.detect import DEFAULT_DETECTOR, FaceDetector, Faces, clip_boxes, crop_face, get_detector, landmarks
from ferkit.errors import FerkitError
from ferkit.images import decode
from ferkit.infer._backends import load_classifier, model_prior, prior_shift, probabilities
from ferkit.infer._io import to_rgb_array
from ferkit.infer._options import RecognizerOptions, StreamOptions
from ferkit.infer._sources import VideoSource, open_source
from ferkit.infer._tracker import DetectAndFollow, IoUTracker
from ferkit.types import FaceResult, FrameResult, ImageResult

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FaceBatch", "Prepared", "Recognizer"]

ImageLike = Any  # str | os.PathLike | np.ndarray (RGB uint8) | PIL.Image.Image


@dataclass
class FaceBatch:
    """The faces of one image or frame on their way through the pipeline: made by
    :meth:`Recognizer.prepare` (decoded, detected, cropped) and completed by :meth:`Recognizer.classify`
    (``probabilities``; ``track_ids`` from a video's tracker). Every entry point (predict, video, webcam,
    batch, serve, explain, ``evaluate --detect``) goes through it.

    Boxes (``faces``) and ``landmarks`` are in the file's pixels, whatever size the image was decoded
    or detected at, mapped by one rule (:func:`ferkit.detect.clip_boxes`: corners rounded, clipped to
    the image). ``image`` is the decoded array when asked for (``keep_image``), ``scale`` the file's
    pixels per pixel of it (> 1 when a large JPEG was decoded at a reduced size)."""

    path: str | None
    faces: Faces
    landmarks: np.ndarray | None
    crops: list[np.ndarray]
    size: tuple[int, int]  # (width, height)
    image: np.ndarray | None = field(default=None, repr=False)
    scale: float = 1.0
    probabilities: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    #: milliseconds spent: ``decode_ms`` (files and bytes), ``detect_ms`` (detection, landmarks, crops)
    timing: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def points(self) -> np.ndarray | None:
        """The landmarks (the name of this field before ``FaceBatch``)."""
        return self.landmarks

    def face_results(self, classes: Sequence[str]) -> list[FaceResult]:
        """One :class:`FaceResult` per face (after :meth:`Recognizer.classify`)."""
        if self.probabilities is None:
            raise FerkitError("FaceBatch: classify it first (Recognizer.classify(batch))")
        out = []
        for i, (box, score) in enumerate(self.faces):
            p = self.probabilities[i]
            k = int(np.argmax(p))
            out.append(FaceResult(
                box=tuple(int(v) for v in box), emotion=classes[k], confidence=float(p[k]),
                probabilities={c: float(v) for c, v in zip(classes, p)},
                landmarks=None if self.landmarks is None else self.landmarks[i],
                track_id=None if self.track_ids is None else int(self.track_ids[i]),
                detection_score=float(score),
            ))
        return out

    def result(self, classes: Sequence[str]) -> ImageResult:
        """The :class:`ImageResult` of this image."""
        return ImageResult(self.path, self.face_results(classes), *self.size)


#: the name of FaceBatch before it carried probabilities (kept for callers of ferkit <= 0.1)
Prepared = FaceBatch


#: the default working size of face detection (pixels): see ``Recognizer(detect_max_pixels=)``
DETECT_MAX_PIXELS = 2_000_000

class Recognizer:
    """Emotions of every face in images, folders and videos, with one model and one face detector.

    Args:
        model: a shipped model name (``"default"``), a saved model path (``.safetensors``/``.json``
            pair or its folder), or a ``(nn.Module, meta)`` pair as returned by ``ferkit.models.load_model``
            (any module mapping ``(N, C, H, W)`` to ``(N, classes)`` logits, an ensemble included).
        detector: a detector name (``"dlib-hog+blazeface"`` default, ``"dlib-hog"``, ``"blazeface"``, ``"haar"``,
            ``"dlib-cnn"``; see ``ferkit.detect``) or a detector object.
        device: torch device for the classifier (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        align: rotate each face so that the eyes are level before classifying (needs landmarks:
            the 5-point model unless ``landmarks=68``). Off by default: it did not measurably help
            the shipped model (1,500 FER2013 PrivateTest faces: 53.1 % without, 53.3 % with;
            ``benchmarks/bench_predict.py --align-check``) and costs a landmark pass per face.
        landmarks: 5 or 68 to compute dlib landmarks and report them per face; None for none
            (unless ``align`` needs them).
        margin: context added around each box before cropping, as a fraction of the box per side;
            None = the detector's ``crop_margin`` (0.05 for Haar and dlib-hog, 0.1 for dlib-cnn:
            benchmarks/crop_geometry.py), which frames faces like the FER2013 training crops.
        min_size: smallest face side in pixels (None: the detector's default).
        max_faces: keep at most this many faces per image (highest detector scores).
        batch_size: faces per forward pass of the classifier.
        detector_options: extra detector keyword options (``upsample``, ``threshold``, ``scale_factor``...).
        backend: ``"torch"`` or ``"onnx"``; None (default): ONNX Runtime for a shipped model or an
            exported ``.onnx`` on the CPU (its ONNX file ships in the package: no PyTorch import), PyTorch
            for other models and devices (``ferkit.infer._backends.default_backend``). ``"onnx"``: ONNX
            Runtime on the CPU, with ``model`` a shipped model or an exported ``.onnx``/``.json`` pair
            (inference never exports: ``ferkit export MODEL --out FILE.onnx`` first). Probabilities match
            PyTorch within 1e-4.
        threads: ONNX Runtime intra-op threads (None: ``torch.get_num_threads()`` when PyTorch is loaded, else
            the CPUs).
        detect_max_pixels: detect faces on a copy of the image scaled down to at most this many
            pixels (boxes mapped back; crops still cut from the full image), so that a huge image
            costs the detector no more than this. Default ``DETECT_MAX_PIXELS`` (2 megapixels, as
            ``ferkit serve``; chosen by ``benchmarks/bench_working_size.py``: on the VOC photos
            enlarged to 3 MP, dlib-hog finds 42 of 43 faces in 0.82 s per photo instead of 43 in
            1.48 s, BlazeFace 43 of 43 either way); None or 0: the image as it is. The detector's
            ``min_size`` then applies to the copy: faces under ~36 px there (~50 px in a 4 MP
            photo) need ``detect_max_pixels=None``.
        max_pixels: most pixels decoded from an image file, checked from its header (a large JPEG
            counts at the size ``detect_max_pixels`` lets it be decoded at); None:
            ``ferkit.images.MAX_MEGAPIXELS`` (50, the server's default too). A larger image raises
            ImageReadError naming it.
        prior: the class prior to predict under (``ferkit.infer.prior_shift``): ``"train"`` (as the
            model learnt it), ``"uniform"``, a balance from 0 (train) to 1 (uniform), or class
            frequencies; None (default): the model's own choice, its JSON's ``prior`` (the shipped
            models' were chosen by ``scripts/choose_prior.py``, ``ferkit models`` lists them; ``"train"``
            for a model without one).

    Preprocessing comes only from the model's metadata (``ferkit.data.preprocess.eval_transform``, the same
    numpy steps for both backends).
    Load once, call many times; nothing is printed.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | tuple[nn.Module, dict[str, Any]] = "default",
        detector: str | FaceDetector = DEFAULT_DETECTOR,
        *,
        device: str | torch.device = "cpu",
        align: bool = False,
        landmarks: int | None = None,
        margin: float | None = None,
        min_size: int | None = None,
        max_faces: int | None = None,
        batch_size: int = 64,
        detector_options: dict[str, Any] | None = None,
        backend: str | None = None,
        threads: int | None = None,
        prior: str | float | Sequence[float] | dict[str, float] | None = None,
        detect_max_pixels: int | None = DETECT_MAX_PIXELS,
        max_pixels: int | None = None,
    ):
        from ferkit.data.preprocess import eval_transform

        self.classifier, meta = load_classifier(model, backend, device=device, threads=threads)
        self.backend: str = self.classifier.backend
        #: the torch device (torch backend), or ``"cpu"`` (ONNX Runtime)
        self.device = getattr(self.classifier, "device", "cpu")
        self.model: nn.Module | None = getattr(self.classifier, "model", None)  # the torch module (torch backend)
        self.meta = dict(meta)
        self.classes: list[str] = list(meta["classes"])
        self.transform = eval_transform(meta["input"])
        #: the class prior it predicts under (``prior``, or the model's own for None); see `prior_shift`
        self.prior = model_prior(self.meta, prior)
        #: change of log prior per class (None: the model's training prior)
        self.prior_shift = prior_shift(self.meta, self.prior)
        if isinstance(detector, str):
            self.detector = get_detector(detector, min_size=min_size, **(detector_options or {}))
        else:
            if min_size is not None or detector_options:
                raise FerkitError("Recognizer: give min_size and detector_options to the detector object itself")
            self.detector = detector
        if landmarks not in (None, 5, 68):
            raise FerkitError(f"Recognizer: landmarks must be 5, 68 or None, not {landmarks!r}")
        if batch_size < 1:
            raise FerkitError(f"Recognizer: batch_size must be >= 1, not {batch_size}")
        self.align = bool(align)
        self.landmarks = landmarks if landmarks is not None else (5 if align else None)
        self.margin = float(getattr(self.detector, "crop_margin", 0.0) if margin is None else margin)
        self.max_faces = max_faces
        self.batch_size = int(batch_size)
        if detect_max_pixels and detect_max_pixels < 64 * 64:
            raise FerkitError(f"Recognizer: detect_max_pixels must be at least 4096, not {detect_max_pixels}")
        self.detect_max_pixels = detect_max_pixels or None
        if max_pixels is not None and max_pixels < 1:
            raise FerkitError(f"Recognizer: max_pixels must be positive, not {max_pixels}")
        #: most pixels decoded from an image file (None: ``ferkit.images.MAX_MEGAPIXELS``)
        self.max_pixels = max_pixels

    @classmethod
    def from_options(cls, options: RecognizerOptions, **overrides: Any) -> Recognizer:
        """The Recognizer for ``options`` (what every entry point builds; see ``ferkit.infer.RecognizerOptions``);
        ``overrides``: Recognizer arguments that are not options (``threads``, or ``model`` as a loaded pair)."""
        return cls(**{**options.recognizer_kwargs(), **overrides})

    def __repr__(self) -> str:
        name = self.meta.get("name") or self.meta.get("arch")
        return (f"Recognizer(model={name!r}, detector={self.detector.name!r}, device={str(self.device)!r}, "
                f"align={self.align}, margin={self.margin})")

    # ------------------------------------------------------------------------------ building blocks
    def detect(self, image: np.ndarray) -> tuple[Faces, np.ndarray | None]:
        """Faces and, when configured, their landmarks ``(n, 5|68, 2)`` in an RGB uint8 image."""
        faces = self._find(image)
        return faces, self._landmarks(image, faces)

    def _landmarks(self, image: np.ndarray, faces: Faces) -> np.ndarray | None:
        return landmarks(image, faces, self.landmarks) if self.landmarks and len(faces) else None

    def _find(self, image: np.ndarray) -> Faces:
        """The detector's faces (at the working size), ``max_faces`` best, in reading order."""
        faces = self._detect_scaled(image)
        if self.max_faces is not None and len(faces) > self.max_faces:
            faces = faces[np.argsort(-faces.scores, kind="stable")[: self.max_faces]]
        return faces.sorted()

    def _detect_scaled(self, image: np.ndarray) -> Faces:
        """The detector on ``image``, or on its copy scaled to ``detect_max_pixels`` with the boxes
        mapped back (outward to whole pixels, clipped to the image)."""
        h, w = image.shape[:2]
        if not self.detect_max_pixels or h * w <= self.detect_max_pixels:
            return self.detector.detect(image)
        import cv2

        scale = (self.detect_max_pixels / (h * w)) ** 0.5
        small = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
        found = self.detector.detect(small)
        if not len(found):
            return found
        sx, sy = w / small.shape[1], h / small.shape[0]
        xyxy = found.xyxy.astype(np.float64) * [sx, sy, sx, sy]
        x1, y1 = np.floor(xyxy[:, 0]).clip(0, w - 1), np.floor(xyxy[:, 1]).clip(0, h - 1)
        x2, y2 = np.ceil(xyxy[:, 2]).clip(1, w), np.ceil(xyxy[:, 3]).clip(1, h)
        boxes = np.stack([x1, y1, np.maximum(x2 - x1, 1), np.maximum(y2 - y1, 1)], axis=1)
        return Faces(boxes.astype(np.int64), found.scores)

    def crop(self, image: np.ndarray, faces: Faces, points: np.ndarray | None = None) -> list[np.ndarray]:
        """The crops the classifier sees (before the model's preprocessing), one per face."""
        return [
            crop_face(image, box, margin=self.margin, points=points[i] if self.align and points is not None else None)
            for i, box in enumerate(faces.boxes)
        ]

    @overload
    def classify(self, crops: FaceBatch) -> FaceBatch: ...
    @overload
    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...

    def classify(self, crops: FaceBatch | Sequence[np.ndarray]) -> FaceBatch | np.ndarray:
        """Class probabilities ``(len(crops), len(classes))`` float64 (rows sum to 1) for face crops
        (RGB uint8 arrays of any size), in batches of ``batch_size``; softmax of the logits divided by
        the model's stored ``temperature`` (from ``ferkit calibrate``; none: 1), for either backend.
        Given a :class:`FaceBatch`, fills its ``probabilities`` and returns it."""
        if isinstance(crops, FaceBatch):
            crops.probabilities = self.classify(crops.crops)
            return crops
        out = np.zeros((len(crops), len(self.classes)), np.float64)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            x = np.stack([self.transform(c) for c in chunk])
            out[start : start + len(chunk)] = probabilities(self.classifier(x), self.meta.get("temperature"),
                                                            self.prior_shift)
        return out

    def prepare(self, image: ImageLike, path: str | None = None, *, keep_image: bool = False,
                formats: Mapping[str, str] | None = None) -> FaceBatch:
        """Decode, detect and crop: the steps before :meth:`classify`, for a file path, encoded bytes
        (an upload), an RGB array or a video frame, or a PIL image. Files and bytes go through
        ``ferkit.images.decode`` (a large JPEG at a reduced size, ``reduce_to=detect_max_pixels``;
        ``formats``: the accepted Pillow formats, None for all). Boxes and landmarks are in the
        file's pixels; ``keep_image`` keeps the decoded array (possibly reduced) in ``FaceBatch.image``."""
        t0 = time.perf_counter()
        if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)):
            data = bytes(image) if isinstance(image, (bytearray, memoryview)) else image
            rgb, (w, h) = decode(data, reduce_to=self.detect_max_pixels, max_pixels=self.max_pixels, formats=formats)
        else:
            rgb = to_rgb_array(image)
            h, w = rgb.shape[:2]
        t1 = time.perf_counter()
        batch = self._batch(rgb, path, self._find(rgb), (w, h), keep_image)
        batch.timing = {"decode_ms": (t1 - t0) * 1e3, "detect_ms": (time.perf_counter() - t1) * 1e3}
        return batch

    def _batch(self, rgb: np.ndarray, path: str | None, faces: Faces, size: tuple[int, int],
               keep_image: bool = False) -> FaceBatch:
        """Landmarks and crops of ``faces`` (found in ``rgb``), then boxes and landmarks mapped to ``size``
        (the file's pixels) by the one rule, :func:`ferkit.detect.clip_boxes`."""
        w, h = size
        points = self._landmarks(rgb, faces)
        crops = self.crop(rgb, faces, points)
        scale = w / rgb.shape[1]
        if scale != 1.0:
            faces = Faces(clip_boxes(faces.boxes * scale, w, h), faces.scores)
            points = None if points is None else points * scale
        return FaceBatch(path, faces, points, crops, (w, h), rgb if keep_image else None, scale)

    # ------------------------------------------------------------------------------ images
    def predict(self, image: ImageLike) -> ImageResult:
        """All faces in one image (a path, an RGB uint8 array or a PIL image) with their emotions.

        An image without a face gives an ImageResult with an empty ``faces`` list. Raises
        ImageReadError (one line naming the file) for a missing, non-image or truncated file."""
        path = os.fspath(image) if isinstance(image, (str, os.PathLike)) else None
        return self.classify(self.prepare(image, path)).result(self.classes)

    __call__ = predict

    def iter_predict(
        self, images: Iterable[ImageLike], *, on_error: Callable[[Any, FerkitError], None] | None = None
    ) -> Iterator[ImageResult]:
        """Results for many images, in order, classifying the faces of consecutive images together
        (``batch_size`` faces per forward pass). Only face crops are kept between detection and
        classification, so a long folder needs little memory.

        ``on_error(item, error)``: called for an image that cannot be read (FerkitError), which is
        then skipped; None (default) raises instead."""
        pending: list[FaceBatch] = []
        n_crops = 0

        def flush() -> Iterator[ImageResult]:
            probs = self.classify([c for p in pending for c in p.crops])
            start = 0
            for p in pending:
                p.probabilities = probs[start : start + len(p.crops)]
                yield p.result(self.classes)
                start += len(p.crops)

        for item in images:
            path = os.fspath(item) if isinstance(item, (str, os.PathLike)) else None
            try:
                p = self.prepare(item, path)
            except FerkitError as e:
                if on_error is None:
                    raise
                on_error(item, e)
                continue
            if not p.crops and not pending:  # nothing to classify and nobody waiting: out at once
                yield ImageResult(p.path, [], *p.size)
                continue
            pending.append(p)
            n_crops += len(p.crops)
            if n_crops >= self.batch_size:
                yield from flush()
                pending, n_crops = [], 0
        if pending:
            yield from flush()

    def predict_batch(
        self, images: Iterable[ImageLike], *, on_error: Callable[[Any, FerkitError], None] | None = None
    ) -> list[ImageResult]:
        """``list(iter_predict(images))``: one ImageResult per readable image, in order."""
        return list(self.iter_predict(images, on_error=on_error))

    # ------------------------------------------------------------------------------ video
    def stream(
        self,
        source: str | int | os.PathLike[str] | VideoSource,
        options: StreamOptions | None = None,
        *,
        stride: int | None = None,
        detect_every: int | None = None,
        smoothing: float | None = None,
        iou_threshold: float = 0.3,
        max_missed: int = 15,
        max_frames: int | None = None,
        frames: bool = True,
        skipped: bool = True,
    ) -> Iterator[FrameResult]:
        """Per-frame results for a video file, a stream URL or a camera index (a generator: results
        are produced one frame at a time and nothing is accumulated).

        Args:
            source: a video path, a URL, a camera index (``0`` or ``"0"``), or an open VideoSource.
            options: a :class:`~ferkit.infer.StreamOptions` (the defaults of ``ferkit video``: detection on
                every 4th frame, smoothing 0.5); ``stride``, ``detect_every``, ``smoothing`` and
                ``max_frames`` given here override its fields.
            stride: classify every ``stride``-th frame (frame skipping for slow machines); the
                frames in between are yielded with ``processed=False`` and the last faces.
            detect_every: run the face detector on every ``detect_every``-th processed frame and
                follow the faces between two detections by optical flow (``DetectAndFollow``);
                the detector also runs as soon as a face is lost (a cut, a face leaving or
                covered). A face that enters is found at the next detection, at most
                ``detect_every - 1`` frames late. 1: detect on every frame.
            smoothing: EMA factor for each track's probabilities (0 = off; see IoUTracker).
            iou_threshold, max_missed: tracker settings; a face keeps its ``track_id`` while its box
                overlaps the previous one by ``iou_threshold`` and is not lost for more than
                ``max_missed`` processed frames.
            max_frames: stop after this many frames.
            frames: attach each RGB frame as ``result.image`` (for drawing or recording); the caller
                should not keep them all.
            skipped: yield the frames skipped by ``stride`` too (default); False yields only the
                processed frames, and the skipped ones are grabbed without being decoded (faster).
        Raises SourceError (one line) for a missing or unreadable video or a camera that does not exist.
        """
        given = {"stride": stride, "detect_every": detect_every, "smoothing": smoothing, "max_frames": max_frames}
        opts = (options or StreamOptions()).replace(**{k: v for k, v in given.items() if v is not None})
        stride, detect_every, smoothing, max_frames = opts.stride, opts.detect_every, opts.smoothing, opts.max_frames
        src = source if isinstance(source, VideoSource) else open_source(source)
        tracker = IoUTracker(iou_threshold, max_missed=max_missed, smoothing=smoothing)
        follow = DetectAndFollow(self._find, detect_every, min_size=max(1, self.detector.min_size // 2))
        last: list[FaceResult] = []
        name = src.name if isinstance(src.name, str) else str(src.name)
        try:
            for index, t, rgb in (src if skipped else src.frames(stride)):
                if max_frames is not None and index >= max_frames:
                    break
                processed = index % stride == 0
                if processed:
                    batch = self.classify(self._batch(rgb, name, follow(rgb), (rgb.shape[1], rgb.shape[0])))
                    batch.track_ids, batch.probabilities = tracker.update(batch.faces.boxes, batch.probabilities)
                    last = batch.face_results(self.classes)
                    faces = last
                else:
                    faces = [replace(f) for f in last]
                yield FrameResult(name, faces, src.width, src.height, frame=index, time_s=t, processed=processed,
                                  image=rgb if frames else None)
        finally:
            if not isinstance(source, VideoSource):
                src.close()
