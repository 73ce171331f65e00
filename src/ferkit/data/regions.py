"""Facial regions for region voting, cut out with dlib's 68 landmarks.

A face crop is split into the regions of the second paper: ``left_eye`` and ``right_eye`` (each
with its eyebrow), ``nose``, ``mouth``, and ``rest`` (the whole crop with those four boxes greyed
out), next to the full ``face``. Left and right are the person's own: ``left_eye`` is dlib points
42-47 (+ brow 22-26), on the image's right side.

Landmarks on small crops (FER2013's 48x48): the crop is upscaled to at least ``UPSCALE_TO`` pixels,
dlib's HOG detector looks for the face (no further upsampling), and the 68-point shape predictor
runs in the box it found. When it finds none, the fallback is stated and simple: the whole crop is
taken as the face box (which is what a dataset crop or a detector crop is), and the predictor runs
there. :func:`crop_landmarks` reports which faces used the fallback.

>>> points, found = crop_landmarks([crop])             # (1, 68, 2) in crop pixels, (1,) bool
>>> boxes = region_boxes(points[0], crop.shape[1], crop.shape[0])   # {"left_eye": [x0, y0, x1, y1], ...}
>>> views, found = cut_regions(x)                      # (6, N, C, H, W): the face and its regions
>>> keep, points, found = faceset_landmarks(faces, 48, 1)   # a whole data set, cached on disk

A model can also be trained on one region (``ferkit train ... input.region=mouth``): the training
crops are cut by :func:`region_faceset` (from landmarks found once per data set and cached), and
``ferkit.models``' ``RegionNet`` (which ``load_model`` wraps around
such a model) cuts the same region out of each face before the network, so that every command uses
it as any other model and a region-voting ensemble gives it that region only.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch import Tensor

from ferkit.errors import ConfigError

if TYPE_CHECKING:
    from ferkit.data import FaceSet

__all__ = ["REGIONS", "REGION_POINTS", "UPSCALE_TO", "check_region", "crop_landmarks", "cut_regions",
           "faceset_landmarks", "region_boxes", "region_faceset"]

#: the views region voting classifies, in order; ``face`` is the crop itself
REGIONS = ("face", "left_eye", "right_eye", "nose", "mouth", "rest")
#: dlib 68-point indices (iBUG 300-W) that define each cut-out region
REGION_POINTS: dict[str, list[int]] = {
    "left_eye": list(range(42, 48)) + list(range(22, 27)),
    "right_eye": list(range(36, 42)) + list(range(17, 22)),
    "nose": list(range(27, 36)),
    "mouth": list(range(48, 68)),
}
#: crops smaller than this are upscaled before dlib looks for landmarks
UPSCALE_TO = 192


def region_boxes(points: np.ndarray, width: int, height: int, *, pad: float = 0.25) -> dict[str, np.ndarray]:
    """Square ``[x0, y0, x1, y1]`` float boxes (clipped to the image) around each region's landmarks.

    Each box is the bounding box of the region's points, grown by ``pad`` of its larger side on every
    side and made square about its centre, so the crop keeps the region's aspect when resized."""
    pts = np.asarray(points, dtype=np.float64).reshape(68, 2)
    out = {}
    for name, idx in REGION_POINTS.items():
        p = pts[idx]
        (x0, y0), (x1, y1) = p.min(0), p.max(0)
        side = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * pad)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        box[[0, 2]] = box[[0, 2]].clip(0, width)
        box[[1, 3]] = box[[1, 3]].clip(0, height)
        out[name] = box
    return out


def crop_landmarks(crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """68 landmarks for each face crop (uint8 ``(H, W)`` or ``(H, W, 3)``): ``(points (N, 68, 2)
    float32 in crop pixels, found (N,) bool)``; ``found`` is False where dlib's detector found no face
    and the whole crop was used as the face box (see the module doc)."""
    from ferkit.detect import detect_faces, landmarks

    points = np.zeros((len(crops), 68, 2), np.float32)
    found = np.zeros(len(crops), bool)
    for i, crop in enumerate(crops):
        img = np.asarray(crop)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        h, w = img.shape[:2]
        scale = max(1.0, UPSCALE_TO / max(1, min(h, w)))
        big = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC) if scale > 1 else img
        faces = detect_faces(big, "dlib-hog", upsample=0, min_size=big.shape[0] // 4)
        if len(faces):
            box = faces.boxes[faces.largest()]
            found[i] = True
        else:
            box = np.array([0, 0, big.shape[1], big.shape[0]])
        points[i] = landmarks(big, box[None], 68)[0] / scale
    return points, found


def check_region(region: Any, what: str = "input.region") -> str:
    """``region`` if it is one of the trainable regions (``REGIONS`` without ``face``), else ConfigError."""
    if region not in REGIONS[1:]:
        raise ConfigError(f"{what}: unknown region {region!r} (known: {', '.join(REGIONS[1:])})")
    return str(region)


def _to_uint8(x: Tensor) -> list[np.ndarray]:
    """``(N, C, H, W)`` in [0, 1] -> the uint8 crops dlib sees (``(H, W)`` grey or ``(H, W, 3)``)."""
    imgs = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [im[..., 0] if im.shape[2] == 1 else im for im in imgs]


def cut_regions(x: Tensor, landmarks: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Tensor, np.ndarray]:
    """Each face crop of ``x`` (``(N, C, H, W)``, values in [0, 1], C = 1 or 3) and its regions:
    ``(views (R, N, C, H, W) in REGIONS order, each resized to H x W; found (N,) bool)``, where
    ``found`` is False for the faces that used the whole-crop fallback (see the module doc).
    ``rest`` is the crop with the four region boxes filled with mid-grey. ``landmarks``: ``(points
    (N, 68, 2), found (N,))`` already found on these crops (:func:`faceset_landmarks`)."""
    from torchvision.ops import roi_align

    n, _, h, w = x.shape
    points, found = crop_landmarks(_to_uint8(x)) if landmarks is None else landmarks
    boxes = [region_boxes(p, w, h) for p in points]
    views = [x]
    for name in REGIONS[1:-1]:
        b = torch.tensor(np.stack([bx[name] for bx in boxes]), dtype=x.dtype, device=x.device)
        rois = torch.cat([torch.arange(n, dtype=x.dtype, device=x.device)[:, None], b], 1)
        views.append(roi_align(x, rois, output_size=(h, w), spatial_scale=1.0, sampling_ratio=2, aligned=True))
    rest = x.clone()
    for i, bx in enumerate(boxes):
        for name in REGIONS[1:-1]:
            x0, y0, x1, y1 = (int(round(v)) for v in bx[name])  # noqa: RUF046 (numpy floats)
            rest[i, :, y0:y1, x0:x1] = 0.5
    views.append(rest)
    return torch.stack(views), found


def _model_crops(faces: FaceSet, size: int, channels: int, batch_size: int) -> Iterator[tuple[np.ndarray, Tensor]]:
    """``(indices, (n, C, size, size) in [0, 1])`` batches of the decodable faces, as a model of that
    input sees them; the indices of the undecodable ones are left out of every batch."""
    from torchvision.transforms import v2

    from ferkit.data.transforms import model_size_transform
    from ferkit.errors import DataError

    head = v2.Compose([model_size_transform({"size": size, "channels": channels}),
                       v2.ToDtype(torch.float32, scale=True)])
    for start in range(0, len(faces), batch_size):
        idx, xs = [], []
        for i in range(start, min(start + batch_size, len(faces))):
            try:
                xs.append(head(faces.load_image(i)))
                idx.append(i)
            except DataError:
                pass
        if xs:
            yield np.array(idx), torch.stack(xs)


def faceset_landmarks(faces: FaceSet, size: int, channels: int, *, cache_dir: str | os.PathLike[str] | None = None,
                      batch_size: int = 256, log: Callable[[str], None] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dlib's 68 landmarks on every face of ``faces`` at a model's input ``size`` and ``channels``:
    ``(keep (N,) bool: decodable, points (K, 68, 2) of the kept faces in crop pixels, found (K,))``.
    Cached in ``<cache_dir>/landmarks/`` (keyed by the set's images and the crop size), so the five
    regions of region voting are all cut from one pass of dlib."""
    from ferkit._fileio import atomic_path
    from ferkit.data.loaders import default_cache_dir

    key = hashlib.sha256("\n".join([str(faces.root), faces.name, str(size), str(channels),
                                      *faces.ids.tolist()]).encode()).hexdigest()[:24]
    folder = default_cache_dir() if cache_dir is None else cache_dir
    cache = os.path.join(os.fspath(folder), "landmarks", f"{size}-{channels}-{key}.npz")
    if os.path.isfile(cache):
        try:
            with np.load(cache) as z:
                keep, points, found = z["keep"], z["points"], z["found"]
            if len(keep) == len(faces) and len(points) == len(found) == int(keep.sum()):
                return keep, points, found
        except (OSError, ValueError, KeyError) as e:
            if log:
                log(f"{cache}: unreadable landmarks cache ({e}); finding them again")
    keep = np.zeros(len(faces), bool)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for idx, x in _model_crops(faces, size, channels, batch_size):
        keep[idx] = True
        parts.append(crop_landmarks(_to_uint8(x)))
        if log:
            log(f"landmarks: {idx[-1] + 1}/{len(faces)} faces")
    if not parts:
        points, found = np.zeros((0, 68, 2), np.float32), np.zeros(0, bool)
    else:
        points, found = np.concatenate([p for p, _ in parts]), np.concatenate([f for _, f in parts])
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez(f, keep=keep, points=points, found=found)
    return keep, points, found


def region_faceset(faces: FaceSet, input_cfg: Any, *, cache_dir: str | os.PathLike[str] | None = None,
                   batch_size: int = 256, log: Callable[[str], None] | None = None) -> FaceSet:
    """``faces`` with each image replaced by its ``input_cfg.region`` cut, at the model's input size and
    channels (uint8, in memory): the training crops of a region model, cut exactly as
    :class:`RegionNet` cuts them at inference. Images that cannot be decoded are left out (named in
    ``notes``). The landmarks are found once per set and crop size and cached
    (:func:`faceset_landmarks`; dlib takes about 6 ms per 48 px face), so every region is cut from them."""
    from ferkit.data.transforms import _get
    from ferkit.errors import DataError

    region = check_region(_get(input_cfg, "region"))
    size, channels = int(_get(input_cfg, "size")), int(_get(input_cfg, "channels"))
    keep, points, found = faceset_landmarks(faces, size, channels, cache_dir=cache_dir, batch_size=batch_size, log=log)
    if not keep.any():
        raise DataError(f"{faces.root or faces.name}: no decodable images to cut the {region} from")
    row = np.cumsum(keep) - 1               # face index -> row of points
    chunks = []
    for idx, x in _model_crops(faces, size, channels, batch_size):
        views, _ = cut_regions(x, (points[row[idx]], found[row[idx]]))
        cut = (views[REGIONS.index(region)] * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        chunks.append(cut[..., 0].numpy() if channels == 1 else cut.numpy())
    images = np.concatenate(chunks)
    kept = faces.select(keep) if not keep.all() else faces
    notes = list(kept.notes) + [f"{faces.ids[i]}: cannot be decoded; left out" for i in np.flatnonzero(~keep)]
    notes.append(f"{region} cut from each face: dlib found the face on {int(found.sum())} of {len(found)} "
                 "upscaled crops; the rest used the whole crop")
    return replace(kept, images=images, paths=None, notes=notes)
